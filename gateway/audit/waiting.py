"""What waits in the audit: requests for their answer (:class:`Deadlines`) and closed order
chains for the end of their window (:class:`ClosedChains`).

Both are queues in log time. :class:`ClosedChains` is what :class:`~.chains.OrderBook` holds as
long as the audit runs as Python; the compiled fast path (``_cscan.Book``, :mod:`.native`)
stands in for it with the same methods, holding its own orders and Python chains in one queue,
so orders leave in the same order either way.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

# (what chains.py keeps here, named by role: this module does not import chains, which imports
# it)
Chain = Any
Request = Any
OrderBook = Any

CLOSED_WINDOW = 60.0
"""Seconds of log time a closed chain stays findable."""
MAX_CLOSED = 10_000
"""Closed chains kept findable at most, per session."""

Deadline = tuple[float, int, "Request", "OrderBook"]


class Deadlines:
    """The requests waiting for an answer, by deadline (then by the order they came in): a
    queue for deadlines that come in order -- log time goes forward, so nearly all do -- and a
    heap for the others; :meth:`due` takes from the front of either (cheaper than one heap of
    every request).

    :attr:`counter` numbers the entries; the compiled fast path numbers its own requests from
    it too and, when it hands one to Python, pushes it with the number it had, so ties between
    equal deadlines fall the same way whichever side kept the request."""

    __slots__ = ("_queue", "_heap", "counter")

    def __init__(self) -> None:
        self._queue: deque[Deadline] = deque()
        self._heap: list[Deadline] = []
        self.counter = itertools.count(1)

    def push(self, at: float, req: Request, book: OrderBook, n: int = 0) -> None:
        """Wait for ``req`` until ``at``; ``n``: the number it was given before (else a new
        one). An entry with its own number goes to the heap (it may be older than the queue's
        last)."""
        if n:
            heapq.heappush(self._heap, (at, n, req, book))
            return
        entry = (at, next(self.counter), req, book)
        queue = self._queue
        if not queue or queue[-1][0] <= at:
            queue.append(entry)
        else:
            heapq.heappush(self._heap, entry)

    def due(self, now: float) -> list[Deadline]:
        """The entries whose deadline is ``now`` or before, taken out, earliest first."""
        out: list[Deadline] = []
        queue, heap = self._queue, self._heap
        while True:
            if queue and queue[0][0] <= now:
                if heap and heap[0][0] <= now and heap[0][:2] < queue[0][:2]:
                    out.append(heapq.heappop(heap))
                else:
                    out.append(queue.popleft())
            elif heap and heap[0][0] <= now:
                out.append(heapq.heappop(heap))
            else:
                return out

    def clear(self) -> None:
        self._queue.clear()
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._queue) + len(self._heap)


class ClosedQueue(Protocol):
    """The closed chains of one session still findable, oldest first."""

    def add(self, chain: Chain) -> None: ...
    def discard(self, chain: Chain) -> None: ...
    def evict(self, now: float, force: bool, release: Callable[[Chain], None]) -> None: ...
    def __len__(self) -> int: ...


class ClosedChains:
    """:class:`ClosedQueue` in Python: an OrderedDict (its first entry is found at once however
    many were taken from its front)."""

    __slots__ = ("_chains",)

    def __init__(self) -> None:
        self._chains: OrderedDict[Chain, None] = OrderedDict()

    def add(self, chain: Chain) -> None:
        self._chains[chain] = None

    def discard(self, chain: Chain) -> None:
        self._chains.pop(chain, None)

    def evict(self, now: float, force: bool, release: Callable[[Chain], None]) -> None:
        """Hand each chain past its window to ``release``, oldest first (all of them:
        ``force``); past :data:`MAX_CLOSED` the oldest go whatever their age."""
        closed = self._chains
        horizon = now - CLOSED_WINDOW
        while closed:
            chain = next(iter(closed))
            if not force and len(closed) <= MAX_CLOSED and (
                    chain.closed_at is None or chain.closed_at > horizon):
                break
            closed.popitem(last=False)
            release(chain)

    def __len__(self) -> int:
        return len(self._chains)



class FastBook(ClosedQueue, Protocol):
    """The compiled fast path's part of one session's book (``_cscan.Book``): the orders it
    keeps, and the closed queue of its orders and the book's chains."""

    def claim(self, v: tuple[bytes | None, ...], seq: int | None, ref: int | None) -> None:
        """Hand the book every order the message ``v`` may be about (its ClOrdID, OrigClOrdID,
        OrderID, ExecID, BusinessRejectRefID; the request ``seq`` of its sender; the request
        ``ref`` of the other side), before Python reads the message."""

    def promote_pending(self) -> None:
        """Hand the book every order with a request waiting."""

    def promote_all(self) -> None:
        """Hand the book every order still kept."""

    def sizes(self) -> dict[str, int]:
        """Entries of each of its containers (``orders``: the orders it keeps)."""

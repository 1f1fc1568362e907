"""Polling the sockets for a while before the event loop's thread sleeps (busy polling).

An event loop with nothing to do blocks in ``epoll_wait`` until a socket is readable or a
timer is due, and the kernel wakes the thread when a message arrives. For a client with one
order in flight the gateway's wait between its last report and the client's next order is
tens of microseconds, and a thread's wake-up (on a virtual machine, its virtual CPU's: the
host has descheduled an idle one) costs about as much as the wait, and leaves the caches
colder. :class:`BusyPollSelector` asks the kernel without blocking, again and again, for up
to a *window* before it blocks; the first message within the window is read at once.

The window adapts, as the halt polling of Linux's KVM does: a wait that ended within the
longest window allowed (``busy_poll_us``) but after the present window grows the window
(doubled; from none, to a quarter of the longest), one longer than that -- the gateway
idle, messages seconds apart, a timer's expiry -- halves it, down to none. Idle or at a low
rate of events it polls nothing; at 1 in flight, a window an order; **while anything keeps
arriving on the loop's sockets (a session's messages, a venue's feed, the admin API) less than
the longest window apart (5,000 a second and more at 200 us) the loop's thread never sleeps:
up to a whole core** (a CPU quota spent polling throttles the process).

The poll holds the interpreter's lock between two polls and gives it up at each one, but
CPython hands the lock to a waiting thread only after its switch interval (5 ms), and a
release and retake restarts that wait: a thread that needs the lock while the loop polls
waits out the window. Hence the default (``gateway.cli.busy_poll_us``): polling where the
store's commits run on the loop's own thread (a SQLite file with ``store_commits = "inline"``,
the memory store: no hand-off to another thread on an order's path), none where every commit
is handed to the writer thread (PostgreSQL, ``"thread"``).

``[gateway] busy_poll_us`` sets the longest window for ``fixgw run`` (0: never poll);
:func:`event_loop_factory` makes the event loop. Measured with ``scripts/bench_orders.py``
(docs/performance.md, "Fourteenth sitting").
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable

_Ready = list[tuple[selectors.SelectorKey, int]]


class BusyPollSelector(selectors.DefaultSelector):
    """The platform's selector (epoll on Linux), polling for up to an adaptive window before
    it blocks."""

    def __init__(self, max_us: float, clock: Callable[[], float] = time.perf_counter) -> None:
        if max_us < 0:
            raise ValueError(f"busy_poll_us must not be negative: {max_us}")
        super().__init__()
        self.max_ns = round(max_us * 1000)
        """The longest window, in nanoseconds (0: never poll, block at once)."""
        self.window_ns = 0
        """The present window: how long the next wait polls before it blocks."""
        self._clock = clock

    def select(self, timeout: float | None = None) -> _Ready:
        if not self.max_ns or (timeout is not None and timeout <= 0.0):
            return self._poll(timeout)
        clock = self._clock
        start = clock()
        window = self.window_ns / 1e9
        if timeout is not None:
            window = min(window, timeout)
        if window > 0.0:
            while True:
                ready = self._poll(0)
                if ready:
                    return ready  # caught within the window: it holds
                if clock() - start >= window:
                    break
        left = None if timeout is None else max(0.0, timeout - (clock() - start))
        ready = self._poll(left)
        waited_ns = (clock() - start) * 1e9
        first = self.max_ns // 4  # (a window grown from none)
        if waited_ns > self.max_ns:
            self.window_ns = self.window_ns // 2 if self.window_ns >= first else 0
        elif ready:
            self.window_ns = min(self.max_ns, max(self.window_ns * 2, first))
        return ready

    def _poll(self, timeout: float | None) -> _Ready:
        """One wait of the platform's selector (``epoll_wait``): at once (``timeout`` 0), for
        ``timeout`` seconds, or until an event (None)."""
        return super().select(timeout)


def event_loop_factory(busy_poll_us: float) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """How ``fixgw run`` makes its event loop: asyncio's own, on a :class:`BusyPollSelector`
    whose longest window is ``busy_poll_us`` (0: None, asyncio's default, as ``asyncio.run``
    makes it)."""
    if busy_poll_us <= 0:
        return None

    def make() -> asyncio.AbstractEventLoop:
        return asyncio.SelectorEventLoop(BusyPollSelector(busy_poll_us))

    return make


def polls_up_to(loop: asyncio.AbstractEventLoop) -> float:
    """The longest window of ``loop``'s busy polling, in microseconds (0: it does not poll)."""
    selector = getattr(loop, "_selector", None)  # (asyncio's selector loops keep it there)
    return selector.max_ns / 1000 if isinstance(selector, BusyPollSelector) else 0.0

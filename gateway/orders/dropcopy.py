"""Drop copies: sessions that receive a copy of every ExecutionReport (8) other sessions are
sent, as the events happen, and send nothing but session messages.

A drop copy session is a ``[[session]]`` with ``drop_copy_of`` (the sessions it copies, by
TargetCompID or session id, ``*`` for every session with order routing) and optionally
``drop_copy_accounts`` (only the reports of orders with one of these Accounts, 1). Each copy is
the report as its session was (to be) sent it, under the drop copy session's own header and
sequence numbers, with CopyMsgIndicator (797) = Y (the standard's "this is a drop copy"),
DropCopyFlag (9406) = Y (the tag crypto venues' drop copies use, :mod:`gateway.fix.custom`)
and DeliverToCompID (128) naming the client the original was for.

Durability (Invariant 1, as for the reports themselves). A copy is made when its event is
recorded -- whether or not its own session is logged on: a cancel-on-disconnect's Canceled
reaches the drop copy while the client is away -- and stored in the same commit as the event
(a row of ``drop_copies``); it is sent to the drop copy only once that commit is done, and the
``seq`` of the message that carries it is stored in that message's commit. What a drop copy
has not been sent (it was logged off, the gateway restarted, it read too slowly) is read back
from the store at its next Logon, in the order of events.

A drop copy never slows the sessions it copies: the order path only adds the copy's row to
its commit and the copy to a queue in memory. Each logged-on drop copy has its own task
(:meth:`DropCopies._pump`) that sends what is ready a batch at a time, the next batch once the
last was committed and written; a drop copy that falls :data:`MEMORY_LIMIT` copies behind is
fed from the store instead (memory stays bounded), and one that stops reading is disconnected
by its session's outbound limits like any client.

Copies are of the reports of order events (acknowledgements, fills, cancels, replaces,
rejects, expiries; also an order refused before it could be stored), not of answers to
requests (OrderStatusRequest, mass status) nor of OrderCancelReject (9). With several gateway
nodes (hot standby), a drop copy is sent live the copies of the sessions its own node serves;
those of sessions another node serves reach it at its next Logon.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.fix.custom import DROP_COPY_FLAG
from gateway.fix.message import Message
from gateway.fix.session import Session, SessionID
from gateway.fix.tags import BR_NOT_AUTHORIZED
from gateway.store.records import CopyRecord, OrderAppend
from gateway.store.rows import delivered_row

log = logging.getLogger("fixgw.dropcopy")

COPY_MSG_INDICATOR = 797
DELIVER_TO_COMP_ID = 128

PAGE = 500
"""Copies read from the store at a time."""
BATCH = 200
"""Copies sent to a drop copy before waiting for them to be committed and written."""
MEMORY_LIMIT = 10_000
"""Copies kept in memory for a logged-on drop copy that reads slower than they come; past it,
it is fed from the store."""
SETTLE_TIMEOUT = 10.0
"""Seconds a Logon's catch-up waits for the commits of copies made just before it (so that
copies go out in the order of events)."""

REFUSAL = ("drop copy session: it receives copies of ExecutionReports and takes no "
           "application messages")


class CopyStorePort(Protocol):
    async def undelivered_copies(
        self, session_id: str, after_event_id: int, limit: int
    ) -> list[CopyRecord]: ...


@dataclass(frozen=True, slots=True)
class DropCopyRule:
    """Which reports a drop copy session receives: those of the sessions ``sources`` (session
    ids), of orders with an Account (1) in ``accounts`` (None: every order)."""

    sources: frozenset[str]
    accounts: frozenset[str] | None = None

    def takes(self, account: str | None) -> bool:
        return self.accounts is None or (account is not None and account in self.accounts)


def rules_for(
    drop_copies: Mapping[str, tuple[Sequence[str], Sequence[str] | None]],
    trading: Sequence[SessionID],
) -> dict[str, DropCopyRule]:
    """Drop copy session id -> its rule, from what the configuration names (``drop_copy_of``:
    TargetCompIDs, session ids or ``*``; ``drop_copy_accounts``) and the sessions with order
    routing. Raises ValueError for a name that matches none of them."""
    out: dict[str, DropCopyRule] = {}
    for sid, (names, accounts) in drop_copies.items():
        sources: set[str] = set()
        for name in names:
            found = [str(t) for t in trading
                     if name == "*" or name in (t.target_comp_id, str(t))]
            if not found and name != "*":
                raise ValueError(f"drop copy session {sid}: drop_copy_of names {name!r}, "
                                 "which is no session with order routing")
            sources.update(found)
        out[sid] = DropCopyRule(frozenset(sources),
                                None if accounts is None else frozenset(accounts))
    return out


def target_of(session_id: str) -> str:
    """The counterparty's CompID of a session id (``FIX.4.4:GATEWAY->CLIENT1`` -> CLIENT1)."""
    target = session_id.partition("->")[2]
    return target.partition(":")[0] or session_id


PENDING, READY, FAILED = 0, 1, 2


@dataclass(slots=True, eq=False)
class Copy:
    record: CopyRecord
    state: int = PENDING
    stored: asyncio.Future[None] | None = None
    """The commit that stores it (and its event)."""


@dataclass(slots=True, eq=False)
class _Feed:
    """One drop copy session."""

    sid: str
    rule: DropCopyRule
    session: Session | None = None
    """While logged on."""
    generation: int = 0
    """Counts logons and logouts: a pump of an earlier one stops."""
    queue: deque[Copy] = field(default_factory=deque)
    """While logged on: copies made since the last catch-up began, in the order of events."""
    in_flight: dict[str, Copy] = field(default_factory=dict)
    """Copies whose commit is not done yet, by ExecID (whether logged on or not)."""
    catch_up: bool = False
    """The next copies come from the store (at a Logon; when memory ran over)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None


class _Delivery:
    """A copy sent to a drop copy session: its ``seq`` is stored in the message's commit."""

    __slots__ = ("sid", "exec_id", "seq")

    def __init__(self, sid: str, exec_id: str) -> None:
        self.sid = sid
        self.exec_id = exec_id
        self.seq = 0

    @property
    def payload(self) -> OrderAppend:
        return OrderAppend((), (), (), delivered=(delivered_row(self.sid, self.exec_id,
                                                                self.seq),))

    def committed(self) -> None:
        return None

    def failed(self, exc: BaseException) -> None:
        # not sent: it stays undelivered in the store (the session ends; its next Logon
        # sends it)
        return None


Flush = Callable[[SessionID], Coroutine[Any, Any, None]]


class DropCopies:
    """The drop copy sessions of the gateway (module docstring)."""

    def __init__(
        self, rules: Mapping[str, DropCopyRule], store: CopyStorePort,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.clock = clock
        self._feeds = {sid: _Feed(sid, rule) for sid, rule in rules.items()}
        self._by_source: dict[str, list[_Feed]] = {}
        for feed in self._feeds.values():
            for source in sorted(feed.rule.sources):
                self._by_source.setdefault(source, []).append(feed)
        self._flush: Flush | None = None

    def bind(self, flush: Flush) -> None:
        """How to make a session write what was queued on it, returning once written."""
        self._flush = flush

    def serves(self, sid: str) -> bool:
        """Whether ``sid`` is a drop copy session."""
        return sid in self._feeds

    def copies_of(self, source: str) -> bool:
        """Whether some drop copy receives the reports of session ``source``."""
        return source in self._by_source

    # ---------------------------------------------------------------------------------------
    # copies, as the order path records events

    def make(
        self, source: str, account: str | None, event_id: int, exec_id: str,
        body: Sequence[tuple[int, bytes]], ts_ns: int,
    ) -> list[Copy]:
        """The copies of the ExecutionReport ``body`` (ExecID ``exec_id``, of the event
        ``event_id``) told to session ``source``: one per drop copy that takes it. Their
        records go into the event's commit; :meth:`track` follows that commit."""
        feeds = self._by_source.get(source)
        if not feeds:
            return []
        return [Copy(CopyRecord(f.sid, exec_id, event_id, source, ts_ns, tuple(body)))
                for f in feeds if f.rule.takes(account)]

    def track(self, copies: Sequence[Copy], stored: asyncio.Future[None]) -> None:
        """``copies`` are stored by the commit ``stored`` resolves after: sent once it is
        done (those of a commit that failed are stored later, and sent at a later Logon)."""
        for c in copies:
            c.stored = stored
            feed = self._feeds[c.record.session_id]
            feed.in_flight[c.record.exec_id] = c
            if feed.session is not None:
                feed.queue.append(c)
                if len(feed.queue) > MEMORY_LIMIT:
                    self._spill(feed)
        stored.add_done_callback(lambda f: self._stored(copies, f))

    def _stored(self, copies: Sequence[Copy], future: asyncio.Future[None]) -> None:
        ok = not future.cancelled() and future.exception() is None
        for c in copies:
            c.state = READY if ok else FAILED
            feed = self._feeds[c.record.session_id]
            feed.in_flight.pop(c.record.exec_id, None)
            if feed.session is not None:
                if not ok:
                    feed.catch_up = True  # the store will have it (or the next Logon reads it)
                feed.wake.set()

    @staticmethod
    def _spill(feed: _Feed) -> None:
        """Too many copies wait in memory for a slow drop copy: those stored are dropped (the
        store has them) and the drop copy is fed from the store again."""
        feed.queue = deque(c for c in feed.queue if c.state == PENDING)
        if not feed.catch_up:
            log.warning("%s: the drop copy is more than %d reports behind: it is fed from the "
                        "store", feed.sid, MEMORY_LIMIT)
        feed.catch_up = True
        feed.wake.set()

    # ---------------------------------------------------------------------------------------
    # the drop copy sessions

    def on_logon(self, session: Session) -> None:
        feed = self._feeds.get(str(session.sid))
        if feed is None:
            return
        feed.generation += 1
        feed.session = session
        # copies made before the Logon and not stored yet: sent after those the store has
        feed.queue = deque(sorted(feed.in_flight.values(), key=lambda c: c.record.event_id))
        feed.catch_up = True
        feed.wake.set()  # (a pump of an earlier Logon ends)
        feed.wake = asyncio.Event()
        feed.pump = asyncio.get_running_loop().create_task(
            self._pump(feed, session, feed.generation), name=f"drop-copy-{feed.sid}")

    def on_logout(self, session: Session) -> None:
        feed = self._feeds.get(str(session.sid))
        if feed is None:
            return
        feed.generation += 1
        feed.session = None
        feed.queue = deque()
        feed.wake.set()

    def on_message(self, session: Session, message: Message, now: float) -> None:
        """A drop copy session may send no application message: BusinessMessageReject
        (380=6, Not authorized) saying why."""
        session.business_reject(message, BR_NOT_AUTHORIZED, now, text=REFUSAL)

    async def close(self) -> None:
        """Stop sending (the gateway stops)."""
        pumps = []
        for feed in self._feeds.values():
            feed.generation += 1
            feed.wake.set()
            if feed.pump is not None and not feed.pump.done():
                pumps.append(feed.pump)
        if pumps:
            await asyncio.wait(pumps, timeout=5)

    # ---------------------------------------------------------------------------------------
    # sending

    async def _pump(self, feed: _Feed, session: Session, generation: int) -> None:
        """Send the drop copy what it has not been sent, in the order of events, while it is
        logged on: from the store first, then as copies are stored."""

        def current() -> bool:
            return feed.generation == generation and session.is_logged_on

        try:
            while current():
                if feed.catch_up:
                    feed.catch_up = False
                    await self._catch_up(feed, session, current)
                    continue
                batch: list[CopyRecord] = []
                while feed.queue and feed.queue[0].state != PENDING and len(batch) < BATCH:
                    c = feed.queue.popleft()
                    if c.state == READY:
                        batch.append(c.record)
                if batch:
                    await self._deliver(feed, session, batch, current)
                    continue
                feed.wake.clear()
                await feed.wake.wait()
        except Exception as exc:  # the store went down (the session ends), or a bug
            if current():
                log.error("%s: drop copies stopped until the next Logon: %r", feed.sid, exc)

    async def _catch_up(self, feed: _Feed, session: Session,
                        current: Callable[[], bool]) -> None:
        """Send what the store has that the drop copy was not sent, then go on from memory."""
        before = list(feed.queue)
        pending = {c.stored for c in before if c.state == PENDING and c.stored is not None}
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_TIMEOUT)
        # those made before and stored now are read from the store, in their order
        settled = {id(c) for c in before if c.state != PENDING}
        feed.queue = deque(c for c in feed.queue if id(c) not in settled)
        after = 0
        while current() and not feed.catch_up:
            rows = await self.store.undelivered_copies(feed.sid, after, PAGE)
            if not rows:
                return
            after = rows[-1].event_id
            queued = {c.record.exec_id for c in feed.queue}
            todo = [r for r in rows if r.exec_id not in queued]
            for i in range(0, len(todo), BATCH):
                if not current():
                    return
                await self._deliver(feed, session, todo[i:i + BATCH], current)

    async def _deliver(self, feed: _Feed, session: Session, records: Sequence[CopyRecord],
                       current: Callable[[], bool]) -> None:
        now = self.clock()
        sent = False
        for r in records:
            if not current():
                break
            delivery = _Delivery(feed.sid, r.exec_id)
            delivery.seq = session.send(
                b"8", [*r.body, (COPY_MSG_INDICATOR, b"Y"), (DROP_COPY_FLAG, b"Y")], now,
                header_extra=((DELIVER_TO_COMP_ID, target_of(r.source).encode()),),
                attachment=delivery)
            sent = True
        if sent and self._flush is not None:
            await self._flush(session.sid)

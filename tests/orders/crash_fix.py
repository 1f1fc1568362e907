"""The FIX client of the crash-recovery test: a session that survives reconnects and a ledger of
everything the gateway reported.

The :class:`Ledger` outlives connections: our next MsgSeqNum, which of the gateway's sequence
numbers were seen, every ExecutionReport, and what breaks the rules:

* a *report* is the first ExecutionReport carrying an ExecID; a later one with the same ExecID
  is fine when it is a PossDupFlag=Y resend, and a **duplicate** otherwise;
* a PossDup copy that differs from the report it repeats, a MsgSeqNum seen twice without
  PossDupFlag, a Reject or BusinessMessageReject, a Logout by the gateway: **anomalies**.

:class:`Session` runs one connection: logs on without reset (continuing the sequence numbers),
answers TestRequests, asks for a resend when it sees a gap (once per gap: ``16=0``), serves the
gateway's ResendRequests (PossDup resends of our application messages, GapFill of the rest) and
wakes waiters after every message. It never sleeps; every wait has a deadline.
"""

# ruff: noqa: ASYNC109 - ``timeout`` is this helper's interface

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from server.fixclient import ConnectionClosed, FixClient, FixMessage, Value, utc_timestamp

# fields compared between a report and its PossDup copies
_SAME = (11, 14, 17, 31, 32, 37, 39, 150, 151)


@dataclass
class Ledger:
    next_out: int = 1
    seen: set[int] = field(default_factory=set)
    contiguous: int = 0
    """Every gateway MsgSeqNum up to this one was seen (or gap-filled)."""
    reports: dict[str, FixMessage] = field(default_factory=dict)
    """ExecID -> the first ExecutionReport that carried it."""
    ers: list[FixMessage] = field(default_factory=list)
    """Every ExecutionReport received, copies included, in arrival order."""
    duplicates: list[FixMessage] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    sent_app: dict[int, tuple[str, list[tuple[int, Value]], bytes]] = field(default_factory=dict)
    """Our application messages by MsgSeqNum: (MsgType, body, SendingTime)."""
    possdup_ignored: int = 0
    """PossDup resends of reports already received (not counted again)."""

    def mark(self, first: int, end: int | None = None) -> None:
        """MsgSeqNums ``first`` .. ``end - 1`` (just ``first`` when ``end`` is None) arrived."""
        self.seen.update(range(first, first + 1 if end is None else end))
        while self.contiguous + 1 in self.seen:
            self.contiguous += 1

    def record_er(self, m: FixMessage) -> None:
        self.ers.append(m)
        exec_id = m[17]
        first = self.reports.get(exec_id)
        if first is None:
            self.reports[exec_id] = m
        elif m.get(43) == "Y":
            self.possdup_ignored += 1
            a, b = first.as_dict(), m.as_dict()
            diff = [t for t in _SAME if a.get(t) != b.get(t)]
            if diff:
                self.anomalies.append(f"PossDup copy of ExecID {exec_id} differs in {diff}: "
                                      f"{first} vs {m}")
        else:
            self.duplicates.append(m)

    # ---- views ---------------------------------------------------------------------------------

    def order_reports(self) -> dict[str, list[FixMessage]]:
        """ClOrdID -> its reports (first copies), in MsgSeqNum order."""
        out: dict[str, list[FixMessage]] = {}
        for m in sorted(self.reports.values(), key=lambda m: m.seq):
            out.setdefault(m[11], []).append(m)
        return out

    def fills(self) -> list[FixMessage]:
        return [m for m in self.reports.values() if m.get(150) == "F"]

    def last_report(self, cl_ord_id: str) -> FixMessage | None:
        mine = [m for m in self.reports.values() if m.get(11) == cl_ord_id]
        return max(mine, key=lambda m: m.seq) if mine else None

    def answered(self, cl_ord_ids: Iterable[str]) -> bool:
        """Every one of ``cl_ord_ids`` has had an ExecutionReport."""
        return all(self.last_report(cl) is not None for cl in cl_ord_ids)

    def filled(self, cl_ord_id: str, quantity: Decimal, status: str = "2") -> bool:
        """The last report of ``cl_ord_id`` has OrdStatus ``status`` (Filled) and CumQty
        ``quantity``."""
        last = self.last_report(cl_ord_id)
        return last is not None and last.get(39) == status and Decimal(last[14]) == quantity


class Session:
    """One connection of the recorded session (see the module doc)."""

    def __init__(self, client: FixClient, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self.logged_on = False
        self.closed = False
        self.heartbeats: set[str] = set()
        self._resend_upto = 0
        self.resend_requests = 0
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int, ledger: Ledger, timeout: float = 10.0) -> Session:
        client = await FixClient.connect("127.0.0.1", port, next_seq=ledger.next_out)
        s = cls(client, ledger)
        s._reader = asyncio.create_task(s._read_loop())
        try:
            await s.send("A", [(98, 0), (108, 30)])
            await s.wait(lambda: s.logged_on, timeout, "Logon answered")
        except BaseException:
            # give the attempt up as an initiator does, by disconnecting: left open, a Logon
            # the gateway answers late would log this connection on, and every later attempt
            # would be refused as the session's second connection
            await s.close()
            raise
        return s

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.client.close()

    # ---- sending -------------------------------------------------------------------------------

    async def send(self, msg_type: str, body: Iterable[tuple[int, Value]]) -> int:
        c = self.client
        body = list(body)
        seq, sent_at = c.next_seq, utc_timestamp()
        data = c.build(msg_type, body, sending_time=sent_at)
        self.ledger.next_out = c.next_seq
        if msg_type not in ("0", "1", "2", "4", "5", "A"):
            self.ledger.sent_app[seq] = (msg_type, body, sent_at)
        await c.send_raw(data)
        return seq

    async def orders(
        self, bodies: dict[str, list[tuple[int, Value]]], timeout: float = 10.0
    ) -> None:
        """Send NewOrderSingles (ClOrdID -> body) and wait until each is answered."""
        for body in bodies.values():
            await self.send("D", body)
        await self.wait(lambda: self.ledger.answered(bodies), timeout, "every order answered")

    async def sync(self, req_id: str, timeout: float = 10.0) -> None:
        """TestRequest and its Heartbeat: everything sent before it has been read."""
        await self.send("1", [(112, req_id)])
        await self.wait(lambda: req_id in self.heartbeats, timeout, f"Heartbeat {req_id}")

    async def _serve_resend(self, begin: int, end: int) -> None:
        c, last = self.client, self.ledger.next_out - 1
        end = last if end == 0 or end > last else end
        seq = begin
        while seq <= end:
            app = self.ledger.sent_app.get(seq)
            if app is not None:
                msg_type, body, sent_at = app
                await c.send_raw(c.build(msg_type, body, seq=seq,
                                         header=[(43, "Y"), (122, sent_at)]))
                seq += 1
                continue
            upto = seq
            while upto <= end and upto not in self.ledger.sent_app:
                upto += 1
            await c.send_raw(c.build("4", [(123, "Y"), (36, upto)], seq=seq, header=[(43, "Y")]))
            seq = upto

    # ---- receiving -----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                m = await self.client.recv(3600.0)
                await self._handle(m)
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.logged_on = False
            async with self._changed:
                self._changed.notify_all()

    async def _handle(self, m: FixMessage) -> None:
        led = self.ledger
        mt, seq, possdup = m.msg_type, m.seq, m.get(43) == "Y"
        if mt == "4":
            new = int(m[36])
            if m.get(123) == "Y":
                led.mark(seq, new)
            else:
                led.mark(led.contiguous + 1, new)
            return
        if not possdup:
            if seq in led.seen:
                led.anomalies.append(f"MsgSeqNum {seq} received twice without PossDup: {m}")
            elif seq > led.contiguous + 1 and led.contiguous >= self._resend_upto:
                # a gap, and no ResendRequest outstanding (16=0 asks for everything from the
                # gap on, so one is enough until the gap closes)
                self._resend_upto = seq
                self.resend_requests += 1
                await self.send("2", [(7, led.contiguous + 1), (16, 0)])
        led.mark(seq)
        if mt == "A":
            self.logged_on = True
            if m.get(141) == "Y":
                led.anomalies.append(f"the gateway reset the sequence numbers: {m}")
        elif mt == "0":
            if m.get(112):
                self.heartbeats.add(m[112])
        elif mt == "1":
            await self.send("0", [(112, m[112])])
        elif mt == "2":
            await self._serve_resend(int(m[7]), int(m[16]))
        elif mt == "8":
            led.record_er(m)
        elif mt == "5":
            led.anomalies.append(f"the gateway logged out: {m}")
        else:
            led.anomalies.append(f"unexpected message: {m}")

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Until ``predicate()`` holds; AssertionError naming ``what`` after ``timeout``."""
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate() or self.closed)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}") from None
        if not predicate():
            raise AssertionError(f"the connection closed while waiting for: {what}")

    async def wait_closed(self, timeout: float = 10.0) -> None:
        await self.wait(lambda: self.closed, timeout, "the connection to close")

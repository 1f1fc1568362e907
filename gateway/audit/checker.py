"""The audit of a stream of messages: sessions, their sequence numbers and logons, and each
session's orders (:mod:`.chains`).

A session is named as QuickFIX names it, from our side: ``BeginString:OurCompID->TheirCompID``
(the gateway's own logs: ``FIX.4.4:GATEWAY->CLIENT1``, the id the store uses; a client's
QuickFIX log: ``FIX.4.4:CLIENT1->GATEWAY``). Which CompID is "ours" comes from the input when it
says (a log file's name, the store's session id), else from the messages: the side a Logon or a
request (D, F, G, ...) is sent to, or the side that sends ExecutionReports, is the acceptor, and
the audit takes the acceptor's view. The direction of each message (in/out) follows.

Sequence numbers are checked per sender: each MsgSeqNum is the one expected, or higher (the
numbers skipped are a gap until they are resent with PossDupFlag or covered by a
SequenceReset-GapFill), or lower with PossDupFlag (a resend). A Logon with ResetSeqNumFlag
(141=Y), a Logon with MsgSeqNum 1 and a SequenceReset-Reset start the numbers again (a session
event; the gaps still open then are findings); any other step back is a finding. Logons are
events: answered, rejected (answered by a Logout: its Text says why), or unanswered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from .chains import ANSWER_TIMEOUT, LIVE_STATUSES, Chain, OrderBook
from .findings import Event, Finding, Findings, Kind
from .scan import (
    BEGIN,
    BUSINESS_REJECT_REF_ID,
    CSCAN,
    DEFAULT_APPL_VER_ID,
    GAP_FILL,
    MSG_TYPE,
    NEW_SEQ_NO,
    POSS_DUP,
    REF_SEQ_NUM,
    RESET_SEQ_NUM,
    SENDER,
    SEQ,
    TARGET,
    TEXT,
    Fields,
    Scanner,
)
from .sources import Clock, Origin, Record
from .states import (
    FIX42_TRADES,
    NEXT_STATUS,
    STATUS_FOR_EXEC_TYPE,
    TERMINAL,
    TRADE,
    UNCHECKED_EXEC_TYPES,
)
from .waiting import CLOSED_WINDOW, MAX_CLOSED, Deadlines

if TYPE_CHECKING:
    from ._cscan import Batch

REQUEST_TYPES = frozenset({b"D", b"F", b"G", b"H", b"AF", b"q", b"V", b"x", b"AN", b"BB", b"E",
                           b"c", b"R", b"AE"})
"""Messages a client (initiator, buy side) sends."""
ANSWER_TYPES = frozenset({b"8", b"9", b"r", b"W", b"X", b"Y", b"y", b"AO", b"AP", b"BA", b"BG",
                          b"d", b"j"})
"""Messages the gateway (acceptor, sell side) sends."""
ADMIN_TYPES = frozenset({b"0", b"1", b"2", b"3", b"4", b"5", b"A"})
TICK = 256
"""Messages between two looks at the clock (deadlines, closed chains)."""
MAX_GAPS = 1000
"""Open sequence gaps kept per sender; past this the oldest is reported at once."""
ORDER_TYPES = frozenset({b"8", b"D", b"F", b"G", b"9", b"j", b"3"})
"""Messages the order books read (the fast path hands over their orders first)."""

# what the compiled fast path's run() says it stopped for (_cscan.c)
_END, _TICK, _DECLINED, _IDLE, _STOPPED = range(5)

Summary = Callable[[bytes, int, int, int], None]
"""Receives the orders the fast path lets go that no sink needs as Chains: their JSON lines
(each :meth:`Chain.summary` as ``orjson`` writes it, newline-ended), how many orders, fills and
open orders they hold (:meth:`gateway.audit.report.Outputs.add_summary`)."""


def engine_tables() -> tuple[object, ...]:
    """The rules the compiled fast path applies, from the tables that declare them."""
    return (TERMINAL, LIVE_STATUSES, NEXT_STATUS, STATUS_FOR_EXEC_TYPE, UNCHECKED_EXEC_TYPES,
            FIX42_TRADES, TRADE, ANSWER_TIMEOUT, CLOSED_WINDOW, MAX_CLOSED, TICK)


def _s(value: bytes | None) -> str:
    return "?" if value is None else value.decode("utf-8", "replace")


@dataclass(frozen=True)
class SessionFilter:
    """``--session``: a session id (``FIX.4.4:GATEWAY->CLIENT1``), ``OURS->THEIRS``, or one
    CompID (either side)."""

    text: str

    def matches(self, begin: str, local: str, remote: str) -> bool:
        t = self.text
        if "->" in t:
            if ":" in t.split("->", 1)[0]:
                return t == f"{begin}:{local}->{remote}"
            return t == f"{local}->{remote}"
        return t in (local, remote)

    @property
    def local(self) -> str | None:
        """The CompID the filter says is ours, if it names a direction."""
        if "->" not in self.text:
            return None
        head = self.text.split("->", 1)[0]
        return head.rsplit(":", 1)[-1]


class Session:
    """One session's audit state."""

    def __init__(self, key: str, begin: str, local: bytes, remote: bytes,
                 book: OrderBook) -> None:
        self.key = key
        self.begin = begin
        self.local = local
        self.remote = remote
        self.book = book
        self.appl_ver: str | None = None
        """FIXT: the DefaultApplVerID (1137) of its Logon."""
        self.messages = 0
        self.incoming = 0
        self.expected: dict[bytes | None, int] = {}
        self.gaps: dict[bytes | None, list[list[object]]] = {}
        """sender -> open gaps [first, last, stamp, where]."""
        self.logon: dict[bytes | None, tuple[bytes, str]] = {}
        """sender -> its Logon waiting for an answer (stamp, where)."""
        self.first_stamp = b""
        self.last_stamp = b""


_SKIP = object()
"""The session of a message that a ``--session`` filter leaves out."""


class Auditor:
    """Feeds records (:mod:`.sources`) through the session and order checks; ``on_chain``
    receives every order once the audit is done with it (closed and past its window, or at the
    end)."""

    def __init__(self, findings: Findings, on_chain: Callable[[Chain], None], *,
                 session_filter: SessionFilter | None = None, until: bytes = b"",
                 keep_messages: bool = False, on_summary: Summary | None = None,
                 fast: bool = True) -> None:
        self.findings = findings
        self.on_chain = on_chain
        self.session_filter = session_filter
        self.until = until
        self.keep_messages = keep_messages
        self.scanner = Scanner()
        self.clock = Clock()
        self.sessions: dict[str, Session] = {}
        self.deadlines = Deadlines()
        self.numbers = itertools.count(1)
        self.messages = 0
        self.skipped = 0
        self.now: float | None = None
        self.last_stamp = b""
        self.stopped = False
        """True once a message past ``until`` was met (the rest is not read)."""
        self.engine = None
        """The compiled fast path (``_cscan.Engine``) where it is built, asked for (``fast``)
        and can serve: not when every message is kept for the HTML or ``--order``."""
        if fast and CSCAN is not None and not keep_messages:
            self.engine = CSCAN.Engine(self.numbers, self.deadlines.counter, _SKIP, on_summary,
                                       until, engine_tables())

    # --- the hot loop -------------------------------------------------------------------------

    def feed(self, records: Iterable[Record | None]) -> None:
        """Audit ``records`` (None entries, from a followed file, only advance time)."""
        if self.engine is not None:
            self._feed_engine(records)
            return
        until = self.until
        n = self.messages
        for record in records:
            if record is None:
                self._tick(self.last_stamp)
                continue
            if until and record[0] > until:
                self.stopped = True
                break
            n = self._message(record, n)
        self.messages = n

    def feed_batches(self, items: Iterable[Record | Batch]) -> None:
        """:meth:`feed` for an input read in batches (:meth:`FileSource.items
        <gateway.audit.sources.FileSource.items>`): the fast path reads a file log's batches
        without making a record of each message. Only with :attr:`engine`."""
        assert self.engine is not None
        self._feed_engine(items)

    def _feed_engine(self, items: Iterable[Record | None] | Iterable[Record | Batch]) -> None:
        """The compiled fast path reads the messages and checks those it can; it stops for
        the clock (every :data:`TICK` messages), for a message it hands over (read here, by
        :meth:`_message`, its orders handed over first), an idle followed file, or ``until``."""
        engine = self.engine
        assert engine is not None
        it = iter(items)
        n = self.messages
        try:
            while True:
                kind, n, item = engine.run(it, n)
                if kind == _TICK:
                    self.messages = n
                    self._tick(item)
                elif kind == _DECLINED:
                    n = self._message(item, n)
                elif kind == _IDLE:
                    self._tick(self.last_stamp)
                else:
                    self.stopped = kind == _STOPPED
                    break
        finally:
            self.messages = n
            self.skipped += engine.take_skipped()

    def _message(self, record: Record, n: int) -> int:
        """One message, the :data:`TICK` clock after it; the count ``n`` after it."""
        stamp, raw, line, origin = record
        n += 1
        v = self.scanner.fields(raw)
        if v is None:
            self.findings.add(Finding(Kind.GARBLED, origin.name, "not a FIX message: "
                                      f"{raw[:60]!r}", stamp, f"{origin.name}:{line}"))
            return n
        sender = v[SENDER]
        s = origin.sessions.get((sender, v[TARGET]))  # type: ignore[arg-type]
        if s is None:
            s = self._session(v, origin, stamp)
        if s is _SKIP:
            self.skipped += 1
            return n
        assert isinstance(s, Session)
        s.messages += 1
        s.last_stamp = stamp
        if sender != s.local:
            s.incoming += 1
        try:
            seq: int | None = int(v[SEQ])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            seq = None
            self._finding(s, Kind.GARBLED, f"MsgSeqNum (34) is {_s(v[SEQ])}", stamp, line,
                          origin, None, raw)
        if seq is not None:
            expected = s.expected
            if expected.get(sender) == seq:
                expected[sender] = seq + 1
            else:
                self._sequence(s, v, seq, expected.get(sender), stamp, line, origin, raw)
        mt = v[MSG_TYPE]
        book = s.book
        ref: int | None = None
        if mt == b"j" or mt == b"3":
            ref_text = v[REF_SEQ_NUM]
            try:
                ref = int(ref_text) if ref_text is not None else None
            except ValueError:
                ref = None
        if book.fast is not None and mt in ORDER_TYPES:
            book.fast.claim(v, seq, ref)
        if mt == b"8":
            book.report(v, seq, stamp, raw, line, origin)
        elif mt == b"D":
            book.now = self.clock.seconds(stamp) or book.now
            book.new_order(v, seq, stamp, raw, line, origin)
        elif mt == b"F" or mt == b"G":
            book.now = self.clock.seconds(stamp) or book.now
            book.cancel(mt, v, seq, stamp, raw, line, origin)
        elif mt == b"9":
            book.cancel_reject(v, seq, stamp, raw, line, origin)
        elif mt == b"j" or mt == b"3":
            book.rejected(v, ref, v[BUSINESS_REJECT_REF_ID] if mt == b"j" else None,
                          stamp, raw, line, origin)
        elif mt == b"A" or mt == b"5":
            self._logon_logout(s, v, stamp, line, origin)
        if not n & (TICK - 1) or n == 1:
            self.messages = n
            self._tick(stamp)
        return n

    def _tick(self, stamp: bytes) -> None:
        now = self.clock.seconds(stamp) if stamp else None
        self.last_stamp = stamp or self.last_stamp
        if now is None:
            return
        self.now = now
        for s in self.sessions.values():
            s.book.now = now
        if self.engine is not None:  # its requests now due: the books' to report
            self.engine.promote_due(now)
        for _, _, req, book in self.deadlines.due(now):
            if req.open:
                book.unanswered(req, f"got no answer within {ANSWER_TIMEOUT:g}s")
        for s in self.sessions.values():
            s.book.evict()

    # --- sessions -------------------------------------------------------------------------------

    def _session(self, v: Fields, origin: Origin, stamp: bytes) -> Session | object:
        sender, target = v[SENDER] or b"?", v[TARGET] or b"?"
        begin = _s(v[BEGIN])
        local: bytes | None = None
        if origin.prefix is not None:
            for a, b in ((sender, target), (target, sender)):
                p = f"{begin}-{_s(a)}-{_s(b)}"
                if origin.prefix == p or origin.prefix.startswith(p + "-"):
                    local = a
                    break
        if local is None:
            for a, b in ((sender, target), (target, sender)):
                if f"{begin}:{_s(a)}->{_s(b)}" in self.sessions:
                    local = a
                    break
        if local is None and self.session_filter is not None:
            wanted = self.session_filter.local
            if wanted is not None and wanted.encode() in (sender, target):
                local = wanted.encode()
        if local is None:
            mt = v[MSG_TYPE]
            local = sender if mt in ANSWER_TYPES else target
        remote = target if local == sender else sender
        key = f"{begin}:{_s(local)}->{_s(remote)}"
        session: Session | object | None = self.sessions.get(key)
        if session is None:
            if self.session_filter is not None and not self.session_filter.matches(
                    begin, _s(local), _s(remote)):
                session = _SKIP
            else:
                book = OrderBook(key, self.findings, self.deadlines, self.numbers,
                                 self.on_chain, self.keep_messages)
                if self.now is not None:
                    book.now = self.now
                session = Session(key, begin, local, remote, book)
                session.first_stamp = stamp
                self.sessions[key] = session
                if self.engine is not None:
                    book.attach(self.engine.book(book, session, orjson.dumps(key)))
        origin.sessions[(v[SENDER], v[TARGET])] = session  # type: ignore[index]
        return session

    def _finding(self, s: Session, kind: Kind, text: str, stamp: bytes, line: int,
                 origin: Origin, seq: int | None, raw: bytes) -> None:
        self.findings.add(Finding(kind, s.key, text, stamp, f"{origin.name}:{line}", seq,
                                  raw=raw if self.keep_messages else None))

    def _sequence(self, s: Session, v: Fields, seq: int, exp: int | None, stamp: bytes,
                  line: int, origin: Origin, raw: bytes) -> None:
        """Every MsgSeqNum but the expected one (see the module docstring)."""
        sender = v[SENDER]
        mt = v[MSG_TYPE]
        possdup = v[POSS_DUP] == b"Y"
        where = f"{origin.name}:{line}"
        if mt == b"4":
            try:
                new = int(v[NEW_SEQ_NO])  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self._finding(s, Kind.GARBLED, f"SequenceReset with NewSeqNo (36) "
                              f"{_s(v[NEW_SEQ_NO])}", stamp, line, origin, seq, raw)
                return
            if v[GAP_FILL] == b"Y":
                if exp is not None and seq > exp:
                    self._gap(s, sender, exp, seq - 1, stamp, where)
                self._fill(s, sender, seq, new - 1)
                s.expected[sender] = max(exp or 0, new)
            else:
                if exp is not None and new < exp:
                    self._reset(s, sender, f"SequenceReset-Reset from {_s(sender)}: MsgSeqNum "
                                f"{exp} -> {new}", stamp, where)
                s.expected[sender] = new
            return
        if exp is None:
            s.expected[sender] = seq + 1
            return
        if mt == b"A" and (v[RESET_SEQ_NUM] == b"Y" or (seq == 1 and not possdup)):
            if seq < exp or v[RESET_SEQ_NUM] == b"Y":
                why = "ResetSeqNumFlag" if v[RESET_SEQ_NUM] == b"Y" else "MsgSeqNum 1"
                self._reset(s, sender, f"Logon from {_s(sender)} with {why}: MsgSeqNum "
                            f"{exp} -> {seq}", stamp, where)
                s.expected[sender] = seq + 1
                return
        if seq > exp:
            self._gap(s, sender, exp, seq - 1, stamp, where)
            s.expected[sender] = seq + 1
        elif possdup:
            self._fill(s, sender, seq, seq)
        else:
            self._finding(s, Kind.SEQUENCE_RESET, f"MsgSeqNum {seq} from {_s(sender)} where "
                          f"{exp} was expected, without PossDupFlag, SequenceReset or a Logon "
                          "that resets", stamp, line, origin, seq, raw)
            s.expected[sender] = seq + 1

    def _gap(self, s: Session, sender: bytes | None, first: int, last: int, stamp: bytes,
             where: str) -> None:
        gaps = s.gaps.setdefault(sender, [])
        gaps.append([first, last, stamp, where])
        if len(gaps) > MAX_GAPS:
            self._report_gap(s, sender, gaps.pop(0))

    def _fill(self, s: Session, sender: bytes | None, first: int, last: int) -> None:
        gaps = s.gaps.get(sender)
        if not gaps:
            return
        kept: list[list[object]] = []
        for gap in gaps:
            lo, hi = gap[0], gap[1]
            assert isinstance(lo, int) and isinstance(hi, int)
            if last < lo or first > hi:
                kept.append(gap)
                continue
            if lo < first:
                kept.append([lo, first - 1, gap[2], gap[3]])
            if hi > last:
                kept.append([last + 1, hi, gap[2], gap[3]])
        s.gaps[sender] = kept

    def _report_gap(self, s: Session, sender: bytes | None, gap: list[object]) -> None:
        lo, hi, stamp, where = gap
        span = f"MsgSeqNum {lo}" if lo == hi else f"MsgSeqNum {lo} to {hi}"
        assert isinstance(stamp, bytes) and isinstance(where, str)
        self.findings.add(Finding(Kind.SEQUENCE_GAP, s.key, f"{span} from {_s(sender)} never "
                                  "appear (not resent, not gap-filled)", stamp, where))

    def _reset(self, s: Session, sender: bytes | None, text: str, stamp: bytes,
               where: str) -> None:
        for gap in s.gaps.pop(sender, []):
            self._report_gap(s, sender, gap)
        self.findings.event(Event("reset", s.key, text, stamp, where))

    def _logon_logout(self, s: Session, v: Fields, stamp: bytes, line: int,
                      origin: Origin) -> None:
        sender = v[SENDER]
        other = v[TARGET]
        where = f"{origin.name}:{line}"
        if v[MSG_TYPE] == b"A":
            if v[DEFAULT_APPL_VER_ID] is not None:
                s.appl_ver = _appl_ver(v[DEFAULT_APPL_VER_ID])  # type: ignore[arg-type]
            if other in s.logon:  # the answer to the other side's Logon
                del s.logon[other]
                self.findings.event(Event("logon", s.key, f"{_s(other)} logged on",
                                          stamp, where))
            else:
                if sender in s.logon:
                    st, wh = s.logon.pop(sender)
                    self.findings.event(Event("logon-unanswered", s.key, f"Logon from "
                                              f"{_s(sender)} got no answer", st, wh))
                s.logon[sender] = (stamp, where)
        else:
            pending = s.logon.pop(other, None)
            text = _s(v[TEXT]) if v[TEXT] is not None else "no Text"
            if pending is not None:
                self.findings.event(Event("logon-rejected", s.key, f"Logon from {_s(other)} "
                                          f"answered by a Logout: {text}", pending[0],
                                          pending[1]))
            else:
                self.findings.event(Event("logout", s.key, f"Logout from {_s(sender)}: {text}",
                                          stamp, where))

    # --- the end -----------------------------------------------------------------------------

    def finish(self) -> None:
        """The end of the input (or of ``--until``): what is still waiting is unanswered,
        gaps still open are findings, every order is handed on."""
        why = ("got no answer before --until" if self.stopped
               else "got no answer before the log ends")
        for s in self.sessions.values():
            for sender, (stamp, where) in list(s.logon.items()):
                self.findings.event(Event("logon-unanswered", s.key,
                                          f"Logon from {_s(sender)} got no answer", stamp,
                                          where))
            s.logon.clear()
            for sender, gaps in s.gaps.items():
                for gap in gaps:
                    self._report_gap(s, sender, gap)
            s.gaps.clear()
            s.book.finish(why)
        self.deadlines.clear()
        if self.engine is not None:
            self.engine.clear()

    @property
    def retained(self) -> int:
        """Orders in memory now, over all sessions."""
        return sum(s.book.retained for s in self.sessions.values())

    def state_sizes(self) -> dict[str, int]:
        """How many entries each container of the audit's state holds now, summed over the
        sessions: what must stay bounded by the open orders (and the closed ones' window),
        not grow with the log (``tests/audit/test_bounded.py``)."""
        sizes = {"sessions": len(self.sessions), "deadlines": len(self.deadlines),
                 "clock": self.clock.size, "findings": len(self.findings.kept),
                 "events": len(self.findings.events)}
        for s in self.sessions.values():
            for name, n in (*s.book.state_sizes().items(),
                            ("gaps", sum(len(g) for g in s.gaps.values())),
                            ("expected", len(s.expected)), ("logons", len(s.logon))):
                sizes[name] = sizes.get(name, 0) + n
        return sizes


def _appl_ver(value: bytes) -> str:
    from gateway.fix.dictionary import APPL_VER_IDS

    return APPL_VER_IDS.get(value, value.decode("ascii", "replace"))

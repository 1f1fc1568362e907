"""RequestForPositions (AN) -> RequestForPositionsAck (AO), then one PositionReport (AP) per
position of the session (never another session's): per account, venue (SecurityExchange 207
and an exchange party) and instrument, LongQty / ShortQty (704/705, PosType TOT), the average
entry price as PriorSettlPrice (734), the mark (the venue's mid while its book is watched,
else its last price) as SettlPrice (730, theoretical), the unrealized PnL at that mark
(PosAmtType FMTM) and the realized PnL (TVAR), both in the quote currency, and the fees paid
in Text.

With SubscriptionRequestType 1 the request stays: after each fill that changes a position it
matches, that position's PositionReport is sent again (with the request's PosReqID and 263=1);
263=2 with the same PosReqID ends it, as does the session's logout."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.fix.message import Message, fix_decimal
from gateway.fix.session import Session

from .book import ZERO, Position, Positions
from .exposure import Mark

CLIENT_ID = b"3"  # PartyRole (452)
EXCHANGE = b"22"
PROPRIETARY = b"D"  # PartyIDSource (447)

# PosReqResult (728)
VALID = b"0"
INVALID = b"1"
NONE_FOUND = b"2"
# PosReqStatus (729)
COMPLETED = b"0"
REJECTED = b"2"


@dataclass(frozen=True, slots=True)
class _Filter:
    accounts: frozenset[str] | None
    symbol: str | None
    venue: str | None

    def matches(self, p: Position) -> bool:
        return ((self.accounts is None or p.account in self.accounts)
                and self.symbol in (None, p.symbol) and self.venue in (None, p.venue))


class PositionRequests:
    def __init__(self, positions: Positions, mark: Mark, serves: Callable[[Session], bool],
                 clock: Callable[[], float] = time.time) -> None:
        self.positions = positions
        self.mark = mark
        """(venue, symbol) -> the price positions are marked at."""
        self.serves = serves
        self.clock = clock
        self._ids = itertools.count(1)
        self._subs: dict[str, dict[bytes, tuple[Session, _Filter]]] = {}
        """Session id -> PosReqID -> (the session, what the subscription covers)."""

    def watched(self, session_id: str) -> bool:
        """Whether a client of ``session_id`` subscribed to positions (a fill need not say it
        changed one otherwise)."""
        return bool(self._subs.get(session_id))

    def changed(self, p: Position) -> None:
        """A fill changed ``p``: its subscribers are sent its report again."""
        for req_id, (session, wanted) in list(self._subs.get(p.session_id, {}).items()):
            if wanted.matches(p):
                self._report(session, req_id, p, 1, subscribed=True)

    def on_logout(self, session: Session) -> None:
        self._subs.pop(str(session.sid), None)

    def on_request(self, session: Session, msg: Message, now: float) -> None:
        req_id = msg.get(710) or b""
        client = session.sid.target_comp_id
        account = msg.get_str(1)
        if not self.serves(session):
            self._ack(session, req_id, account or client, INVALID, REJECTED, 0,
                      "no positions for this session")
            return
        if msg.get(724) != b"0":
            self._ack(session, req_id, account or client, INVALID, REJECTED, 0,
                      "only PosReqType 0 (positions) is served")
            return
        kind = msg.get(263) or b"0"
        sid = str(session.sid)
        if kind == b"2":
            if self._subs.get(sid, {}).pop(req_id, None) is None:
                self._ack(session, req_id, account or client, INVALID, REJECTED, 0,
                          f"PosReqID {req_id.decode(errors='replace')} is not subscribed")
            else:
                self._ack(session, req_id, account or client, VALID, COMPLETED, 0, None)
            return
        if kind not in (b"0", b"1"):
            self._ack(session, req_id, account or client, INVALID, REJECTED, 0,
                      f"SubscriptionRequestType {kind.decode(errors='replace')} is not "
                      "supported")
            return
        if kind == b"1" and req_id in self._subs.get(sid, {}):
            self._ack(session, req_id, account or client, INVALID, REJECTED, 0,
                      f"PosReqID {req_id.decode(errors='replace')} is already subscribed")
            return
        # the account a request names; the client's own CompID also stands for its orders
        # without an Account (1)
        wanted = _Filter(None if account is None else frozenset(
            {account, ""} if account == client else {account}), msg.get_str(55),
            msg.get_str(207))
        found = [p for p in self.positions.of_session(sid) if wanted.matches(p)]
        if kind == b"1":
            self._subs.setdefault(sid, {})[req_id] = (session, wanted)
        if not found:
            self._ack(session, req_id, account or client, NONE_FOUND, COMPLETED, 0,
                      "no position matches" + (" yet: updates follow" if kind == b"1" else ""))
            return
        self._ack(session, req_id, account or client, VALID, COMPLETED, len(found), None)
        for p in found:
            self._report(session, req_id, p, len(found), subscribed=kind == b"1")

    def _parties(self, session: Session, venue: str | None) -> list[tuple[int, bytes]]:
        out = [(453, b"2" if venue else b"1"), (448, session.sid.target_comp_id.encode()),
               (447, PROPRIETARY), (452, CLIENT_ID)]
        if venue:
            out += [(448, venue.encode()), (447, PROPRIETARY), (452, EXCHANGE)]
        return out

    def _ack(self, session: Session, req_id: bytes, account: str, result: bytes,
             status: bytes, count: int, text: str | None) -> None:
        body = [(721, b"%d" % next(self._ids)), (710, req_id), (727, b"%d" % count),
                (728, result), (729, status), *self._parties(session, None),
                (1, account.encode()), (581, b"1")]
        if text:
            body.append((58, text.encode()))
        session.send_if_logged_on(b"AO", body, self.clock())

    def _report(self, session: Session, req_id: bytes, p: Position, count: int,
                subscribed: bool = False) -> None:
        mark = self.mark(p.venue, p.symbol)
        unrealized = p.unrealized(mark)
        today = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%d").encode()
        long_qty = p.quantity if p.quantity > ZERO else ZERO
        short_qty = -p.quantity if p.quantity < ZERO else ZERO
        amounts = [(707, b"TVAR"), (708, fix_decimal(p.realized))]
        if unrealized is not None:
            amounts = [(707, b"FMTM"), (708, fix_decimal(unrealized)), *amounts]
        body = [
            (721, b"%d" % next(self._ids)), (710, req_id), (724, b"0"),
            *([(263, b"1")] if subscribed else []), (727, b"%d" % count),
            (728, VALID), (715, today), *self._parties(session, p.venue),
            (1, (p.account or session.sid.target_comp_id).encode()), (581, b"1"),
            (55, p.symbol.encode()), (207, p.venue.encode()),
            (730, fix_decimal(mark if mark is not None else p.avg_price)), (731, b"2"),
            (734, fix_decimal(p.avg_price)),
            (702, b"1"), (703, b"TOT"), (704, fix_decimal(long_qty)),
            (705, fix_decimal(short_qty)),
            (753, b"%d" % (len(amounts) // 2)), *amounts,
        ]
        if p.fees:
            fees = ", ".join(f"{fix_decimal(v).decode()} {c}" for c, v in sorted(p.fees.items()))
            body.append((58, f"fees {fees}".encode()))
        session.send_if_logged_on(b"AP", body, self.clock())


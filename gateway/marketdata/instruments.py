"""SecurityListRequest (x) -> SecurityList (y): the instruments the session's venues list, each
with its venue (SecurityExchange 207), quote currency (15), tick size (MinPriceIncrement 969),
lot size (RoundLot 561), minimum quantity (MinTradeVol 562) and minimum notional (fixgw's
MinNotional 20001), in the order the FIX version's dictionary gives them."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from connectors.base import Connector, Instrument, InstrumentKind, VenueError
from gateway.fix.custom import MIN_NOTIONAL
from gateway.fix.message import Message, fix_decimal
from gateway.fix.session import Session

log = logging.getLogger("fixgw.marketdata")

# SecurityRequestResult (560)
VALID = b"0"
INVALID = b"1"
NONE_FOUND = b"2"
NOT_AUTHORIZED = b"3"
UNAVAILABLE = b"4"

# SecurityListRequestType (559)
ONE_SYMBOL = b"0"
ALL = b"4"


class SecurityListRequests:
    def __init__(self, connectors: Mapping[str, Connector],
                 venues_for: Callable[[Session], frozenset[str] | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.connectors = connectors
        self.venues_for = venues_for
        self.clock = clock
        self._ids = itertools.count(1)

    def on_request(self, session: Session, msg: Message, now: float) -> Awaitable[bool]:
        return asyncio.get_running_loop().create_task(self._answer(session, msg))

    async def _answer(self, session: Session, msg: Message) -> bool:
        req_id = msg.get(320) or b""
        kind = msg.get(559)
        symbol = msg.get_str(55)
        venue = msg.get_str(207)
        allowed = self.venues_for(session)
        if allowed is None:
            return self._result(session, req_id, NOT_AUTHORIZED, "no instruments for this "
                                "session")
        if kind not in (ONE_SYMBOL, ALL):
            return self._result(session, req_id, INVALID, "SecurityListRequestType "
                                f"{(kind or b'').decode(errors='replace')} is not supported "
                                "(0 Symbol, 4 all)")
        if msg.get(263) not in (None, b"0"):
            return self._result(session, req_id, INVALID, "only a snapshot (263=0) of the "
                                "instruments is served")
        if venue is not None and venue not in allowed:
            return self._result(session, req_id, NOT_AUTHORIZED,
                                f"venue {venue} is not one this session may use")
        venues = [v for v in self.connectors if v in allowed and venue in (None, v)]
        listed: list[tuple[str, Instrument]] = []
        for name in venues:
            try:
                instruments = await self.connectors[name].instruments()
            except VenueError as exc:
                return self._result(session, req_id, UNAVAILABLE,
                                    f"the instruments of {name} are unavailable: {exc}")
            listed += [(name, i) for i in instruments
                       if kind == ALL or i.symbol == symbol]
        if not listed:
            return self._result(session, req_id, NONE_FOUND, "no instrument matches")
        entries: list[tuple[int, bytes]] = []
        version = session.appl_version
        for name, i in listed:
            entries += _entry(name, i, version)
        body = [(320, req_id), (322, b"%d" % next(self._ids)), (560, VALID),
                (393, b"%d" % len(listed)), (893, b"Y"), (146, b"%d" % len(listed)), *entries]
        return self._send(session, body)

    def _result(self, session: Session, req_id: bytes, result: bytes, text: str) -> bool:
        """A SecurityList with only the result (560): the message has no Text outside its
        instruments, so why is logged."""
        log.info("%s: SecurityListRequest %s: %s", session.sid, req_id.decode(errors="replace"),
                 text)
        return self._send(session, [(320, req_id), (322, b"%d" % next(self._ids)),
                                    (560, result)])

    def _send(self, session: Session, body: list[tuple[int, bytes]]) -> bool:
        return session.send_if_logged_on(b"y", body, self.clock())


def _entry(venue: str, i: Instrument, version: str) -> list[tuple[int, bytes]]:
    symbol, exchange = (55, i.symbol.encode()), (207, venue.encode())
    tick, lot = (969, fix_decimal(i.tick_size)), (561, fix_decimal(i.lot_size))
    min_qty = (562, fix_decimal(i.min_qty))
    currency = (15, i.quote.encode())
    # a derivative's quantities are in its base asset here (the connectors convert contracts):
    # ContractMultiplier (231) 1 says so
    multiplier = [(231, b"1")] if i.kind is InstrumentKind.PERPETUAL else []
    if version == "FIX.5.0SP2":  # Instrument (55 .. 231 .. 969 .. 207), BaseTradingRules, 15
        out = [symbol, *multiplier, tick, exchange, min_qty, lot, currency]
    elif version == "FIX.5.0":  # Instrument (55 .. 231, 969 .. 207), 15, 561, 562
        out = [symbol, *multiplier, tick, exchange, currency, lot, min_qty]
    else:  # FIX 4.4: Instrument (55 .. 231 .. 207), 15, 561, 562, then 969 (added to 4.4)
        out = [symbol, *multiplier, exchange, currency, lot, min_qty, tick]
    if i.min_notional > 0:
        out.append((MIN_NOTIONAL, fix_decimal(i.min_notional)))
    return out


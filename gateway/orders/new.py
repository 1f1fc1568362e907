"""NewOrderSingle (D): parse, route, check (venue capabilities, instrument rules, risk), record
the intent, and hand the order to its executor (Invariant 1: the venue hears of it only once it
is stored). A resend of an order already received (PossResend, or PossDup after a crash) is
answered with its status, never placed twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from connectors.base import Connector, Instrument, OrderType, TimeInForce, venue_client_order_id
from gateway.fix.custom import ICEBERG, SOR
from gateway.fix.message import FieldMap, FieldValueError, Message
from gateway.fix.session import Session
from gateway.native import dataclass_init_when_interpreted
from gateway.risk.checks import RiskEngine
from gateway.routing.router import (
    RoutingError,
    SessionRouting,
    SymbolMap,
    UnknownSymbol,
    resolve_venue,
)

from . import fixmap
from .book import OrderBook
from .executor import Executor
from .filters import instrument_rules
from .fixmap import (
    EXEC_PENDING_NEW,
    EXEC_REJECTED,
    EXEC_STATUS,
    Execution,
    ListOrder,
    NewOrder,
    Refusal,
)
from .lifecycle import OrdStatus
from .model import Order
from .recorder import Recorder, SessionState
from .tasks import Tasks


@dataclass(frozen=True, slots=True)
class Listing:
    venue: str
    instrument: Instrument

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, venue: str, instrument: Instrument) -> None:
        self.venue = venue  # type: ignore[misc]
        self.instrument = instrument  # type: ignore[misc]


dataclass_init_when_interpreted(Listing)


INTERNAL = frozenset({ICEBERG, SOR})
"""Strategies the gateway chooses itself (an iceberg: by MaxFloor, 111), never a client's
TargetStrategy (847)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """One new order after its checks: ``order`` with the future of its stored intent
    (``persisted``) when it goes on to its executor; ``order`` alone when the checks refused
    it (stored, rejected); ``refused`` alone, what its Rejected report said, when it could not
    even be described (nothing stored)."""

    order: Order | None = None
    persisted: asyncio.Future[None] | None = None
    refused: ListOrder | None = None

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, order: Order | None = None,
                 persisted: asyncio.Future[None] | None = None,
                 refused: ListOrder | None = None) -> None:
        self.order = order  # type: ignore[misc]
        self.persisted = persisted  # type: ignore[misc]
        self.refused = refused  # type: ignore[misc]


dataclass_init_when_interpreted(Admission)


class NewOrders:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        sessions: dict[str, SessionState],
        connectors: dict[str, Connector],
        symbols: SymbolMap,
        risk: RiskEngine,
        down: dict[str, str],
        executor: Callable[[Order], Executor],
        strategies: frozenset[str],
        tasks: Tasks,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.sessions = sessions
        self.connectors = connectors
        self.symbols = symbols
        self.risk = risk
        self.down = down
        self.executor = executor
        self.strategies = strategies
        self.tasks = tasks

    async def possible_resend(self, session: Session, msg: Message, now: float) -> bool:
        """PossResend (97=Y), or PossDupFlag (43=Y) on a message we are told we never
        processed (a crash can lose the target sequence number but never the stored intent):
        the client may have sent this order before. An order already placed is answered with
        its status, not placed again."""
        sid = str(session.sid)
        cl = msg.get_str(11) or ""
        o = self.book.by_cl(sid, cl) or await self.recorder.stored_order(sid, cl)
        if o is None:
            self.on_new_order(session, msg, now)
            return True
        ex = Execution(f"{o.order_id}.S{time.time_ns()}", EXEC_STATUS,
                       text="possible duplicate: this order was already received")
        return self.recorder.send_now(
            session, b"8", fixmap.execution_report(o, ex, time.time_ns(), self.recorder.ts))

    def on_new_order(self, session: Session, msg: Message, now: float) -> None:
        admitted = self.admit(session, msg, now)
        if admitted.persisted is not None and admitted.order is not None:
            self.tasks.spawn(self.executor(admitted.order).place(admitted.order,
                                                                 admitted.persisted))

    def admit(
        self, session: Session, msg: FieldMap, now: float, *, list_id: str | None = None
    ) -> Admission:
        """Parse, route, check and record one new order: a NewOrderSingle, or one order of the
        NewOrderList ``list_id``. A refused order is rejected (the client told) here; one that
        passed is booked and its intent recorded: the caller hands it to its executor."""
        sid = str(session.sid)
        st = self.sessions[sid]
        order_id = str(self.recorder.take_id("order"))
        try:
            req = fixmap.parse_new_order(msg, st.policy.default_time_in_force)
            if req.strategy is not None and (req.strategy not in self.strategies
                                             or req.strategy in INTERNAL):
                raise Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                              f"TargetStrategy (847) {req.strategy} is not offered")
            strategy = req.strategy
            if req.max_floor is not None:  # (parse_new_order: a limit order, no 847)
                if ICEBERG not in self.strategies:
                    raise Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                                  "MaxFloor (111) (an iceberg) is not offered")
                strategy = ICEBERG
        except (Refusal, FieldValueError) as exc:
            reason = exc.reason if isinstance(exc, Refusal) else fixmap.ORD_REJ_OTHER
            return self._reject_new(session, msg, order_id, reason, str(exc), list_id)
        routing = st.policy.routing
        routed = req.destination == SOR or (req.destination is None and routing.sor)
        try:
            if routed:
                if SOR not in self.strategies:
                    raise Refusal(fixmap.ORD_REJ_UNSUPPORTED, "smart order routing (ExDestination "
                                  "(100) SOR) is not offered")
                if req.time_in_force is TimeInForce.FOK:
                    raise Refusal(fixmap.ORD_REJ_UNSUPPORTED, "a fill-or-kill order cannot be "
                                  "split across venues: name its venue in ExDestination (100)")
                # (a strategy's children go through the router: the parent has no venue)
                venue = SOR
                insts = self._routed(routing, req, strategy is None)
                strategy = strategy or SOR
                conn, inst = self.connectors[insts[0].venue], insts[0].instrument
            else:
                venue = resolve_venue(routing, req.destination, req.account)
                conn_ = self.connectors.get(venue)
                if conn_ is None:
                    raise RoutingError(f"venue {venue} is not configured")
                conn = conn_
                if venue in self.down:
                    return self._reject_new(session, msg, order_id,
                                            fixmap.ORD_REJ_EXCHANGE_CLOSED,
                                            f"venue {venue} is unavailable ({self.down[venue]})",
                                            list_id)
                inst = self.symbols.instrument(venue, req.symbol, req.security_id,
                                               req.security_id_source)
                insts = [Listing(venue, inst)]
        except Refusal as refused:  # (each clause a name: mypyc types a name once)
            return self._reject_new(session, msg, order_id, refused.reason, str(refused), list_id)
        except RoutingError as unrouted:
            reason = (fixmap.ORD_REJ_UNKNOWN_SYMBOL if isinstance(unrouted, UnknownSymbol)
                      else fixmap.ORD_REJ_BROKER)
            return self._reject_new(session, msg, order_id, reason, str(unrouted), list_id)
        o = Order(order_id=order_id, session_id=sid, venue=venue, symbol=inst.symbol,
                  created_ns=time.time_ns(), strategy=strategy, max_floor=req.max_floor,
                  effective_time_ns=req.effective_time_ns,
                  strategy_parameters=req.strategy_parameters, list_id=list_id, **req.terms())
        if o.strategy is None:
            o.venue_client_order_id = venue_client_order_id(
                order_id, 0, conn.info.client_order_id_rules)
        o.updated_ns = o.created_ns  # as new_order() has it when the log is replayed
        if self.book.has_cl(sid, req.cl_ord_id):
            refusal: Refusal | None = Refusal(
                fixmap.ORD_REJ_DUPLICATE, f"duplicate ClOrdID {req.cl_ord_id}: a live order "
                "has it")
        else:
            refusal = self._pre_trade(req, o, conn, insts, now)
        if refusal is not None:
            self.recorder.created(o)
            self.recorder.record(o, "rejected", {"text": refusal.text, "by": "gateway",
                                                 "ord_rej_reason": refusal.reason.decode()},
                                 Execution(self.recorder.exec_id(o), EXEC_REJECTED,
                                           text=refusal.text, ord_rej_reason=refusal.reason))
            return Admission(o)
        self.book.add(o)
        self.risk.opened(sid, o.account)
        execution = (Execution(self.recorder.exec_id(o), EXEC_PENDING_NEW)
                     if st.policy.report_pending_new else None)
        return Admission(o, self.recorder.created(o, execution))

    def _routed(self, routing: SessionRouting, req: NewOrder, own_tif: bool) -> list[Listing]:
        """The venues the smart order router may send ``req`` to: the session's (the account's)
        that list its symbol and are up (and, ``own_tif``: its children having its
        TimeInForce, that support it), in configuration order. RoutingError or Refusal (with
        the reason) when there is none."""
        venues = [v for v in routing.routed_venues(req.account) if v in self.connectors]
        listed: list[Listing] = []
        for venue in venues:
            try:
                listed.append(Listing(venue, self.symbols.instrument(
                    venue, req.symbol, req.security_id, req.security_id_source)))
            except UnknownSymbol:
                continue
        if not listed:
            named = req.symbol or req.security_id or "?"
            raise UnknownSymbol(f"unknown symbol {named} at {', '.join(venues) or 'any venue'}")
        up = [x for x in listed if x.venue not in self.down]
        if not up:
            raise Refusal(fixmap.ORD_REJ_EXCHANGE_CLOSED, "no venue is available: " + "; ".join(
                f"{x.venue}: {self.down[x.venue]}" for x in listed))
        tif = TimeInForce.IOC if req.type is OrderType.MARKET else req.time_in_force
        if own_tif and not any(tif in self.connectors[x.venue].capabilities.time_in_force
                               for x in up):
            raise Refusal(fixmap.ORD_REJ_UNSUPPORTED, f"TimeInForce {req.time_in_force.value} "
                          f"is not supported at {', '.join(x.venue for x in up)}")
        return up

    def _pre_trade(
        self, req: NewOrder, o: Order, conn: Connector, insts: list[Listing], now: float,
    ) -> Refusal | None:
        caps = conn.capabilities
        if req.type not in caps.order_types:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                           f"OrdType {req.type.value} is not supported at {conn.name}")
        if req.time_in_force not in caps.time_in_force and o.strategy is None:
            # (a parent never reaches the venue: its strategy chooses its children's)
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                           f"TimeInForce {req.time_in_force.value} is not supported at "
                           f"{conn.name}")
        if req.post_only and not caps.post_only:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED, f"post-only is not supported at {conn.name}")
        if req.reduce_only and not caps.reduce_only:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                           f"reduce-only is not supported at {conn.name}")
        # (a routed order must fit the rules of one of its venues at least)
        checked = [instrument_rules(x.instrument, req.quantity, req.price, req.stop_price)
                   for x in insts]
        if None not in checked:
            return checked[0]
        inst = insts[checked.index(None)].instrument
        last_price = next((p for p in (self.connectors[x.venue].last_price(o.symbol)
                                       for x in insts) if p is not None), None)
        refused = self.risk.check(
            session_id=o.session_id, account=o.account, order_type=o.type, quantity=o.quantity,
            price=o.price, last_price=last_price, now=now, side=o.side,
            asset=inst.base,
        )
        if refused is not None:
            return Refusal(refused.reason, refused.text)
        return None

    def _reject_new(
        self, session: Session, msg: FieldMap, order_id: str, reason: bytes, text: str,
        list_id: str | None = None,
    ) -> Admission:
        """ExecutionReport(Rejected) for an order that cannot even be described (not
        stored)."""
        body: list[tuple[int, bytes]] = [
            (6, b"0"), (11, msg.get(11) or b"NONE"), (14, b"0"), (17, f"{order_id}.1".encode()),
            (37, order_id.encode()), (39, b"8"),
        ]
        if msg.get(38):
            body.append((38, msg.get(38) or b""))
        body += [(54, msg.get(54) or b"1"), (55, msg.get(55) or b"NONE"), (58, text.encode())]
        if list_id is not None:
            body.append((66, list_id.encode()))
        body += [(103, reason), (150, EXEC_REJECTED), (151, b"0")]
        self.recorder.rejected_unstored(session, body, f"{order_id}.1", msg.get_str(1))
        return Admission(refused=fixmap.ListOrder(msg.get_str(11) or "NONE", order_id,
                                                  OrdStatus.REJECTED, ord_rej_reason=reason,
                                                  text=text))

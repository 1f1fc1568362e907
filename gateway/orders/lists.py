"""Order lists: NewOrderList (E), ListStatusRequest (M) and ListCancelRequest (K), answered
with ListStatus (N) (FIX 4.4 and FIX 5.0SP2, "Program / List Trading").

Each order of a NewOrderList (its NoOrders, 73, entry) is checked exactly as a NewOrderSingle
is (:meth:`NewOrders.admit`: the same parse, routing, instrument rules and risk) and is an order
of its own: its OrderID (37), its ExecutionReports (with the list's ListID, 66). One that fails
its checks is rejected alone; the others go on. Every order of the list is stored before any
venue hears of any of them (Invariant 1, for the list as a whole); then those for a venue with
a batch endpoint go to it in batches (:meth:`VenueSide.place_batch`), the others one by one.

Once every order has its first outcome (acknowledged, or rejected by the gateway or the venue),
the client gets one ListStatus (ListStatusType 429 = 1 Ack) with each order's state. It is stored
with an event of the order whose outcome completed the list, so it is sent exactly once, and a
restart that finds a list still waiting for outcomes sends it once they come (the ListID is
stored with each order). A ListStatusRequest is answered with the list's state as it is now
(429 = 2 Response); a ListCancelRequest cancels every open order of the list (each told by its
ExecutionReport), is answered at once (431 = 4 Cancelling). A list whose orders were not all
done when its Ack was sent gets one more ListStatus, unprompted, once they all are (429 = 5 All
Done, 431 = 6 All Done): filled, canceled (by a ListCancelRequest or otherwise), expired or
rejected. It too is stored with the event that completed the list, so it is sent once; a
restart follows again every list with an open order, and one whose cancel was being carried out
says Cancelling again (an order's pending cancel, stored, says it came from a ListCancelRequest).
A ListCancelRequest whose cancels are over with orders still working (a venue refused one) is
told by a ListStatus Alert (429 = 6, 431 = 3 Executing, ListStatusText naming those orders).
The lines refused before they could be described (no order stored: each has its OrderID, its
ExecutionReport Rejected was sent at once) are stored with an event of the list's first stored
order (kind ``list_status``: once its intent is committed, before the venues hear of the list),
and with its Ack; put back in OrderID order whenever the list is made again from the store.

What is refused for the list as a whole (ListStatus with ListOrderStatus 431 = 7 Reject and
ListStatusText 444, nothing placed, nothing stored): a ListID the session already used, a
BidType (394) other than 3 (no bidding process), a list in several messages (TotNoOrders 68
other than the number of NoOrders entries, or LastFragment 893 = N), ListExecInstType (433)
other than 1 (immediate), a ContingencyType (1385), ListSeqNo (67) given twice, and more than
:data:`MAX_ORDERS` orders. A ListStatusRequest or ListCancelRequest for a ListID the session
never used is refused with BusinessMessageReject (380 = 1 Unknown ID).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Connector
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.message import FieldMap, Message
from gateway.fix.session import Session
from gateway.fix.tags import BR_UNKNOWN_ID
from gateway.store.records import Snapshot

from . import fixmap
from .book import OrderBook
from .cancels import Cancellations
from .executor import Executor
from .fixmap import (
    LIST_ACK,
    LIST_ALERT,
    LIST_ALL_DONE,
    LIST_CANCELLING,
    LIST_DONE,
    LIST_EXECUTING,
    LIST_REJECT,
    LIST_RESPONSE,
    ListOrder,
)
from .lifecycle import OrdStatus
from .model import Order, OrderEvent, order_from_json
from .new import NewOrders
from .ports import OrderStorePort
from .recorder import Recorder, SessionState
from .tasks import Tasks
from .venue import VenueSide

log = logging.getLogger("fixgw.orders")

LIST_CANCEL = "list cancel"
"""The Text (58) of the Canceled reports of a ListCancelRequest, and the reason its pending
cancels are stored with (how a restart knows the list was being cancelled)."""

MAX_ORDERS = 1000
"""Orders in one NewOrderList at most."""
SP2 = "FIX.5.0SP2"
"""The application version whose ListStatus has OrderID (37) in OrdListStatGrp and
ListRejectReason (1386)."""
LIST_REJ_OTHER = b"99"
LIST_REJ_UNSUPPORTED = b"11"
LIST_REJ_DUPLICATE = b"6"
"""ListRejectReason (1386) values (FIX 5.0SP2)."""


class ListRefusal(Exception):  # noqa: N818 - an answer to the client, not our failure
    """A NewOrderList refused as a whole: ListRejectReason (1386) and ListStatusText (444)."""

    def __init__(self, reason: bytes, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(slots=True, eq=False)
class OrderList:
    """A list as the gateway follows it: its orders in ListSeqNo order (an order that could not
    even be described is the status line its Rejected report gave)."""

    session_id: str
    list_id: str
    orders: list[Order | ListOrder] = field(default_factory=list)
    building: bool = True
    """Its orders are being admitted: nothing is reported before all are."""
    acknowledged: bool = False
    """The ListStatus that answers the NewOrderList was recorded."""
    cancelling: bool = False
    """A ListCancelRequest is being carried out (the list's status says Cancelling)."""
    open_from: int = field(default=0, repr=False)
    """Orders before this index are done (an order done stays done): :meth:`done` looks on
    from here, so following a list to its end costs its length once, not once an event."""

    def lines(self) -> list[ListOrder]:
        return [ListOrder.of(o) if isinstance(o, Order) else o for o in self.orders]

    def outcomes_known(self) -> bool:
        """Every order has its first outcome (none still waits for its venue or strategy)."""
        return all(not (isinstance(o, Order) and o.status is OrdStatus.PENDING_NEW)
                   for o in self.orders)

    def done(self) -> bool:
        orders, i = self.orders, self.open_from
        while i < len(orders) and not orders[i].status.is_open:
            i += 1
        self.open_from = i
        return i == len(orders)

    def described(self) -> list[Order]:
        return [o for o in self.orders if isinstance(o, Order)]

    def refused(self) -> list[list[Any]]:
        """The lines refused before they could be described, as stored: [OrderID, ClOrdID,
        OrdRejReason, Text]. (Not a line the gateway failed on, which has no OrderID: its
        order may be stored, or not.)"""
        return [[o.order_id, o.cl_ord_id,
                 o.ord_rej_reason.decode() if o.ord_rej_reason else None, o.text]
                for o in self.orders if isinstance(o, ListOrder) and o.order_id]

    def put_back(self, refused: Sequence[Sequence[Any]]) -> None:
        """The lines of :meth:`refused`, stored, back among the orders: in OrderID order, which
        is the list's (each line took its OrderID in ListSeqNo order, a refused one too)."""
        for order_id, cl_ord_id, reason, text in refused:
            self.orders.append(ListOrder(
                str(cl_ord_id), str(order_id), OrdStatus.REJECTED,
                ord_rej_reason=reason.encode() if reason else None, text=text))
        self.orders.sort(key=lambda o: (len(o.order_id or ""), o.order_id or ""))

    def cancels_pending(self) -> bool:
        """A cancel the gateway started is under way for an open order of the list: the
        ListCancelRequest's, or one it joined (a mass cancel's, the kill switch's, a
        cancel-on-disconnect's: a pending cancel with a reason; asked again if the venue
        refuses it), or one waiting for that order's other request."""
        return any(o.is_open and (o.cancel_next is not None or (
            o.pending is not None and o.pending.kind == "cancel" and o.pending.why is not None))
            for o in self.described())

    def cancel_stored(self) -> bool:
        """An open order of the list has the ListCancelRequest's cancel pending, as stored (a
        list made again from the store is being cancelled)."""
        return any(o.is_open and o.pending is not None and o.pending.kind == "cancel"
                   and o.pending.why == LIST_CANCEL for o in self.described())

    def order_status(self) -> tuple[bytes, str | None]:
        """ListOrderStatus (431) and ListStatusText (444) of the list as it is now."""
        if self.orders and all(o.status is OrdStatus.REJECTED for o in self.orders):
            return LIST_REJECT, "every order of the list was rejected"
        if self.cancelling:
            return LIST_CANCELLING, None
        if self.done():
            return LIST_DONE, None
        return LIST_EXECUTING, None


@dataclass(frozen=True, slots=True)
class ListReport:
    """A ListStatus recorded with an event of one of the list's orders (the Report of
    :meth:`Recorder.record`): built from the list as it is when the event is applied."""

    exec_id: str
    """Not sent (a ListStatus has no ExecID): the key of the record that it was sent."""
    lst: OrderList
    status_type: bytes
    sp2: bool
    text: str | None = None
    """ListStatusText (444), when not the list's own (an Alert's)."""

    def message(
        self, o: Order, transact_ns: int, ts: TimestampFormatter
    ) -> tuple[bytes, list[tuple[int, bytes]]]:
        status, text = self.lst.order_status()
        text = self.text or text
        return b"N", fixmap.list_status(
            list_id=self.lst.list_id, status_type=self.status_type, order_status=status,
            orders=self.lst.lines(), transact_ns=transact_ns, ts=ts, text=text, sp2=self.sp2)


class Lists:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        sessions: dict[str, SessionState],
        new_orders: NewOrders,
        venue: VenueSide,
        executor: Callable[[Order], Executor],
        cancels: Cancellations,
        connectors: dict[str, Connector],
        store: OrderStorePort,
        tasks: Tasks,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.sessions = sessions
        self.new_orders = new_orders
        self.venue = venue
        self.executor = executor
        self.cancels = cancels
        self.connectors = connectors
        self.store = store
        self.tasks = tasks
        self.live: dict[tuple[str, str], OrderList] = {}
        """The lists that will report again: waiting for their orders' first outcomes, or for
        all of them to be done."""
        self._claimed: set[tuple[str, str]] = set()
        """ListIDs of NewOrderLists being received (between the store read and admission)."""

    # ---------------------------------------------------------------------------------------
    # NewOrderList (E)

    async def on_new_order_list(
        self, session: Session, msg: Message, now: float, maybe_seen: bool = False
    ) -> bool:
        """NewOrderList (E); whether it was answered (False: the client left meanwhile, and
        is asked for it again). ``maybe_seen``: PossDupFlag or PossResend -- a list already
        received is answered with its status, not placed again."""
        sid = str(session.sid)
        list_id = msg.get_str(66) or ""
        key = (sid, list_id)
        if key in self._claimed or self._live_in_book(sid, list_id):
            if maybe_seen:
                return await self.on_status_request(session, msg)
            return self._refuse(session, msg, ListRefusal(
                LIST_REJ_DUPLICATE, f"ListID (66) {list_id} is in use by a live list"))
        self._claimed.add(key)
        try:
            stored = await self.store.find_list(sid, list_id)
            if not session.is_logged_on:
                return False
            if stored:
                if maybe_seen:
                    return await self.on_status_request(session, msg)
                return self._refuse(session, msg, ListRefusal(
                    LIST_REJ_DUPLICATE, f"ListID (66) {list_id} was used already"))
            try:
                entries = _checked(msg)
            except ListRefusal as refusal:
                return self._refuse(session, msg, refusal)
            self._admit(session, list_id, entries, now)
            return True
        finally:
            self._claimed.discard(key)

    def _admit(self, session: Session, list_id: str, entries: list[FieldMap],
               now: float) -> None:
        """Check and record every order of the list, in ListSeqNo order; then report it if
        every outcome is known already, and place those that passed."""
        sid = str(session.sid)
        lst = OrderList(sid, list_id)
        self.live[(sid, list_id)] = lst
        admitted: list[tuple[Order, asyncio.Future[None]]] = []
        for entry in entries:
            try:
                a = self.new_orders.admit(session, entry, now, list_id=list_id)
            except Exception:  # one order the gateway fails on does not stop the others
                log.exception("%s: list %s: order %s failed", sid, list_id, entry.get(11))
                lst.orders.append(ListOrder(entry.get_str(11) or "NONE", None,
                                            OrdStatus.REJECTED, ord_rej_reason=b"99",
                                            text="application error"))
                continue
            if a.order is not None:
                lst.orders.append(a.order)
                if a.persisted is not None:
                    admitted.append((a.order, a.persisted))
            elif a.refused is not None:
                lst.orders.append(a.refused)
        lst.building = False
        self._progress(lst, None)
        if admitted:
            created = {o.order_id: o.last_event_id for o, _ in admitted}
            self.tasks.spawn(self._place(lst, admitted, created))

    async def _place(self, lst: OrderList, admitted: Sequence[tuple[Order, asyncio.Future[None]]],
                     created: Mapping[str, int]) -> None:
        """Write-ahead for the list as a whole: once every order's intent is stored (or its
        store failed: that order is rejected, never placed), the venues hear of them -- by a
        venue's batch endpoint where it has one, else one by one. (``created``: each order's
        last event when it was admitted, its ``created``.)"""
        await asyncio.wait([f for _, f in admitted])
        await self._keep_refused(lst, admitted, created)
        batches: dict[str, list[tuple[Order, Awaitable[None]]]] = {}
        for o, persisted in admitted:
            executor = self.executor(o)
            if executor is self.venue and self.connectors[o.venue].capabilities.batch_place:
                batches.setdefault(o.venue, []).append((o, persisted))
            else:
                self.tasks.spawn(executor.place(o, persisted))
        for venue, orders in batches.items():
            if len(orders) == 1:
                self.tasks.spawn(self.venue.place(*orders[0]))
            else:
                self.tasks.spawn(self.venue.place_batch(venue, orders))

    async def _keep_refused(self, lst: OrderList,
                            admitted: Sequence[tuple[Order, asyncio.Future[None]]],
                            created: Mapping[str, int]) -> None:
        """No order is stored for the lines refused before they could be described: an event
        (``list_status``, reported to no one) of the first admitted order whose intent is
        committed and that has had no other event since (one with a report waits for the
        session's commit: this one, stored alone, would go ahead of it) keeps them for the list
        made again from the store. Its commit is awaited before the venues hear of the list (a
        crash after they did would lose the lines). The Ack keeps them too (:meth:`_report`):
        the only copy when no order is such."""
        refused = lst.refused()
        carrier = next((o for o, f in admitted if not f.cancelled() and f.exception() is None
                        and o.last_event_id == created[o.order_id]), None) if refused else None
        if carrier is None:
            return
        kept = self.recorder.record(carrier, "list_status",
                                    {"list_id": lst.list_id, "refused": refused})
        if kept is not None:
            await asyncio.wait([kept])
            if not kept.cancelled():
                kept.exception()  # (retrieved: the recorder keeps the rows of a failed commit)

    def _live_in_book(self, sid: str, list_id: str) -> bool:
        return (sid, list_id) in self.live or any(
            o.list_id == list_id for o in self.book.client_orders(sid))

    def _refuse(self, session: Session, msg: Message, refusal: ListRefusal) -> bool:
        """ListStatus Reject of a list refused as a whole (nothing stored, nothing placed)."""
        lines = [ListOrder(e.get_str(11) or "NONE", None, OrdStatus.REJECTED)
                 for e in msg.group(73)]
        body = fixmap.list_status(
            list_id=msg.get_str(66) or "", status_type=LIST_ACK, order_status=LIST_REJECT,
            orders=lines, transact_ns=time.time_ns(), ts=self.recorder.ts, text=refusal.text,
            sp2=session.appl_version == SP2, reject_reason=refusal.reason)
        return self.recorder.send_now(session, b"N", body)

    # ---------------------------------------------------------------------------------------
    # what happens to the lists' orders (the recorder's ``list_event``)

    def on_event(self, o: Order, ev: OrderEvent) -> None:
        """An event of ``o``, an order of a list, was recorded (and its report queued)."""
        if ev.kind == "list_status" or o.list_id is None:
            return
        lst = self.live.get((o.session_id, o.list_id))
        if lst is not None and not lst.building:
            if lst.cancelling and not lst.cancels_pending():
                self._cancel_over(lst, o)
            self._progress(lst, o)

    def _cancel_over(self, lst: OrderList, o: Order) -> None:
        """No cancel of the list's ListCancelRequest is under way any more. Every order done:
        All Done follows (:meth:`_progress`). Else a cancel was refused (by the venue: the
        cancels the gateway starts have no OrderCancelReject) or the order was out of reach:
        the client is told by a ListStatus Alert (429 = 6), Executing, with the orders that
        still work."""
        lst.cancelling = False
        if lst.acknowledged and not lst.done():
            working = ", ".join(x.cl_ord_id for x in lst.described() if x.is_open)
            self._report(lst, o, LIST_ALERT, f"ListCancelRequest not carried out for {working}")

    def _progress(self, lst: OrderList, o: Order | None) -> None:
        """Report what the list has come to: its orders' first outcomes all known (the answer
        to the NewOrderList), then every order done (All Done; not when the answer already
        said so, unless a ListCancelRequest asked). Recorded with ``o``'s event (else with one
        of the list's orders)."""
        if not lst.acknowledged and lst.outcomes_known():
            lst.acknowledged = True
            self._report(lst, o, LIST_ACK)
            if lst.done() and not lst.cancelling:  # (the Ack's 431 says All Done / Reject)
                self._done_with(lst)
                return
        if lst.acknowledged and lst.done():
            lst.cancelling = False
            self._report(lst, o, LIST_ALL_DONE)
            self._done_with(lst)

    def _done_with(self, lst: OrderList) -> None:
        """Nothing more to report unprompted: forgotten here (found in the book and the store
        when asked)."""
        self.live.pop((lst.session_id, lst.list_id), None)

    def _report(self, lst: OrderList, o: Order | None, status_type: bytes,
                text: str | None = None) -> None:
        st = self.sessions.get(lst.session_id)
        session = st.session if st is not None else None
        sp2 = session is not None and session.appl_version == SP2
        described = lst.described()
        carrier = o if o is not None else (described[-1] if described else None)
        if carrier is None:
            # no order of the list could even be described: nothing stored to go with
            if session is not None:
                status, own = lst.order_status()
                self.recorder.send_now(session, b"N", fixmap.list_status(
                    list_id=lst.list_id, status_type=status_type, order_status=status,
                    orders=lst.lines(), transact_ns=time.time_ns(), ts=self.recorder.ts,
                    text=text or own, sp2=sp2))
            return
        report = ListReport(self.recorder.exec_id(carrier), lst, status_type, sp2, text)
        data: dict[str, Any] = {"list_id": lst.list_id, "type": status_type.decode()}
        refused = lst.refused()
        if refused and status_type == LIST_ACK:
            # (with its report: after the carrier's own events; the only place they are kept
            # when no order of the list was admitted, _keep_refused's otherwise)
            data["refused"] = refused
        self.recorder.record(carrier, "list_status", data, report)

    # ---------------------------------------------------------------------------------------
    # ListStatusRequest (M), ListCancelRequest (K)

    async def on_status_request(self, session: Session, msg: Message) -> bool:
        """ListStatusRequest (M) (or a NewOrderList received again): the list as it is now."""
        sid = str(session.sid)
        list_id = msg.get_str(66) or ""
        lst = await self.find(sid, list_id)
        if lst is None:
            return self._unknown(session, msg, list_id)
        status, text = lst.order_status()
        body = fixmap.list_status(
            list_id=list_id, status_type=LIST_RESPONSE, order_status=status,
            orders=lst.lines(), transact_ns=time.time_ns(), ts=self.recorder.ts, text=text,
            sp2=session.appl_version == SP2)
        return self.recorder.send_now(session, b"N", body)

    async def on_cancel_request(self, session: Session, msg: Message) -> bool:
        """ListCancelRequest (K): every open order of the list is cancelled (each told by its
        ExecutionReport, Text "list cancel"); answered now (Cancelling) and once all are done
        (All Done)."""
        sid = str(session.sid)
        list_id = msg.get_str(66) or ""
        lst = await self.find(sid, list_id)
        if lst is None:
            return self._unknown(session, msg, list_id)
        targets = [o for o in lst.described() if o.is_open and self.book.holds(o)]
        if targets:
            lst.cancelling = True
            self.live[(sid, list_id)] = lst
        status, text = lst.order_status()
        answered = self.recorder.send_now(session, b"N", fixmap.list_status(
            list_id=list_id, status_type=LIST_RESPONSE, order_status=status,
            orders=lst.lines(), transact_ns=time.time_ns(), ts=self.recorder.ts, text=text,
            sp2=session.appl_version == SP2))
        if targets:
            self.cancels.cancel(targets, reason=LIST_CANCEL)
        return answered

    def _unknown(self, session: Session, msg: Message, list_id: str) -> bool:
        if not session.is_logged_on:
            return False
        session.business_reject(msg, BR_UNKNOWN_ID, time.time(), tag=66,
                                text=f"unknown ListID {list_id}", ref_id=list_id.encode())
        return True

    async def find(self, sid: str, list_id: str) -> OrderList | None:
        """The list ``list_id`` of session ``sid``: followed here, else made of the store's
        orders (the book's own for those still open); None when the session never sent it."""
        lst = self.live.get((sid, list_id))
        if lst is not None:
            return lst
        stored, refused = await self.store.load_list(sid, list_id)
        if not stored:
            return None
        lst = self._made_of(sid, list_id, stored, refused, acknowledged=True)
        return self.live.get((sid, list_id), lst)  # (one being followed since: that one)

    def _made_of(self, sid: str, list_id: str, stored: Sequence[Snapshot],
                 refused: Sequence[Sequence[Any]], *, acknowledged: bool,
                 own: Mapping[str, Order] | None = None) -> OrderList:
        """The list of ``stored`` (its orders' snapshots) and of its ``refused`` lines (as the
        list's events keep them): each order as ``own`` holds it, else as the book does, else
        as it was stored. It is being cancelled when an open order of it has a
        ListCancelRequest's cancel pending (the cancel of one whose other cancel or replace was
        in flight waits for it in memory only: after a restart that order is not cancelled, and
        the list is not All Done until it ends)."""
        lst = OrderList(sid, list_id, building=False, acknowledged=acknowledged)
        for snapshot in stored:
            order_id = snapshot["order_id"]
            o = (own or {}).get(order_id) or self.book.orders.get(order_id)
            lst.orders.append(o if o is not None else order_from_json(snapshot))
        lst.put_back(refused)
        lst.cancelling = lst.cancel_stored()
        return lst

    # ---------------------------------------------------------------------------------------
    # restart, takeover

    def forget(self, sid: str) -> None:
        """Another node serves session ``sid`` now: its lists are followed there."""
        for key in [k for k in self.live if k[0] == sid]:
            del self.live[key]

    async def restore(self, loaded: Sequence[Order]) -> None:
        """Follow again the lists of ``loaded`` (open orders taken from the store): each still
        has its All Done to report, and its answer too when one of its orders still waits for
        its first outcome. On a takeover the venues' events already flow while the store is
        read: each list is made of ``loaded``'s own orders (which those events change), and
        once followed it reports what they did meanwhile."""
        mine = {o.order_id: o for o in loaded}
        unanswered = {(o.session_id, o.list_id) for o in loaded
                      if o.list_id is not None and o.status is OrdStatus.PENDING_NEW}
        for sid, list_id in sorted({(o.session_id, o.list_id) for o in loaded
                                    if o.list_id is not None}):
            assert list_id is not None
            if (sid, list_id) in self.live:
                continue
            stored, refused = await self.store.load_list(sid, list_id)
            if not stored or (sid, list_id) in self.live:
                continue
            lst = self._made_of(sid, list_id, stored, refused,
                                acknowledged=(sid, list_id) not in unanswered, own=mine)
            self.live[(sid, list_id)] = lst
            log.info("%s: list %s followed again (%s)", sid, list_id,
                     "its orders' first outcomes awaited" if not lst.acknowledged
                     else "until its orders are done")
            # (carried by one of loaded's own orders: never a snapshot read back, whose state
            # recorded again would overwrite what the order has come to)
            carrier = next((o for o in reversed(lst.described()) if mine.get(o.order_id) is o),
                           None)
            if carrier is not None:
                self._progress(lst, carrier)


def _checked(msg: Message) -> list[FieldMap]:
    """The list's orders in ListSeqNo (67) order, once the list as a whole is one the gateway
    takes (module docstring); ListRefusal otherwise."""
    entries = msg.group(73)
    bid_type = msg.get(394)
    if bid_type != b"3":
        raise ListRefusal(LIST_REJ_UNSUPPORTED, f"BidType (394) {_s(bid_type)} is not supported: "
                          "3 (no bidding process) is")
    total = msg.get_int(68)
    if total != len(entries) or msg.get(893) == b"N":
        raise ListRefusal(LIST_REJ_UNSUPPORTED, f"TotNoOrders (68) {total} with {len(entries)} "
                          "orders: a list must come in one message (fragments are not "
                          "supported)")
    if not entries:
        raise ListRefusal(LIST_REJ_OTHER, "the list has no orders")
    if len(entries) > MAX_ORDERS:
        raise ListRefusal(LIST_REJ_OTHER, f"at most {MAX_ORDERS} orders per list")
    if msg.get(433) not in (None, b"1"):
        raise ListRefusal(LIST_REJ_UNSUPPORTED, f"ListExecInstType (433) {_s(msg.get(433))} is "
                          "not supported: the orders are worked at once (1)")
    if 1385 in msg:
        raise ListRefusal(LIST_REJ_UNSUPPORTED, "ContingencyType (1385) is not supported: the "
                          "orders of a list are independent")
    seqs: list[int] = []
    for entry in entries:
        seq = entry.get_int(67)
        if seq is None:
            raise ListRefusal(LIST_REJ_OTHER, "ListSeqNo (67) is required on every order")
        seqs.append(seq)
    if len(set(seqs)) != len(seqs):
        raise ListRefusal(LIST_REJ_OTHER, "ListSeqNo (67) given twice")
    return [e for _, e in sorted(zip(seqs, entries, strict=True), key=lambda p: p[0])]


def _s(v: bytes | None) -> str:
    return "(none)" if v is None else v.decode("utf-8", "replace")

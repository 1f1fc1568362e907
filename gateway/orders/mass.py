"""OrderStatusRequest (H), OrderMassStatusRequest (AF) and OrderMassCancelRequest (q): answered
from the book (and the store, for an order no longer open); a mass cancel is carried out by
:class:`~gateway.orders.cancels.Cancellations`."""

from __future__ import annotations

import time

from gateway.fix.message import Message
from gateway.fix.session import Session

from . import fixmap
from .book import OrderBook
from .cancels import Cancellations
from .fixmap import EXEC_STATUS, Execution
from .recorder import Recorder


class MassRequests:
    def __init__(self, book: OrderBook, recorder: Recorder, cancels: Cancellations) -> None:
        self.book = book
        self.recorder = recorder
        self.cancels = cancels

    async def on_status(self, session: Session, msg: Message) -> bool:
        """OrderStatusRequest (H); whether the answer could be sent."""
        sid = str(session.sid)
        cl = msg.get_str(11)
        o = self.book.find(sid, cl, msg.get_str(37))
        if o is None:
            o = await self.recorder.stored_order(sid, cl, msg.get_str(37))
        if o is None:
            body: list[tuple[int, bytes]] = [
                (6, b"0"), (11, msg.get(11) or b"NONE"), (14, b"0"),
                (17, f"S{time.time_ns()}".encode()), (37, msg.get(37) or b"NONE"), (39, b"8"),
                (54, msg.get(54) or b"1"), (55, msg.get(55) or b"NONE"),
                (58, b"unknown order"), (150, EXEC_STATUS), (151, b"0"),
            ]
            return self.recorder.send_now(session, b"8", body)
        ex = Execution(f"{o.order_id}.S{time.time_ns()}", EXEC_STATUS)
        return self.recorder.send_now(
            session, b"8", fixmap.execution_report(o, ex, time.time_ns(), self.recorder.ts))

    def on_mass_status(self, session: Session, msg: Message, now: float) -> None:
        sid = str(session.sid)
        req_id = msg.get_str(584) or ""
        symbol = msg.get_str(55)
        mine = [o for o in self.book.client_orders(sid) if o.is_open
                and (symbol is None or o.symbol == symbol)]
        if not mine:
            body: list[tuple[int, bytes]] = [
                (6, b"0"), (11, b"NONE"), (14, b"0"), (17, f"S{time.time_ns()}".encode()),
                (37, b"NONE"), (39, b"8"), (54, b"1"), (55, (symbol or "NONE").encode()),
                (58, b"no open orders"), (150, EXEC_STATUS), (151, b"0"),
                (584, req_id.encode()), (911, b"0"), (912, b"Y"),
            ]
            self.recorder.send_now(session, b"8", body)
            return
        ts = time.time_ns()
        for i, o in enumerate(sorted(mine, key=lambda o: o.order_id)):
            ex = Execution(f"{o.order_id}.S{ts}", EXEC_STATUS, mass_status_req_id=req_id,
                           tot_num_reports=len(mine), last_rpt_requested=i == len(mine) - 1)
            self.recorder.send_now(session, b"8",
                                   fixmap.execution_report(o, ex, ts, self.recorder.ts))

    def on_mass_cancel(self, session: Session, msg: Message, now: float) -> None:
        sid = str(session.sid)
        req_type = msg.get(530) or b""
        symbol = msg.get_str(55)
        report_id = f"M{self.recorder.take_id('order')}"
        cl = msg.get_str(11) or ""
        if req_type not in (b"1", b"7") or (req_type == b"1" and not symbol):
            body = fixmap.mass_cancel_report(
                cl_ord_id=cl, report_id=report_id, request_type=req_type, response=b"0",
                # MassCancelRejectReason (532): 0 not supported, 1 unknown security
                affected=0, reject_reason=b"0" if req_type != b"1" else b"1",
                text="MassCancelRequestType 1 (with Symbol) and 7 are supported",
                symbol=symbol, fixt=session.sid.is_fixt)
            self.recorder.send_now(session, b"r", body)
            return
        targets = [o for o in self.book.client_orders(sid) if o.is_open
                   and o.pending is None and (req_type == b"7" or o.symbol == symbol)]
        body = fixmap.mass_cancel_report(
            cl_ord_id=cl, report_id=report_id, request_type=req_type, response=req_type,
            affected=len(targets), reject_reason=None, text=None, symbol=symbol,
            fixt=session.sid.is_fixt)
        self.recorder.send_now(session, b"r", body)
        self.cancels.cancel(targets, reason="mass cancel")

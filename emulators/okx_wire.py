"""How the OKX emulator writes the paper exchange's orders, fills and balances in OKX's JSON
(the shapes of docs-v5 "Trade / Get order details", "Get transaction details", "Get balance",
"Get positions", "Get instruments" and the WebSocket "Order channel")."""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any

from connectors.base import (
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderType,
    Side,
    TimeInForce,
    VenueEvent,
    VenueStatus,
)
from connectors.common.venue import MS
from connectors.paper.exchange import PaperExchange, PaperOrder

ORD_ID_BASE = 2_000_000_000_000_000_000

STATE = {
    VenueStatus.PENDING: "live",
    VenueStatus.NEW: "live",
    VenueStatus.PARTIALLY_FILLED: "partially_filled",
    VenueStatus.FILLED: "filled",
    VenueStatus.CANCELED: "canceled",
    VenueStatus.EXPIRED: "canceled",
    VenueStatus.REJECTED: "canceled",
}


def s(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if value else "0"


def fee_ccy(inst: Instrument, side: Side) -> str:
    """An order's ``feeCcy``: a SWAP's settle currency; on SPOT the currency received (the
    base on a buy, the quote on a sell), as OKX's own examples show ("Get order details" and
    "Get transaction details": a spot buy's ``feeCcy`` is BTC; the orders channel: a sell's
    ``fillFeeCcy`` is USDT)."""
    if inst.kind is InstrumentKind.PERPETUAL:
        return inst.settle or inst.quote
    return inst.base if side is Side.BUY else inst.quote


def ord_id(venue_order_id: str) -> str:
    """The paper exchange's ``P<seq>`` as an OKX-like numeric ordId."""
    return str(ORD_ID_BASE + int(venue_order_id[1:]))


def seq_of(trade_id: str) -> int:
    return int(trade_id[1:])


def cancel_source(reason: str) -> str:
    if reason == "cancel_all":
        return "20"  # the dead-man switch is the only cancel-all of the emulator
    if reason.startswith("fok"):
        return "13"
    if reason.startswith("ioc"):
        return "14"
    if reason.startswith("post-only"):
        return "31"
    return "1" if not reason else "0"


def exec_type(liquidity: Liquidity | None) -> str:
    return "M" if liquidity is Liquidity.MAKER else "T"


def ord_type(o: PaperOrder) -> str:
    if o.type in (OrderType.MARKET, OrderType.STOP):
        return "market"
    if o.post_only:
        return "post_only"
    return {TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok"}.get(o.time_in_force, "limit")


ZERO_D = Decimal(0)

NO_FILL = {"tradeId": "", "fillSz": "", "fillPx": "", "fillFee": "", "fillFeeCcy": "",
           "execType": "", "fillTime": "", "amendResult": "", "reqId": "", "code": "0",
           "msg": ""}
"""The ``orders`` channel fields beyond "Get order details", for an update that is no fill."""


class Wire:
    """Converts for one emulator (its instruments, contract values and the clOrdIds it
    generated for orders placed without one)."""

    def __init__(self, exchange: PaperExchange, instruments: dict[str, Instrument],
                 ct_vals: dict[str, Decimal]) -> None:
        self.exchange = exchange
        self.by_symbol = {i.symbol: i for i in instruments.values()}
        self.ct_vals = ct_vals
        self.auto_cids: set[str] = set()
        self.shown: dict[str, str] = {}
        """Our client order id -> the clOrdId it shows, for orders that reuse a clOrdId."""
        self.req_ids: dict[str, str] = {}
        self._by_order: dict[str, list[OrderFilled]] = {}
        self._sums: dict[str, list[tuple[int, Decimal, Decimal, Decimal]]] = {}
        """venue order id -> per fill: (trade seq, filled, notional, fee) so far."""
        self._indexed = 0
        self.cancel_sources: dict[str, str] = {}

    def inst_type(self, inst: Instrument) -> str:
        return "SWAP" if inst.kind is InstrumentKind.PERPETUAL else "SPOT"

    def contracts(self, inst: Instrument, qty: Decimal) -> Decimal:
        ct = self.ct_vals.get(inst.venue_symbol)
        return qty / ct if ct is not None else qty

    def cid(self, o: PaperOrder) -> str:
        if o.client_order_id in self.auto_cids:
            return ""
        return self.shown.get(o.client_order_id, o.client_order_id)

    def instrument(self, inst: Instrument) -> dict[str, Any]:
        ct = self.ct_vals.get(inst.venue_symbol)
        out: dict[str, Any] = {
            "instType": self.inst_type(inst), "instId": inst.venue_symbol, "uly": "",
            "instFamily": "", "baseCcy": "", "quoteCcy": "", "settleCcy": "", "ctVal": "",
            "ctMult": "", "ctValCcy": "", "ctType": "", "tickSz": s(inst.tick_size),
            "lotSz": s(self.contracts(inst, inst.lot_size)),
            "minSz": s(self.contracts(inst, inst.min_qty)),
            "maxLmtSz": s(self.contracts(inst, inst.max_qty)) if inst.max_qty else "99999999",
            "state": "live", "listTime": "1606468572000", "expTime": "", "lever": "",
        }
        if ct is None:
            out.update(baseCcy=inst.base, quoteCcy=inst.quote)
        else:
            fam = f"{inst.base}-{inst.quote}"
            out.update(uly=fam, instFamily=fam, settleCcy=inst.settle or inst.quote,
                       ctVal=s(ct), ctMult="1", ctValCcy=inst.base, ctType="linear",
                       lever="100")
        return out

    def ticker(self, inst: Instrument, now_ms: int) -> dict[str, Any]:
        """One item of "Market Data / Get tickers" (sizes of a SWAP in contracts). The paper
        exchange keeps no 24 h statistics: open/high/low are the last price, volumes 0."""
        ex = self.exchange
        book = ex.book(inst.symbol)
        last = ex.last_price(inst.symbol)

        def best(side: Side) -> tuple[str, str]:
            levels = book.levels(side)
            if not levels:
                return "", ""
            px, qty = levels[0]
            return s(px), s(self.contracts(inst, qty))

        bid_px, bid_sz = best(Side.BUY)
        ask_px, ask_sz = best(Side.SELL)
        return {
            "instType": self.inst_type(inst), "instId": inst.venue_symbol, "last": s(last),
            "lastSz": "0", "askPx": ask_px, "askSz": ask_sz, "bidPx": bid_px, "bidSz": bid_sz,
            "open24h": s(last), "high24h": s(last), "low24h": s(last), "volCcy24h": "0",
            "vol24h": "0", "sodUtc0": s(last), "sodUtc8": s(last), "ts": str(now_ms),
        }

    def fills_of(self, venue_order_id: str) -> list[OrderFilled]:
        """The exchange's fills of one order, indexed as they appear (no scan of them all)."""
        fills = self.exchange.fills()
        for f in fills[self._indexed:]:
            self._by_order.setdefault(f.venue_order_id, []).append(f)
            sums = self._sums.setdefault(f.venue_order_id, [])
            acc, notional, fee = sums[-1][1:] if sums else (ZERO_D, ZERO_D, ZERO_D)
            sums.append((seq_of(f.trade_id), acc + f.quantity, notional + f.quantity * f.price,
                         fee + (f.fee or ZERO_D)))
        self._indexed = len(fills)
        return self._by_order.get(venue_order_id, [])

    def order(self, o: PaperOrder) -> dict[str, Any]:
        inst = self.by_symbol[o.symbol]
        fees = sum((f.fee or Decimal(0) for f in self.fills_of(o.venue_order_id)), Decimal(0))
        return {
            "instType": self.inst_type(inst), "instId": inst.venue_symbol,
            "ordId": ord_id(o.venue_order_id), "clOrdId": self.cid(o), "tag": "",
            "px": s(o.price), "sz": s(self.contracts(inst, o.quantity)),
            "ordType": ord_type(o), "side": o.side.value,
            "posSide": "net" if self.inst_type(inst) == "SWAP" else "",
            "tdMode": "cross" if self.inst_type(inst) == "SWAP" else "cash",
            "accFillSz": s(self.contracts(inst, o.filled)),
            "avgPx": s(o.notional / o.filled) if o.filled else "",
            "state": STATE[o.status], "fee": s(-fees),
            "feeCcy": fee_ccy(inst, o.side), "reduceOnly": str(o.reduce_only).lower(),
            "cancelSource": self.cancel_sources.get(o.venue_order_id, ""),
            "cTime": str(o.updated_ns // MS), "uTime": str(o.updated_ns // MS),
        }

    def fill(self, f: OrderFilled) -> dict[str, Any]:
        o = self.exchange.order(f.client_order_id)
        assert o is not None
        inst = self.by_symbol[o.symbol]
        seq = str(seq_of(f.trade_id))
        return {
            "instType": self.inst_type(inst), "instId": inst.venue_symbol, "tradeId": seq,
            "ordId": ord_id(f.venue_order_id), "clOrdId": self.cid(o), "billId": seq,
            "tag": "", "fillPx": s(f.price), "fillSz": s(self.contracts(inst, f.quantity)),
            "side": o.side.value, "posSide": "net" if inst.kind is InstrumentKind.PERPETUAL
            else "", "execType": exec_type(f.liquidity),
            "feeCcy": f.fee_currency or "", "fee": s(-(f.fee or Decimal(0))),
            "ts": str(f.ts_ns // MS), "fillTime": str(f.ts_ns // MS),
        }

    def push(self, ev: VenueEvent) -> dict[str, Any] | None:
        """One ``orders`` channel item for an event of the paper exchange, with the order's
        state as of that event (not as of now)."""
        o = self.exchange.order(ev.client_order_id)
        if o is None:
            return None
        item = self.order(o)
        inst = self.by_symbol[o.symbol]
        item.update(NO_FILL)
        self.fills_of(o.venue_order_id)
        if isinstance(ev, OrderFilled):
            sums = self._sums[o.venue_order_id]
            at = bisect.bisect_right(sums, seq_of(ev.trade_id), key=lambda t: t[0]) - 1
            _, acc, notional, fee = sums[at]
            item.update(
                state="filled" if acc == o.quantity else "partially_filled",
                accFillSz=s(self.contracts(inst, acc)), avgPx=s(notional / acc),
                fee=s(-fee), tradeId=str(seq_of(ev.trade_id)),
                fillSz=s(self.contracts(inst, ev.quantity)), fillPx=s(ev.price),
                fillFee=s(-(ev.fee or Decimal(0))), fillFeeCcy=ev.fee_currency or "",
                execType=exec_type(ev.liquidity),
                fillTime=str(ev.ts_ns // MS), uTime=str(ev.ts_ns // MS),
            )
        elif isinstance(ev, OrderCanceled | OrderExpired):
            filled = ev.filled_quantity or Decimal(0)
            src = cancel_source(ev.reason) if isinstance(ev, OrderCanceled) else "0"
            self.cancel_sources[o.venue_order_id] = src
            item.update(state="canceled", accFillSz=s(self.contracts(inst, filled)),
                        cancelSource=src, uTime=str(ev.ts_ns // MS))
        elif isinstance(ev, OrderAmended):
            item.update(sz=s(self.contracts(inst, ev.quantity)), px=s(ev.price),
                        amendResult="0", reqId=self.req_ids.get(o.venue_order_id, ""),
                        state="partially_filled" if o.filled else "live",
                        uTime=str(ev.ts_ns // MS))
        else:  # accepted
            item.update(state="live", accFillSz="0", avgPx="0", fee="0",
                        uTime=str(ev.ts_ns // MS), cancelSource="")
        return item

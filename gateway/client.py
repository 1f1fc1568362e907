"""``fixgw client``: a small FIX initiator for trying the gateway out from a shell.

It logs on (FIX 4.4, or FIXT 1.1 with FIX 5.0SP2 as the default application version), sends one
request, prints every message it receives, waits for the answer and logs out::

    fixgw client buy BTC/USDT 0.01                      # market order
    fixgw client sell BTC/USDT 0.01 --price 99000       # limit order (GTC/IOC/FOK with --tif)
    fixgw client cancel CLIENT1-1767225600000-1
    fixgw client orders                                 # all open orders
    fixgw client list buy,BTC/USDT,0.01,90000 sell,ETH/USDT,0.1   # an order list

Sequence numbers are kept in a small JSON state file (``data/client-<SENDER>.seq``) so the next
run continues where this one stopped, as a FIX counterparty must; ``--reset`` starts both sides
at 1 again (ResetSeqNumFlag 141=Y). The client keeps no message store across runs: it answers a
ResendRequest with SequenceReset-GapFill for everything but the application messages it sent on
this connection (those are resent with PossDupFlag). It asks for a resend itself when the
gateway's MsgSeqNum jumps, and holds the messages after the gap until the gap is filled (the
session and the state file: :mod:`gateway.client_session`).

The state file also remembers the orders this client placed (ClOrdID -> symbol, side,
quantity, price), so ``cancel``/``replace``/``status`` need only the ClOrdID; for an order it does
not know it asks the gateway (OrderMassStatusRequest) or takes ``--symbol``/``--side``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from gateway.client_session import (
    MSG_NAMES,
    Body,
    ClientError,
    ClientSession,
    ClientState,
    FixMessage,
    Printer,
    SessionConfig,
)
from gateway.fix.fixtime import format_utc

ORD_STATUS_NAMES: dict[str, str] = {
    "0": "New", "1": "PartiallyFilled", "2": "Filled", "4": "Canceled", "5": "Replaced",
    "6": "PendingCancel", "8": "Rejected", "A": "PendingNew", "C": "Expired",
    "E": "PendingReplace",
}
TERMINAL = frozenset({"2", "4", "8", "C"})
_TIF_CODES = {"day": "0", "gtc": "1", "ioc": "3", "fok": "4"}
_SIDE_CODES = {"buy": "1", "sell": "2"}


# ------------------------------------------------------------------------------------------------
# commands

_ids = itertools.count(1)


def new_cl_ord_id(sender: str) -> str:
    """``<sender>-<epoch ms>-<n>``: unique across runs of the same sender."""
    return f"{sender}-{int(time.time() * 1000)}-{next(_ids)}"


@dataclass
class Outcome:
    code: int
    text: str


Handler = Callable[[FixMessage], Outcome | None]


async def wait_for(session: ClientSession, wait: float, seq: int, what: str,
                   handle: Handler) -> Outcome | None:
    """Feed received messages to ``handle`` until it returns an outcome; None when ``wait``
    seconds pass without a message. A session Reject / BusinessMessageReject of the request
    (sent as ``seq``) ends it: ``<what> refused: ...``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        msg = await session.receive(deadline)
        if msg is None:
            return None
        deadline = loop.time() + wait
        if msg.msg_type in ("3", "j") and msg.get(45) == str(seq):
            name = MSG_NAMES.get(msg.msg_type, msg.msg_type)
            return Outcome(1, f"{what} refused: {name}: {_reason(msg)}")
        out = handle(msg)
        if out is not None:
            return out


def _reason(msg: FixMessage) -> str:
    return msg.get(58) or "no reason given"


def _order_line(msg: FixMessage) -> str:
    """``CLIENT1-...-1: Filled buy 0.01 BTC/USDT CumQty=0.01 AvgPx=97000.5``."""
    status = msg.get(39) or "?"
    side = {"1": "buy", "2": "sell"}.get(msg.get(54) or "", "?")
    parts = [f"{msg.get(11)}: {ORD_STATUS_NAMES.get(status, status)}",
             f"{side} {msg.get(38) or '?'} {msg.get(55) or '?'}"]
    if msg.get(44):
        parts.append(f"@ {msg.get(44)}")
    parts.append(f"CumQty={msg.get(14) or '0'} AvgPx={msg.get(6) or '0'}")
    return " ".join(parts)


def _order_info(msg: FixMessage) -> dict[str, str]:
    info = {"symbol": msg.get(55) or "", "side": msg.get(54) or "1",
            "qty": msg.get(38) or "", "type": msg.get(40) or "2"}
    if msg.get(44):
        info["price"] = msg.get(44) or ""
    return info


async def cmd_order(session: ClientSession, args: argparse.Namespace) -> Outcome:
    cl = new_cl_ord_id(session.cfg.sender)
    side = "1" if args.command == "buy" else "2"
    body: Body = [(11, cl), (55, args.symbol), (54, side),
                  (60, format_utc(time.time()).decode()), (38, args.qty)]
    info = {"symbol": args.symbol, "side": side, "qty": args.qty}
    if args.price is not None:
        body += [(40, "2"), (44, args.price)]
        info.update(type="2", price=args.price)
    else:
        body.append((40, "1"))
        info["type"] = "1"
    if args.tif is not None:
        body.append((59, _TIF_CODES[args.tif]))
    if args.venue is not None:  # ExDestination: a venue, or SOR (the smart order router)
        body.append((100, args.venue))
    wait = args.wait
    window = args.twap or args.vwap or args.expire_in
    if args.twap is not None:  # TargetStrategy 1000 (TWAP) until ExpireTime
        body.append((847, "1000"))
    elif args.vwap is not None:  # TargetStrategy 1 (VWAP) until ExpireTime
        body.append((847, "1"))
    elif args.pov is not None:  # TargetStrategy 2 (POV) at ParticipationRate
        body += [(847, "2"), (849, args.pov)]
    if window is not None:
        body.append((126, format_utc(time.time() + window).decode()))
        wait = args.wait + window  # the children come over the whole window
    session.state.remember(cl, info)
    seq = await session.send("D", body)
    last: list[FixMessage] = []

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type != "8" or msg.get(11) != cl:
            return None
        last[:] = [msg]
        status = msg.get(39) or ""
        if status == "8":
            return Outcome(1, f"order {cl} rejected: {_reason(msg)}"
                              f" (OrdRejReason={msg.get(103) or '?'})")
        if status in TERMINAL:
            return Outcome(0, _order_line(msg))
        return None

    out = await wait_for(session, wait, seq, f"order {cl}", handle)
    if out is not None:
        return out
    if last:
        return Outcome(0, _order_line(last[0]))
    return Outcome(1, f"no ExecutionReport for {cl} within {wait:g}s")


async def _open_orders(session: ClientSession, wait: float,
                       symbol: str | None = None) -> tuple[list[FixMessage], Outcome | None]:
    """OrderMassStatusRequest (585=7): the gateway's reports of the open orders."""
    req_id = new_cl_ord_id(session.cfg.sender)
    body: Body = [(584, req_id), (585, "7")]
    if symbol:
        body.append((55, symbol))
    seq = await session.send("AF", body)
    reports: list[FixMessage] = []

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type != "8" or msg.get(584) != req_id:
            return None
        if msg.get(911) != "0":
            reports.append(msg)
        if msg.get(912) == "Y" or msg.get(911) == "0":
            return Outcome(0, "")
        return None

    out = await wait_for(session, wait, seq, "order mass status", handle)
    if out is None:
        return reports, Outcome(1, f"no complete answer to OrderMassStatusRequest within "
                                   f"{wait:g}s")
    return reports, out if out.code else None


async def _describe(session: ClientSession, args: argparse.Namespace
                    ) -> dict[str, str] | Outcome:
    """What is known about ``args.clordid``: the state file, the options, else the gateway."""
    cl: str = args.clordid
    info = dict(session.state.orders.get(cl, {}))
    if args.symbol:
        info["symbol"] = args.symbol
    if args.side:
        info["side"] = _SIDE_CODES[args.side]
    if info.get("symbol") and info.get("side"):
        return info
    reports, failed = await _open_orders(session, args.wait)
    if failed is not None:
        return failed
    for r in reports:
        if r.get(11) == cl:
            found = _order_info(r)
            session.state.remember(cl, found)
            return {**found, **info}
    return Outcome(1, f"{cl} is not one of this session's open orders and this client does "
                      "not know it: give --symbol and --side")


async def cmd_cancel(session: ClientSession, args: argparse.Namespace) -> Outcome:
    info = await _describe(session, args)
    if isinstance(info, Outcome):
        return info
    orig: str = args.clordid
    cl = new_cl_ord_id(session.cfg.sender)
    body: Body = [(41, orig), (11, cl), (55, info["symbol"]), (54, info["side"]),
                  (60, format_utc(time.time()).decode())]
    if info.get("qty"):
        body.append((38, info["qty"]))
    seq = await session.send("F", body)

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type == "9" and msg.get(11) == cl:
            return Outcome(1, f"cancel of {orig} rejected: {_reason(msg)}")
        if msg.msg_type == "8" and msg.get(11) in (cl, orig) and msg.get(39) in TERMINAL:
            if msg.get(39) == "4":
                return Outcome(0, _order_line(msg))
            return Outcome(1, f"{orig} ended before the cancel: {_order_line(msg)}")
        return None

    out = await wait_for(session, args.wait, seq, f"cancel {cl}", handle)
    return out or Outcome(1, f"the cancel of {orig} was not confirmed within {args.wait:g}s")


async def cmd_replace(session: ClientSession, args: argparse.Namespace) -> Outcome:
    info = await _describe(session, args)
    if isinstance(info, Outcome):
        return info
    orig: str = args.clordid
    qty = args.qty or info.get("qty")
    if not qty:
        return Outcome(1, f"the quantity of {orig} is not known: give --qty")
    otype = info.get("type", "2")
    price = args.price or info.get("price")
    cl = new_cl_ord_id(session.cfg.sender)
    body: Body = [(41, orig), (11, cl), (55, info["symbol"]), (54, info["side"]),
                  (60, format_utc(time.time()).decode()), (38, qty), (40, otype)]
    if price and otype in ("2", "4"):
        body.append((44, price))
    seq = await session.send("G", body)

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type == "9" and msg.get(11) == cl:
            return Outcome(1, f"replace of {orig} rejected: {_reason(msg)}")
        if msg.msg_type != "8" or msg.get(11) not in (cl, orig):
            return None
        if msg.get(150) == "5":
            session.state.remember(cl, {**info, **_order_info(msg)})
            return Outcome(0, _order_line(msg))
        if msg.get(39) in TERMINAL:
            return Outcome(1, f"{orig} ended before the replace: {_order_line(msg)}")
        return None

    out = await wait_for(session, args.wait, seq, f"replace {cl}", handle)
    return out or Outcome(1, f"the replace of {orig} was not confirmed within {args.wait:g}s")


async def cmd_status(session: ClientSession, args: argparse.Namespace) -> Outcome:
    cl: str = args.clordid
    info = await _describe(session, args)
    if isinstance(info, Outcome):
        return info
    seq = await session.send("H", [(11, cl), (55, info["symbol"]), (54, info["side"])])

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type == "8" and msg.get(150) == "I" and msg.get(584) is None:
            if msg.get(37) == "NONE":
                return Outcome(1, f"the gateway does not know {cl}: {msg.get(58) or ''}")
            return Outcome(0, _order_line(msg))
        return None

    out = await wait_for(session, args.wait, seq, "status request", handle)
    return out or Outcome(1, f"no answer to the status request within {args.wait:g}s")


async def cmd_orders(session: ClientSession, args: argparse.Namespace) -> Outcome:
    reports, failed = await _open_orders(session, args.wait, args.symbol)
    if failed is not None:
        return failed
    lines = [_order_line(r) for r in reports]
    return Outcome(0, "\n".join([f"{len(reports)} open order(s)", *lines]))


async def cmd_cancel_all(session: ClientSession, args: argparse.Namespace) -> Outcome:
    cl = new_cl_ord_id(session.cfg.sender)
    body: Body = [(11, cl), (530, "1" if args.symbol else "7")]
    if args.symbol:
        body.append((55, args.symbol))
    body.append((60, format_utc(time.time()).decode()))
    seq = await session.send("q", body)
    affected: list[int] = []
    canceled: set[str] = set()

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type == "r" and msg.get(11) == cl:
            if msg.get(531) == "0":
                return Outcome(1, f"mass cancel rejected: {_reason(msg)}")
            n = int(msg.get(533) or 0)
            affected.append(n)
        elif msg.msg_type == "8" and msg.get(150) == "4" and msg.get(11):
            canceled.add(msg.get(11) or "")
        if affected and len(canceled) >= affected[0]:
            return Outcome(0, f"{affected[0]} order(s) canceled")
        return None

    out = await wait_for(session, args.wait, seq, "mass cancel", handle)
    if out is not None:
        return out
    if not affected:
        return Outcome(1, f"no OrderMassCancelReport within {args.wait:g}s")
    return Outcome(0, f"{affected[0]} order(s) to cancel, {len(canceled)} confirmed")


def _entries(msg: FixMessage, count_tag: int, first: int) -> list[dict[int, str]]:
    """The entries of the repeating group that ``count_tag`` counts (``first``: its first
    field), each as a dict."""
    out: list[dict[int, str]] = []
    inside = False
    for tag, value in msg.fields:
        if tag == count_tag:
            inside = True
        elif inside and tag == first:
            out.append({tag: value})
        elif inside and out and tag != 10:
            out[-1].setdefault(tag, value)
    return out


async def cmd_balances(session: ClientSession, args: argparse.Namespace) -> Outcome:
    inquiry = new_cl_ord_id(session.cfg.sender)
    body: Body = [(909, inquiry)]
    if args.venue:
        body += [(453, "1"), (448, args.venue), (447, "D"), (452, "22")]
    seq = await session.send("BB", body)
    lines: list[str] = []

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.get(909) != inquiry:
            return None
        if msg.msg_type == "BG":
            return Outcome(1, f"balances refused: {_reason(msg)}")
        if msg.msg_type == "BA":
            lines.append(f"{msg.get(448) or '?':<12} {msg.get(15) or '?':<8} "
                         f"total {msg.get(900)}  available {msg.get(20010)}  "
                         f"locked {msg.get(20011)}")
            if msg.get(912) == "Y":
                return Outcome(0, "\n".join(lines))
        return None

    out = await wait_for(session, args.wait, seq, "balances", handle)
    return out or Outcome(1, f"no CollateralReport within {args.wait:g}s")


async def cmd_positions(session: ClientSession, args: argparse.Namespace) -> Outcome:
    req = new_cl_ord_id(session.cfg.sender)
    now = format_utc(time.time()).decode()
    body: Body = [(710, req), (724, "0"), (453, "1"), (448, session.cfg.sender), (447, "D"),
                  (452, "3"), (1, args.account or session.cfg.sender), (581, "1"),
                  (715, now[:8]), (60, now)]
    if args.symbol:
        body.append((55, args.symbol))
    seq = await session.send("AN", body)
    expected: list[int] = []
    lines: list[str] = []

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.get(710) != req:
            return None
        if msg.msg_type == "AO":
            if msg.get(728) == "2":
                return Outcome(0, "no positions")
            if msg.get(728) != "0":
                return Outcome(1, f"positions refused: {_reason(msg)}")
            expected.append(int(msg.get(727) or 0))
        elif msg.msg_type == "AP":
            amounts = {e.get(707): e.get(708) for e in _entries(msg, 753, 707)}
            net = Decimal(msg.get(704) or 0) - Decimal(msg.get(705) or 0)
            lines.append(f"{msg.get(207) or '?':<12} {msg.get(55) or '?':<14} "
                         f"qty {net}  avg {msg.get(734)}  mark {msg.get(730)}  "
                         f"unrealized {amounts.get('FMTM', '-')}  realized "
                         f"{amounts.get('TVAR', '-')}  ({msg.get(58) or 'no fees'})")
        if expected and len(lines) >= expected[0]:
            return Outcome(0, "\n".join(lines))
        return None

    out = await wait_for(session, args.wait, seq, "positions", handle)
    return out or Outcome(1, f"no RequestForPositionsAck within {args.wait:g}s")


async def cmd_book(session: ClientSession, args: argparse.Namespace) -> Outcome:
    req = new_cl_ord_id(session.cfg.sender)
    body: Body = [(262, req), (263, "0"), (264, str(args.depth)), (267, "3"), (269, "0"),
                  (269, "1"), (269, "2"), (146, "1"), (55, args.symbol)]
    if args.venue:
        body.append((207, args.venue))
    seq = await session.send("V", body)

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.get(262) != req:
            return None
        if msg.msg_type == "Y":
            return Outcome(1, f"market data refused: {_reason(msg)}")
        if msg.msg_type != "W":
            return None
        entries = _entries(msg, 268, 269)
        bids = [e for e in entries if e.get(269) == "0"]
        asks = [e for e in entries if e.get(269) == "1"]
        trades = [e for e in entries if e.get(269) == "2"]
        lines = [f"{args.symbol}: {len(bids)} bid and {len(asks)} offer levels"]
        for e in reversed(asks):
            lines.append(f"  ask {e.get(270):>14} {e.get(271):>12}  {e.get(275) or ''}")
        for e in bids:
            lines.append(f"  bid {e.get(270):>14} {e.get(271):>12}  {e.get(275) or ''}")
        lines += [f"  last trade {e.get(270)} x {e.get(271)} at {e.get(275)}" for e in trades]
        return Outcome(0, "\n".join(lines))

    out = await wait_for(session, args.wait, seq, "market data", handle)
    return out or Outcome(1, f"no MarketDataSnapshotFullRefresh within {args.wait:g}s")


LIST_ORDER_STATUS_NAMES = {"1": "InBiddingProcess", "2": "ReceivedForExecution",
                           "3": "Executing", "4": "Cancelling", "5": "Alert", "6": "AllDone",
                           "7": "Reject"}


def _list_text(msg: FixMessage) -> str:
    """A ListStatus (N) as lines: the list, then each of its orders."""
    status = msg.get(431) or "?"
    head = f"list {msg.get(66)}: {LIST_ORDER_STATUS_NAMES.get(status, status)}"
    if msg.get(444):
        head += f" ({msg.get(444)})"
    lines = [head]
    for e in _entries(msg, 73, 11):
        st = e.get(39) or "?"
        line = (f"  {e.get(11)}: {ORD_STATUS_NAMES.get(st, st)} CumQty={e.get(14)} "
                f"LeavesQty={e.get(151)} AvgPx={e.get(6)}")
        if e.get(58):
            line += f" ({e.get(58)})"
        lines.append(line)
    return "\n".join(lines)


def _list_entry(n: int, spec: str, tif: str | None) -> tuple[Body, dict[str, str]]:
    """One order of a NewOrderList from ``SIDE,SYMBOL,QTY[,PRICE]`` (ListOrdGrp's order)."""
    parts = spec.split(",")
    if len(parts) not in (3, 4) or parts[0] not in _SIDE_CODES:
        raise ClientError(f"order {spec!r}: give SIDE,SYMBOL,QTY[,PRICE] (side buy or sell)")
    try:
        qty = _positive_decimal(parts[2])
        price = _positive_decimal(parts[3]) if len(parts) == 4 else None
    except argparse.ArgumentTypeError as exc:
        raise ClientError(f"order {spec!r}: {exc}") from None
    side = _SIDE_CODES[parts[0]]
    body: Body = [(67, str(n)), (55, parts[1]), (54, side), (38, qty)]
    info = {"symbol": parts[1], "side": side, "qty": qty, "type": "1"}
    if price is not None:
        body += [(40, "2"), (44, price)]
        info.update(type="2", price=price)
    else:
        body.append((40, "1"))
    if tif is not None:
        body.append((59, _TIF_CODES[tif]))
    return body, info


async def _list_status(session: ClientSession, seq: int, wait: float, list_id: str,
                       what: str) -> Outcome | None:
    """Until the next ListStatus of ``list_id``: its lines (exit 1 for a list rejected)."""
    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type == "N" and msg.get(66) == list_id:
            return Outcome(1 if msg.get(431) == "7" else 0, _list_text(msg))
        return None

    return await wait_for(session, wait, seq, what, handle)


async def cmd_list(session: ClientSession, args: argparse.Namespace) -> Outcome:
    list_id = args.list_id or new_cl_ord_id(session.cfg.sender)
    body: Body = [(66, list_id), (394, "3"), (68, str(len(args.orders))),
                  (73, str(len(args.orders)))]
    for n, spec in enumerate(args.orders, 1):
        entry, info = _list_entry(n, spec, args.tif)
        cl = new_cl_ord_id(session.cfg.sender)
        session.state.remember(cl, info)
        body += [(11, cl), *entry]
    seq = await session.send("E", body)
    out = await _list_status(session, seq, args.wait, list_id, f"list {list_id}")
    return out or Outcome(1, f"no ListStatus for {list_id} within {args.wait:g}s")


async def cmd_list_status(session: ClientSession, args: argparse.Namespace) -> Outcome:
    seq = await session.send("M", [(66, args.list_id)])
    out = await _list_status(session, seq, args.wait, args.list_id, "list status request")
    return out or Outcome(1, f"no ListStatus for {args.list_id} within {args.wait:g}s")


async def cmd_list_cancel(session: ClientSession, args: argparse.Namespace) -> Outcome:
    seq = await session.send("K", [(66, args.list_id), (60, format_utc(time.time()).decode())])
    last: list[Outcome] = []

    def handle(msg: FixMessage) -> Outcome | None:
        if msg.msg_type != "N" or msg.get(66) != args.list_id:
            return None
        last[:] = [Outcome(0, _list_text(msg))]
        return last[0] if msg.get(431) != "4" else None  # (4: cancelling, more to come)

    out = await wait_for(session, args.wait, seq, "list cancel", handle)
    if out is not None:
        return out
    if last:
        return last[0]
    return Outcome(1, f"no ListStatus for {args.list_id} within {args.wait:g}s")


async def cmd_listen(session: ClientSession, args: argparse.Namespace) -> Outcome:
    """Send nothing: print what comes (a drop copy session's copies; reports owed at the
    Logon) until ``--wait`` seconds pass without a message."""
    reports = copies = 0

    def handle(msg: FixMessage) -> Outcome | None:
        nonlocal reports, copies
        if msg.msg_type == "8":
            reports += 1
            copies += msg.get(9406) == "Y"
        return None

    await wait_for(session, args.wait, 0, "listen", handle)
    return Outcome(0, f"{reports} ExecutionReport(s), {copies} of them drop copies "
                      f"(DropCopyFlag 9406=Y)")


COMMANDS: dict[str, Callable[[ClientSession, argparse.Namespace], Awaitable[Outcome]]] = {
    "buy": cmd_order, "sell": cmd_order, "cancel": cmd_cancel, "replace": cmd_replace,
    "status": cmd_status, "orders": cmd_orders, "cancel-all": cmd_cancel_all,
    "balances": cmd_balances, "positions": cmd_positions, "book": cmd_book,
    "list": cmd_list, "list-status": cmd_list_status, "list-cancel": cmd_list_cancel,
    "listen": cmd_listen,
}


async def run(args: argparse.Namespace, printer: Printer) -> int:
    cfg = SessionConfig(args.host, args.port, args.sender, args.target, args.fixt,
                        args.heartbeat, args.timeout)
    state_path = Path(args.state or f"data/client-{cfg.sender}.seq")
    session_key = f"{cfg.begin_string}:{cfg.sender}->{cfg.target}"
    try:
        state = ClientState.load(state_path, session_key)
        session = await ClientSession.connect(cfg, state, printer)
    except ClientError as exc:
        printer.error(str(exc))
        return 1
    try:
        try:
            await session.logon(reset=args.reset, username=args.username,
                                password=args.password)
        except ClientError as exc:
            printer.error(str(exc) if str(exc).startswith("logon") else f"logon failed: {exc}")
            return 1
        try:
            out: Outcome = await COMMANDS[args.command](session, args)
        except ClientError as exc:
            printer.error(str(exc))
            return 1
        await session.logout()
        if out.code:
            printer.error(out.text)
        elif out.text:
            printer.info(out.text)
        return out.code
    finally:
        await session.close()


# ------------------------------------------------------------------------------------------------
# command line

_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1", "port": 9876, "sender": None, "target": "GATEWAY", "username": None,
    "password": None, "fixt": False, "reset": False, "state": None, "heartbeat": 30,
    "timeout": 10.0, "wait": 2.0, "verbose": False,
}

DESCRIPTION = """\
A small FIX 4.4 / FIXT 1.1 initiator for trying the gateway: it logs on, sends one
request, prints every message it receives (-v: also raw), waits for the answer and
logs out. Sequence numbers continue from run to run (--reset starts again at 1).

  fixgw client buy BTC/USDT 0.01                  market order
  fixgw client sell BTC/USDT 0.01 --price 99000   limit order (--tif gtc|ioc|fok|day)
  fixgw client buy BTC/USDT 0.05 --twap 60        a TWAP over the next minute
  fixgw client buy BTC/USDT 0.05 --vwap 60        a VWAP over the next minute
  fixgw client buy BTC/USDT 0.05 --pov 0.1 --expire-in 60   10% of the market's volume
  fixgw client buy BTC/USDT 0.5 --price 97100 --venue SOR   routed across the venues
  fixgw client status CLORDID                     OrderStatusRequest
  fixgw client replace CLORDID --qty 0.02 --price 98000
  fixgw client cancel CLORDID                     OrderCancelRequest
  fixgw client orders                             all open orders
  fixgw client cancel-all                         OrderMassCancelRequest (530=7)
  fixgw client balances                           CollateralInquiry: balances per venue
  fixgw client positions                          RequestForPositions: what this session holds
  fixgw client book BTC/USDT                      MarketDataRequest: the consolidated book
  fixgw client list buy,BTC/USDT,0.01,90000 sell,ETH/USDT,0.1
                                                  NewOrderList: each order SIDE,SYMBOL,QTY[,PRICE]
  fixgw client list-status LISTID                 ListStatusRequest
  fixgw client list-cancel LISTID                 ListCancelRequest
  fixgw client --sender DROPCOPY listen --wait 60 print what comes (a drop copy's copies)"""

EPILOG = """\
ExecType (150) / OrdStatus (39): 0 New, 1 PartiallyFilled, 2 Filled, 4 Canceled, 5 Replaced,
6 PendingCancel, 8 Rejected, A PendingNew, C Expired, E PendingReplace, F Trade, I OrderStatus.
Side (54): 1 buy, 2 sell. OrdType (40): 1 market, 2 limit.
Exit status: 0 done, 1 rejected / logon failed / no answer, 2 usage error."""


def _positive_decimal(text: str) -> str:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not d.is_finite() or d <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return format(d, "f")


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds <= 86_400:
        raise argparse.ArgumentTypeError(f"must be 0..86400 seconds: {text!r}")
    return seconds


def _common(p: argparse.ArgumentParser) -> None:
    """The connection options, accepted before and after the command (defaults applied
    after parsing, so a subcommand does not overwrite what was given before it)."""
    s = argparse.SUPPRESS
    g = p.add_argument_group("connection")
    g.add_argument("--host", default=s, help="gateway address (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=s, help="gateway port (default 9876)")
    g.add_argument("--sender", default=s,
                   help="our SenderCompID (default CLIENT1, with --fixt CLIENT50)")
    g.add_argument("--target", default=s, help="the gateway's CompID (default GATEWAY)")
    g.add_argument("--username", default=s, help="Logon Username (553)")
    g.add_argument("--password", default=s, help="Logon Password (554)")
    g.add_argument("--fixt", action="store_true", default=s,
                   help="FIXT.1.1 with DefaultApplVerID 9 (FIX.5.0SP2) instead of FIX.4.4")
    g.add_argument("--reset", action="store_true", default=s,
                   help="start both sequence numbers at 1 (ResetSeqNumFlag 141=Y)")
    g.add_argument("--state", default=s, metavar="FILE",
                   help="sequence number file (default data/client-<SENDER>.seq)")
    g.add_argument("--heartbeat", type=int, default=s, metavar="SECONDS",
                   help="HeartBtInt (default 30)")
    g.add_argument("--timeout", type=float, default=s, metavar="SECONDS",
                   help="how long to wait for the Logon and Logout answers (default 10)")
    g.add_argument("--wait", type=float, default=s, metavar="SECONDS",
                   help="stop waiting this long after the last message (default 2)")
    g.add_argument("-v", "--verbose", action="store_true", default=s,
                   help="also print every message raw, '|' for SOH")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(
        prog="fixgw client", formatter_class=fmt, epilog=EPILOG, description=DESCRIPTION)
    _common(ap)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=textwrap.fill(help, 78),
                           formatter_class=fmt, epilog=EPILOG)
        _common(p)
        return p

    for side in ("buy", "sell"):
        p = add(side, f"NewOrderSingle: {side} (limit with --price, else market), then wait "
                      "until the order is done or --wait seconds pass")
        p.add_argument("symbol", help="e.g. BTC/USDT, ETH/USDT, SOL/USDT, BTC/USDT:USDT")
        p.add_argument("qty", type=_positive_decimal, help="quantity, e.g. 0.01")
        p.add_argument("--price", type=_positive_decimal, help="limit price")
        p.add_argument("--tif", choices=sorted(_TIF_CODES), help="TimeInForce (default day)")
        algo = p.add_mutually_exclusive_group()
        algo.add_argument("--twap", type=_positive_seconds, metavar="SECONDS",
                          help="work it as a TWAP (TargetStrategy 1000) until SECONDS from now")
        algo.add_argument("--vwap", type=_positive_seconds, metavar="SECONDS",
                          help="work it as a VWAP (TargetStrategy 1) until SECONDS from now")
        algo.add_argument("--pov", type=_positive_decimal, metavar="RATE",
                          help="work it as a POV (TargetStrategy 2) at ParticipationRate "
                               "(849) RATE, e.g. 0.1 for 10%%, until filled or canceled")
        p.add_argument("--expire-in", type=_positive_seconds, metavar="SECONDS",
                       help="with --pov: its ExpireTime (126), SECONDS from now")
        p.add_argument("--venue", metavar="NAME", help="ExDestination (100): the venue, or "
                       "SOR for the smart order router (default: the session's routing)")

    def order_ref(p: argparse.ArgumentParser) -> None:
        p.add_argument("clordid", help="the order's ClOrdID (as printed when it was placed)")
        p.add_argument("--symbol", help="the order's symbol when this client does not know it")
        p.add_argument("--side", choices=sorted(_SIDE_CODES), help="the order's side, likewise")

    order_ref(add("cancel", "OrderCancelRequest for an open order"))
    p = add("replace", "OrderCancelReplaceRequest: new quantity and/or price")
    order_ref(p)
    p.add_argument("--qty", type=_positive_decimal, help="new quantity")
    p.add_argument("--price", type=_positive_decimal, help="new limit price")
    order_ref(add("status", "OrderStatusRequest for one order"))
    p = add("orders", "OrderMassStatusRequest: all open orders")
    p.add_argument("--symbol", help="only this symbol")
    p = add("cancel-all", "OrderMassCancelRequest: cancel all open orders (530=7)")
    p.add_argument("--symbol", help="only this symbol (530=1)")
    p = add("balances", "CollateralInquiry: the balances of every venue account this session "
                        "may use, per currency")
    p.add_argument("--venue", help="only this venue")
    p = add("positions", "RequestForPositions: this session's positions, computed from its "
                         "fills")
    p.add_argument("--symbol", help="only this symbol")
    p.add_argument("--account", help="this Account (1) (default: orders without one)")
    p = add("book", "MarketDataRequest (snapshot): the order book of a symbol, consolidated "
                    "across the venues or of one")
    p.add_argument("symbol", help="e.g. BTC/USDT")
    p.add_argument("--venue", help="one venue's book (SecurityExchange 207)")
    p.add_argument("--depth", type=int, default=5, help="levels a side (default 5)")
    p = add("list", "NewOrderList: several orders at once, each checked and reported alone, "
                    "then one ListStatus with every order's state")
    p.add_argument("orders", nargs="+", metavar="SIDE,SYMBOL,QTY[,PRICE]",
                   help="one order: buy or sell, symbol, quantity, limit price (else market)")
    p.add_argument("--list-id", help="ListID (66) (default: a new one)")
    p.add_argument("--tif", choices=sorted(_TIF_CODES), help="TimeInForce of every order")
    p = add("list-status", "ListStatusRequest: the state of every order of a list")
    p.add_argument("list_id", help="the list's ListID")
    p = add("list-cancel", "ListCancelRequest: cancel every open order of a list")
    p.add_argument("list_id", help="the list's ListID")
    add("listen", "send nothing and print what comes (a drop copy session's copies of other "
        "sessions' ExecutionReports) until --wait seconds pass without a message")
    return ap


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if getattr(args, "expire_in", None) is not None and args.pov is None:
        parser.error("--expire-in is for --pov (a TWAP's or VWAP's end is their SECONDS)")
    for k, v in _DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if args.sender is None:
        args.sender = "CLIENT50" if args.fixt else "CLIENT1"
    return args


def main(argv: Sequence[str], *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """``fixgw client ...``: 0 done, 1 rejected / logon failed / no answer, 2 usage error."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    printer = Printer(out, err, args.verbose)
    try:
        return asyncio.run(run(args, printer))
    except KeyboardInterrupt:
        printer.error("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

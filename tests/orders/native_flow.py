"""A small order flow, end to end, whose every outcome is written as JSON: run by
``tests/orders/test_native.py`` in a process of its own, once with the compiled order path and
paper venue and once as pure Python (``FIXGW_PURE=1``), to compare the two.

    python tests/orders/native_flow.py OUT.json

A FIX 4.4 and a FIXT 1.1 client each send a market order that fills over several levels, a
limit order they replace and then cancel, a cancel of an unknown order, an order the gateway
refuses (Side 7), one the session rejects (OrderQty not a number) and a NewOrderList. Written:
which modules ran compiled (the order path's, the paper venue's, the connector contract's
values), every message each client received but the fields that carry the time (SendingTime
52, TransactTime 60, OrigSendingTime 122, and so BodyLength 9, CheckSum 10), and every order
as the replay of the stored events rebuilds it (``order_to_json``, times out).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]  # as pytest's rootdir and the tests' packages

from connectors.native import EVENTS  # noqa: E402
from connectors.paper.native import BUILD as PAPER  # noqa: E402
from gateway.native import ORDER_PATH  # noqa: E402
from gateway.orders.model import order_to_json  # noqa: E402
from gateway.store.store import SessionStore  # noqa: E402
from orders.support import BTC, OrderClient, assert_replay_matches, running, session  # noqa: E402

TIMES = {9, 10, 52, 60, 122}
"""Fields that hold (or depend on) the time of the run."""


async def _orders(c: OrderClient) -> None:
    await c.order("m1", ord_type="1", qty="0.7")  # market: fills at several levels
    await c.er(t11="m1", t39="0")
    while (await c.er(t11="m1"))[39] != "2":
        pass
    await c.order("l1", price="90000.5", qty="0.25", tif="1")
    await c.er(t11="l1", t39="0")
    await c.replace("l2", "l1", qty="0.3", price="90001.25")
    await c.er(t11="l2", t39="E")
    await c.er(t11="l2", t150="5", t39="0", t38="0.3")
    await c.cancel("l3", "l2", qty="0.3")
    await c.er(t11="l3", t39="6")
    await c.er(t11="l3", t39="4", t150="4")
    await c.cancel("c9", "nope")
    await c.expect("9", t11="c9", t102="1")
    await c.order("s7", side="7", price="90000")
    await c.er(t11="s7", t39="8", t103="11")
    await c.send("D", [(11, "q1"), (21, "1"), (38, "1x"), (40, "2"), (44, "90000"), (54, "1"),
                       (55, BTC), (60, "20260101-00:00:00")])
    await c.expect("3", t373="6", t371="38")
    await c.order_list("L1", [{11: "e1", 44: "90000"}, {11: "e2", 44: "90000", 54: "2"}])
    while (await c.recv()).msg_type != "N":  # each order's reports, then the ListStatus
        pass
    await c.send("5")
    while (await c.recv()).msg_type != "5":  # what is still on its way (e2's fill)
        pass
    await c.expect_closed(5.0)
    await c.close()


def _fields(c: OrderClient) -> list[list[Any]]:
    return [[[t, v.decode()] for t, v in m.fields if t not in TIMES] for m in c.received]


async def flow(tmp: Path) -> dict[str, Any]:
    store = SessionStore(f"sqlite:///{tmp / 'fixgw.db'}")
    await store.start()
    try:
        received = {}
        async with running(tmp, [session("C1"), session("C2", "FIXT.1.1")], store=store) as r:
            for sender, begin in (("C1", "FIX.4.4"), ("C2", "FIXT.1.1")):
                c = await r.client(sender, begin)
                await _orders(c)
                received[sender] = _fields(c)
        orders = await assert_replay_matches(store)
    finally:
        await store.close()
    snapshots = {}
    for order_id, o in sorted(orders.items()):
        d = order_to_json(o)
        del d["created_ns"], d["updated_ns"]
        snapshots[order_id] = d
    compiled = {**ORDER_PATH.compiled(), **PAPER.compiled(), **EVENTS.compiled()}
    return {"compiled": compiled, "received": received, "orders": snapshots}


def main() -> None:
    out = Path(sys.argv[1])
    out.write_text(json.dumps(asyncio.run(flow(out.parent)), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

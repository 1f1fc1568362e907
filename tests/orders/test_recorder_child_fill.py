"""End to end, a child order's fill whose parent's strategy fills the parent
(``Children.settle`` -> ``Children.fill``: an event recorded on the parent while the child's
event is carried) fails nothing, and what the venue side does after recording the fill
(``VenueSide.filled``: ``book.add_filled``, what each venue order has filled, read when it
closes to know whether fills are missing) happens. Compiled, ``Recorder.record`` once raised
a TypeError there after the events were stored (tests/orders/test_recorder_carry.py): the
fill was logged as failed and ``add_filled`` skipped for a child a partial fill left open."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
from server.harness import run

from connectors.base import Side
from orders.support import BTC, running, session
from orders.test_parent_child import SPLIT, SplitInTwo


def test_a_partly_filled_child_is_counted_and_nothing_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="fixgw.orders")

    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies={SPLIT: SplitInTwo}) as r:
            c = await r.client("C1")
            book = r.venue().exchange.book(BTC)
            price, size = book.levels(Side.SELL)[0]
            # each child is larger than the best ask level: the first fills part of it there
            # and stays open (its rest fills after, as a maker)
            qty = (size * 2 + Decimal("0.02")).quantize(Decimal("0.00001"))
            counted: list[tuple[str, Decimal]] = []

            class Counted(dict[tuple[str, str], Decimal]):
                """The book's filled quantity by venue order, each count noted (the book's
                methods cannot be replaced where it is compiled)."""

                def __setitem__(self, key: tuple[str, str], filled: Decimal) -> None:
                    counted.append((key[1], filled))
                    super().__setitem__(key, filled)

            r.orders.book._coid_filled = Counted()  # (only add_filled writes it)
            await c.order("p1", ord_type="2", qty=str(qty), price=str(price),
                          extra=[(847, SPLIT)])
            await c.er(t11="p1", t39="0")
            done = await c.er(t11="p1", t150="F", timeout=5)
            while done[39] != "2":  # one ExecutionReport per venue trade
                done = await c.er(t11="p1", t150="F", timeout=5)
            assert Decimal(done[14]) == qty
            # the first child's first trade took the whole level (``size``), less than the
            # child: it stayed open, and what its venue order filled is counted (before the
            # parent's last fill was committed and reported)
            assert counted, "no partial fill of a child was counted (VenueSide.filled)"
        failed = [rec.getMessage()[:80] for rec in caplog.records
                  if rec.levelno >= logging.ERROR and rec.name == "fixgw.orders"]
        assert failed == [], failed
    run(body())

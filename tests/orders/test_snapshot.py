"""The order snapshot (``order_to_json``) carries every field of :class:`Order`, exactly."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.lifecycle import OrdStatus
from gateway.orders.model import Order, Pending, order_from_json, order_to_json, stored_fields
from gateway.store.rows import json_text, snapshot_text


def _every_field_set() -> Order:
    return Order(
        order_id="42", session_id="FIX.4.4:GATEWAY->CLIENT1", cl_ord_id="c2", account="acct",
        venue="paper", symbol="BTC/USDT", side=Side.SELL, type=OrderType.STOP_LIMIT,
        quantity=Decimal("0.50"), price=Decimal("65000.10"), stop_price=Decimal("64000.0"),
        time_in_force=TimeInForce.GTD, expire_time_ns=1_700_000_000_123_456_789,
        post_only=True, reduce_only=True, created_ns=1_700_000_000_000_000_001,
        status=OrdStatus.PENDING_REPLACE, cum_qty=Decimal("0.10"), avg_px=Decimal("65000.05"),
        venue_order_id="V9", venue_client_order_id="fx42v1", venue_version=1,
        orig_cl_ord_id="c1", pending=Pending("replace", "c3", "c2", Decimal("0.6"),
                                             Decimal("65001"), None, why="mass cancel"),
        text="why", updated_ns=1_700_000_000_000_000_002, last_event_id=7, exec_count=3,
        trade_ids={"T2", "T1"}, strategy="1001", parent_id="41",
        effective_time_ns=1_700_000_000_000_000_003, strategy_parameters={"Slices": "5"},
        strategy_step=2, max_floor=Decimal("0.10"), list_id="L1", ord_rej_reason="99",
    )


def test_the_snapshot_has_every_field_and_rebuilds_the_order_exactly() -> None:
    o = _every_field_set()
    snapshot = order_to_json(o)
    assert set(snapshot) == stored_fields(Order)
    assert set(snapshot["pending"]) == stored_fields(Pending)
    back = order_from_json(snapshot)
    assert back == o
    assert order_to_json(back) == snapshot
    assert snapshot["quantity"] == "0.50" and snapshot["trade_ids"] == ["T1", "T2"]
    for f in dataclasses.fields(Order):  # no field is left at its default by the fixture
        if f.default is not dataclasses.MISSING and f.name in snapshot:
            assert getattr(o, f.name) != f.default, f.name


def test_the_snapshot_comes_in_sorted_order_and_is_stored_as_the_sorted_text() -> None:
    """The store writes the snapshot without sorting its keys (``snapshot_text``): the text
    must be that of a sorted dump, nested dicts included, else stored text would drift."""
    bare = dataclasses.replace(_every_field_set(), pending=None, strategy_parameters={},
                               trade_ids=set())
    params = dataclasses.replace(_every_field_set(),
                                 strategy_parameters={"z": "1", "Slices": "5", "a": "2"})
    for o in (_every_field_set(), bare, params):
        snapshot = order_to_json(o)
        assert list(snapshot) == sorted(snapshot)
        for nested in ("pending", "strategy_parameters"):
            inner = snapshot[nested]
            assert inner is None or list(inner) == sorted(inner), nested
        assert snapshot_text(o) == json_text(snapshot)

"""The audit's view of the store finds orders by ClOrdID on a store of any revision: through the
events' index of ClOrdIDs where the events keep them (migration 0010 on; the orders have no
index of their own by ClOrdID from 0013 on), through the orders' own where they do not (the
audit reads a store as it finds it, unmigrated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.store import migrate
from gateway.store.auditview import StoreAuditView
from gateway.store.db import make_engine


def _order(url: str, order_id: str, cl_ord_id: str, events: bool) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO orders (order_id, session_id, cl_ord_id, venue, symbol, status, "
                "is_open, updated_ns, last_event_id, snapshot) VALUES "
                "(:o, 'S', :c, 'paper', 'BTC/USDT', '2', :f, 1, 1, :snap)"),
                {"o": order_id, "c": cl_ord_id, "f": False,
                 "snap": json.dumps({"order_id": order_id})})
            if events:
                conn.execute(text(
                    "INSERT INTO order_events (event_id, order_id, session_id, kind, ts_ns, "
                    "exec_id, data, cl_ord_id) VALUES (:e, :o, 'S', 'created', 1, NULL, :d, :c)"),
                    {"e": int(order_id), "o": order_id, "c": cl_ord_id,
                     "d": json.dumps({"order": {"cl_ord_id": cl_ord_id}})})
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", ["0009", "0010", None], ids=["0009", "0010", "head"])
def test_orders_by_clordid_on_a_store_of_any_revision(revision: str | None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    migrate.upgrade(url, revision or "head")
    chains = revision != "0009"
    _order(url, "1", "CL1", events=chains)
    _order(url, "2", "CL2", events=chains)
    view = StoreAuditView(url)
    try:
        assert view.orders_by_cl_ord_id(["S"], ["CL1"]) == [{"order_id": "1"}]
        assert view.orders_by_cl_ord_id(["S"], ["CL2", "nope"]) == [{"order_id": "2"}]
        assert view.orders_by_cl_ord_id(["R"], ["CL1"]) == []
    finally:
        view.close()

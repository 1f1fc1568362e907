"""``fixgw audit --store`` against PostgreSQL (the production store): the gateway's real flow
with its store on PostgreSQL, its logs compared with the store's orders, the store's
message_log read instead of the files, and a store that differs from the log reported.

Needs the PostgreSQL server at 127.0.0.1:5432 (database ``test``): skipped with the reason
when it is absent, unless ``REQUIRE_POSTGRES=1``, which makes that a failure."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from .support import audit, make_flow

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


def test_audit_against_a_postgresql_store(pg_url: str, tmp_path: Path) -> None:
    flow = make_flow(tmp_path, store_url=pg_url)
    code, out, err = audit(flow.log_dir, "--store", pg_url)
    assert code == 0, out + err
    # the store holds the 8 orders the venue took (not the refused ones): each compared
    assert f"compared with {pg_url}: 8 orders" in out

    code, from_store, err = audit("--store", pg_url)
    assert code == 0, from_store + err
    assert "62 messages" in from_store and "2 sessions" in from_store

    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        (oid, snap), = conn.execute(
            "SELECT order_id, snapshot FROM orders WHERE cl_ord_id = 'S1'").fetchall()
        data = json.loads(snap) if isinstance(snap, str) else snap
        data["cum_qty"] = "2.4"
        conn.execute("UPDATE orders SET snapshot = %s WHERE order_id = %s",
                     (json.dumps(data), oid))
    code, out, _ = audit(flow.log_dir, "--store", pg_url)
    assert code == 1
    assert "[store-difference]" in out and "CumQty 2.5 in the log, 2.4 in the store" in out

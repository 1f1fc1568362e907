"""Migrations: run from code, idempotent, found from the package, and in step with schema.py."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text

from gateway.orders.model import OrderEvent
from gateway.store import migrate
from gateway.store.db import SQLITE_PAGE_SIZE, make_engine
from gateway.store.records import SessionRecord
from gateway.store.schema import kill_switches, messages, metadata, sessions
from gateway.store.schema import orders as schema_orders
from gateway.store.store import SessionStore

ROOT = Path(__file__).resolve().parents[2]


def test_upgrade_is_idempotent_and_reaches_head(store_url: str) -> None:
    assert migrate.current_revision(store_url) is None
    migrate.upgrade(store_url)
    migrate.upgrade(store_url)
    assert migrate.current_revision(store_url) == migrate.head_revision() == "0013"
    engine = make_engine(store_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"sessions", "messages", "message_log", "alembic_version"} <= tables


def test_migrations_match_schema_py(store_url: str) -> None:
    """A change to schema.py without a migration (or the reverse) fails here."""
    migrate.upgrade(store_url)
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
    finally:
        engine.dispose()
    assert diff == []


def test_sqlite_connections_use_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000}


def test_a_new_sqlite_store_has_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """New stores are made with 2 KiB pages (gateway.store.db.SQLITE_PAGE_SIZE: fewer bytes a
    commit); a store made before, with SQLite's default 4 KiB, is opened as it is and works."""
    old = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(old)) as made_before:
        made_before.execute("PRAGMA page_size = 4096")
        made_before.execute("PRAGMA journal_mode = WAL")
        made_before.execute("CREATE TABLE t (x)")
    for name, want in (("new.db", SQLITE_PAGE_SIZE), ("old.db", 4096)):
        url = f"sqlite:///{tmp_path / name}"
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA page_size").scalar() == want, name
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal", name
                assert conn.exec_driver_sql("SELECT count(*) FROM orders").scalar() == 0, name
        finally:
            engine.dispose()


def test_migration_files_are_shipped_as_package_data() -> None:
    """Every migration script matches a pyproject package-data pattern, so an installed
    fixgw (not just a checkout) finds them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway"]
    package = ROOT / "gateway"
    scripts = [
        p.relative_to(package).as_posix()
        for p in (migrate.MIGRATIONS_DIR).rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    assert "store/migrations/env.py" in scripts
    assert any(s.startswith("store/migrations/versions/r0001") for s in scripts)
    for script in scripts:
        assert any(fnmatch.fnmatch(script, pattern) for pattern in patterns), script


def test_upgrade_from_0001_keeps_the_session_data_and_adds_the_order_tables(
    store_url: str,
) -> None:
    """A database created by an older fixgw (r0001, with sessions in it) is upgraded in place
    when the store starts, and both halves work afterwards."""
    migrate.upgrade(store_url, "0001")
    assert migrate.current_revision(store_url) == "0001"
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    engine = make_engine(store_url)
    try:
        assert "orders" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(
                sessions.insert(),
                {"session_id": "S", "next_sender": 3, "next_target": 5, "creation_time": created},
            )
            conn.execute(
                messages.insert(),
                [{"session_id": "S", "seq": s, "data": b"m%d" % s} for s in (1, 2)],
            )
    finally:
        engine.dispose()

    async def body() -> None:
        async with SessionStore(store_url) as store:
            assert await store.load("S") == SessionRecord(3, 5, created)
            assert await store.get_sent("S", 1, 0) == [(1, b"m1"), (2, b"m2")]
            event = OrderEvent(1, "O1", "S", "created", 7, {"k": "v"}, exec_id="E1")
            await store.append_order_events([event], [])
            assert await store.unreported_events("S") == [event]
            await store.save("S", sent=[(3, b"m3")], next_sender=4, reports=[("E1", 3)])
            assert await store.unreported_events("S") == []
            assert await store.reserve("order_id", 10) == 1

    asyncio.run(body())
    assert migrate.current_revision(store_url) == migrate.head_revision()
    engine = make_engine(store_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"order_events", "orders", "fills", "reports", "counters"} <= tables


def test_upgrade_from_0002_adds_the_cod_override_column_empty(store_url: str) -> None:
    """Sessions stored by an older fixgw (r0002) have no override: their configured
    cancel-on-disconnect mode holds until a Logon sets one."""
    migrate.upgrade(store_url, "0002")
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    engine = make_engine(store_url)
    try:
        assert "cod_override" not in {c["name"] for c in inspect(engine).get_columns("sessions")}
        with engine.begin() as conn:
            conn.execute(
                sessions.insert().values(
                    session_id="S", next_sender=3, next_target=5, creation_time=created
                )
            )
    finally:
        engine.dispose()

    async def body() -> None:
        async with SessionStore(store_url) as store:
            assert await store.load_cod_overrides() == {}
            assert await store.load("S") == SessionRecord(3, 5, created)
            await store.save_cod_override("S", "off")
            assert await store.load_cod_overrides() == {"S": "off"}

    asyncio.run(body())
    assert migrate.current_revision(store_url) == migrate.head_revision()


def _downgrade(engine: Engine, revision: str) -> None:
    with engine.connect() as connection:
        command.downgrade(migrate.alembic_config(connection), revision)
        connection.commit()


_EVENTS = ("INSERT INTO order_events (event_id, order_id, session_id, kind, ts_ns, exec_id, "
           "data, cl_ord_id) VALUES ")


def _seed(store_url: str, revision: str, *statements: str | tuple[str, dict[str, Any]]) -> None:
    """The store at ``revision``, with ``statements`` (SQL, or SQL and its parameters) run in
    one transaction."""
    migrate.upgrade(store_url, revision)
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                sql, params = statement if isinstance(statement, tuple) else (statement, {})
                conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _sqlite_shapes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {name: sql for name, sql in conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') "
            "AND sql IS NOT NULL")).all()}


def test_upgrade_from_0003_adds_the_kill_switches_table_empty_and_downgrade_drops_it(
    store_url: str,
) -> None:
    """A database of an older fixgw (r0003) has no kill switch engaged after the upgrade; the
    downgrade to 0003 drops the table again (and the upgrade re-creates it)."""
    migrate.upgrade(store_url, "0003")
    engine = make_engine(store_url)
    try:
        assert "kill_switches" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()

    async def body() -> None:
        async with SessionStore(store_url) as store:
            assert await store.load_kill_switches() == {}
            await store.save_kill_switch("*", True, "maintenance")
            assert await store.load_kill_switches() == {"*": "maintenance"}

    asyncio.run(body())
    assert migrate.current_revision(store_url) == migrate.head_revision()

    engine = make_engine(store_url)
    try:
        _downgrade(engine, "0003")
        tables = inspect(engine).get_table_names()
        assert "kill_switches" not in tables and "gateway_nodes" not in tables
    finally:
        engine.dispose()
    assert migrate.current_revision(store_url) == "0003"
    migrate.upgrade(store_url)
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(kill_switches)).scalar() == 0
    finally:
        engine.dispose()


def test_upgrade_from_0006_adds_the_list_id_column_empty_and_downgrade_drops_it(
    store_url: str,
) -> None:
    """Orders stored by an older fixgw (r0006) came alone: no ListID after the upgrade, and
    lists stored afterwards are found by theirs; the downgrade to 0006 drops the column."""
    migrate.upgrade(store_url, "0006")
    engine = make_engine(store_url)
    try:
        assert "list_id" not in {c["name"] for c in inspect(engine).get_columns("orders")}
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO orders (order_id, session_id, cl_ord_id, venue, symbol, status, "
                "is_open, updated_ns, last_event_id, snapshot) VALUES ('1', 'S', 'c1', 'paper', "
                "'BTC/USDT', '0', :open, 1, 1, '{\"order_id\": \"1\"}')"), {"open": True})
    finally:
        engine.dispose()

    async def body() -> None:
        from decimal import Decimal

        from connectors.base import OrderType, Side, TimeInForce
        from gateway.orders.model import Order

        def order(order_id: str, list_id: str | None) -> Order:
            return Order(cl_ord_id=f"c{order_id}", account=None, side=Side.BUY,
                         type=OrderType.LIMIT, quantity=Decimal(1), price=Decimal(1),
                         stop_price=None, time_in_force=TimeInForce.GTC, expire_time_ns=None,
                         post_only=False, reduce_only=False, order_id=order_id,
                         session_id="S", venue="paper", symbol="BTC/USDT", created_ns=1,
                         list_id=list_id)

        async with SessionStore(store_url) as store:
            assert await store.find_list("S", "L1") == []
            await store.append_order_events([], [order("10", "L1"), order("9", "L1"),
                                                 order("11", None), order("12", "L2")])
            assert [d["order_id"] for d in await store.find_list("S", "L1")] == ["9", "10"]
            assert await store.find_list("T", "L1") == []

    asyncio.run(body())
    assert migrate.current_revision(store_url) == migrate.head_revision()
    engine = make_engine(store_url)
    try:
        _downgrade(engine, "0006")
        assert "list_id" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    finally:
        engine.dispose()
    migrate.upgrade(store_url)


def test_upgrade_from_0009_gives_stored_events_their_clordid_and_downgrade_drops_it(
    store_url: str,
) -> None:
    """Events stored by an older fixgw (r0009) get the ClOrdID their JSON names (an order's
    NewOrderSingle's, a cancel's, a replace's; none for the others), so an order no longer open
    is found by a ClOrdID its chain had; the downgrade to 0009 drops the column."""
    migrate.upgrade(store_url, "0009")
    rows = [
        (1, "1", "created", '{"order":{"cl_ord_id":"a","order_id":"1","session_id":"S"}}'),
        (2, "1", "replace_requested", '{"cl_ord_id":"b","orig_cl_ord_id":"a"}'),
        (3, "1", "accepted", '{"cl_ord_id":"z","venue_order_id":"V1"}'),
        (4, "1", "cancel_requested", '{"cl_ord_id":"c","orig_cl_ord_id":"b"}'),
    ]
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            for event_id, order_id, kind, data in rows:
                conn.execute(text(
                    "INSERT INTO order_events (event_id, order_id, session_id, kind, ts_ns, data) "
                    "VALUES (:e, :o, 'S', :k, 1, :d)"), {"e": event_id, "o": order_id, "k": kind,
                                                         "d": data})
            conn.execute(text(
                "INSERT INTO orders (order_id, session_id, cl_ord_id, venue, symbol, status, "
                "is_open, updated_ns, last_event_id, snapshot) VALUES ('1', 'S', 'c', 'paper', "
                "'BTC/USDT', '4', :open, 1, 4, '{\"order_id\": \"1\"}')"), {"open": False})
    finally:
        engine.dispose()
    migrate.upgrade(store_url)
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT event_id, cl_ord_id FROM order_events")).all())
    finally:
        engine.dispose()
    assert stored == {1: "a", 2: "b", 3: None, 4: "c"}

    async def body() -> None:
        async with SessionStore(store_url) as store:
            for cl in "abc":
                assert await store.find_order_by_past_cl("S", cl) == {"order_id": "1"}, cl
            for cl in ("z", "A"):
                assert await store.find_order_by_past_cl("S", cl) is None, cl

    asyncio.run(body())
    engine = make_engine(store_url)
    try:
        _downgrade(engine, "0009")
        assert "cl_ord_id" not in {c["name"] for c in inspect(engine).get_columns("order_events")}
    finally:
        engine.dispose()
    migrate.upgrade(store_url)


def test_upgrade_from_0010_keeps_every_row_in_fewer_b_trees_and_downgrade_restores_them(
    store_url: str,
) -> None:
    """0011: on SQLite the events' id becomes the table's rowid and messages, reports and fills
    tables WITHOUT ROWID, rows and indexes kept; on both back ends the list index covers the
    orders of lists only. The downgrade gives the tables of 0010 back, rows kept."""
    _seed(store_url, "0010",
          _EVENTS + "(7, '1', 'S', 'created', 1, NULL, '{}', 'a'), "
          "(9, '1', 'S', 'filled', 2, '1.T1', '{}', NULL)",
          ("INSERT INTO messages (session_id, seq, data) VALUES ('S', 1, :d), ('S', 2, :d)",
           {"d": b"8=FIX.4.4\x01"}),
          "INSERT INTO reports (exec_id, session_id, seq) VALUES ('1.T1', 'S', 2)",
          "INSERT INTO fills (venue, trade_id, order_id, quantity, price, ts_ns) VALUES "
          "('paper', 'T1', '1', '0.5', '100', 2)")
    tables = {"order_events": "SELECT event_id, exec_id, cl_ord_id FROM order_events",
              "messages": "SELECT session_id, seq, data FROM messages",
              "reports": "SELECT exec_id, session_id, seq FROM reports",
              "fills": "SELECT venue, trade_id, order_id, quantity, price FROM fills"}

    def rows() -> dict[str, list[Any]]:
        engine = make_engine(store_url)
        try:
            with engine.connect() as conn:
                return {t: sorted(tuple(r) for r in conn.execute(text(q)).all())
                        for t, q in tables.items()}
        finally:
            engine.dispose()

    before = rows()
    migrate.upgrade(store_url, "0011")
    assert rows() == before
    engine = make_engine(store_url)
    try:
        if engine.dialect.name == "sqlite":
            shapes = _sqlite_shapes(engine)
            assert "event_id INTEGER NOT NULL" in shapes["order_events"]
            for t in ("messages", "reports", "fills"):
                assert shapes[t].rstrip().endswith("WITHOUT ROWID"), t
            assert {"ix_order_events_session_id", "ix_order_events_order_id",
                    "ix_order_events_cl_ord_id", "ix_fills_order_id"} <= set(shapes)
            assert "WHERE list_id IS NOT NULL" in shapes["ix_orders_list_id"]
        else:
            with engine.connect() as conn:
                where = conn.execute(text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_orders_list_id'")
                ).scalar_one()
            assert "WHERE (list_id IS NOT NULL)" in where
        _downgrade(engine, "0010")
        if engine.dialect.name == "sqlite":
            shapes = _sqlite_shapes(engine)
            assert "event_id BIGINT NOT NULL" in shapes["order_events"]
            assert "WITHOUT ROWID" not in shapes["messages"]
            assert "WHERE" not in shapes["ix_orders_list_id"]
    finally:
        engine.dispose()
    assert rows() == before
    migrate.upgrade(store_url, "0011")
    assert rows() == before


def test_upgrade_from_0011_moves_the_reports_onto_their_events_and_downgrade_restores_them(
    store_url: str,
) -> None:
    """0012: a ``reports`` row of a stored event becomes the event's ``report_seq`` (one of an
    event not stored stays a row); the index of every event by session gives way to a partial
    index of the events not reported with their commit; the same events are unreported
    before and after. The downgrade gives the rows and the index back."""
    _seed(store_url, "0011",
          _EVENTS + "(7, '1', 'S', 'created', 1, NULL, '{}', 'a'), "
          "(8, '1', 'S', 'accepted', 2, '1.1', '{}', NULL), "
          "(9, '1', 'S', 'fill', 3, '1.T1', '{}', NULL), "
          "(10, '2', 'S', 'accepted', 4, '2.1', '{}', NULL), "
          "(11, '3', 'R', 'accepted', 5, '3.1', '{}', NULL)",
          "INSERT INTO reports (exec_id, session_id, seq) VALUES "
          "('1.1', 'S', 4), ('1.T1', 'S', 5), ('3.1', 'R', 2), ('4.1', 'S', 6)")
    engine = make_engine(store_url)
    try:  # unreported at 0011: an ExecID and no reports row
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text(
                "SELECT session_id, event_id FROM order_events WHERE exec_id IS NOT NULL AND "
                "exec_id NOT IN (SELECT exec_id FROM reports) ORDER BY event_id")).all()] == [
                ("S", 10)]
    finally:
        engine.dispose()

    def unreported() -> dict[str, list[int]]:
        async def read() -> dict[str, list[int]]:
            async with SessionStore(store_url) as store:
                return {sid: [e.event_id for e in await store.unreported_events(sid)]
                        for sid in ("S", "R")}
        return asyncio.run(read())

    reports = [("1.1", "S", 4), ("1.T1", "S", 5), ("3.1", "R", 2), ("4.1", "S", 6)]
    migrate.upgrade(store_url)
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            assert sorted(tuple(r) for r in conn.execute(text(
                "SELECT exec_id, session_id, report_seq FROM order_events "
                "WHERE report_seq IS NOT NULL")).all()) == reports[:3]
            assert [tuple(r) for r in conn.execute(text(
                "SELECT exec_id, session_id, seq FROM reports")).all()] == reports[3:]
            indexes = {i["name"] for i in inspect(conn).get_indexes("order_events")}
        assert "ix_order_events_unreported" in indexes
        assert "ix_order_events_session_id" not in indexes
        assert unreported() == {"S": [10], "R": []}
        _downgrade(engine, "0011")
        with engine.connect() as conn:
            assert sorted(tuple(r) for r in conn.execute(text(
                "SELECT exec_id, session_id, seq FROM reports")).all()) == reports
            columns = {c["name"] for c in inspect(conn).get_columns("order_events")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("order_events")}
        assert "report_seq" not in columns
        assert "ix_order_events_session_id" in indexes
        assert "ix_order_events_unreported" not in indexes
    finally:
        engine.dispose()
    migrate.upgrade(store_url)
    assert unreported() == {"S": [10], "R": []}


def test_upgrade_from_0012_shrinks_the_orders_indexes_and_downgrade_restores_them(
    store_url: str,
) -> None:
    """0013: ``ix_orders_is_open`` holds the open orders only, and the open orders read at
    start are the same before and after (on SQLite, read through that index);
    ``ix_orders_session_id`` is gone. The downgrade gives both back as they were."""
    migrate.upgrade(store_url, "0012")
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            for i, is_open in enumerate((True, False, True, False, False)):
                conn.execute(text(
                    "INSERT INTO orders (order_id, session_id, cl_ord_id, venue, symbol, status, "
                    "is_open, updated_ns, last_event_id, snapshot) VALUES "
                    "(:o, 'S', :c, 'paper', 'BTC/USDT', '0', :open, 1, 1, :snap)"),
                    {"o": f"o{i}", "c": f"c{i}", "open": is_open, "snap": f'"{i}"'})

        def open_orders() -> list[str]:
            with engine.connect() as conn:
                return list(conn.execute(select(schema_orders.c.snapshot)
                                         .where(schema_orders.c.is_open)
                                         .order_by(schema_orders.c.order_id)).scalars())

        def index_rows() -> int:  # (SQLite's INDEXED BY: fails where the index cannot serve)
            with engine.connect() as conn:
                return int(conn.execute(text(
                    "SELECT count(*) FROM orders INDEXED BY ix_orders_is_open "
                    "WHERE is_open = 1")).scalar_one())

        def indexes() -> set[str]:
            with engine.connect() as conn:
                return {str(i["name"]) for i in inspect(conn).get_indexes("orders")}

        def is_open_sql() -> str:  # (SQLite: the index as created)
            with engine.connect() as conn:
                return str(conn.execute(text("SELECT sql FROM sqlite_master WHERE name = "
                                             "'ix_orders_is_open'")).scalar_one())

        before = open_orders()
        assert before == ['"0"', '"2"']
        assert {"ix_orders_is_open", "ix_orders_session_id"} <= indexes()
        migrate.upgrade(store_url)
        assert open_orders() == before
        assert "ix_orders_is_open" in indexes()
        assert "ix_orders_session_id" not in indexes()
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                plan = " ".join(str(r[-1]) for r in conn.execute(text(
                    "EXPLAIN QUERY PLAN SELECT snapshot FROM orders WHERE orders.is_open = 1 "
                    "ORDER BY order_id")))
            assert "ix_orders_is_open" in plan, plan
            assert "WHERE is_open = 1" in is_open_sql()
            assert index_rows() == 2
        else:
            with engine.connect() as conn:
                definition = conn.execute(text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_orders_is_open'"
                )).scalar_one()
            assert "WHERE is_open" in definition, definition
        _downgrade(engine, "0012")
        assert open_orders() == before
        assert {"ix_orders_is_open", "ix_orders_session_id"} <= indexes()
        if engine.dialect.name == "sqlite":
            assert "WHERE" not in is_open_sql()
    finally:
        engine.dispose()
    migrate.upgrade(store_url)

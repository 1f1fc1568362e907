"""The writer's fast path: batch writes as SQL text on the DBAPI cursor (gateway.store.sessions).

The SQL must be what SQLAlchemy renders for the equivalent Core statements, the rows must line up
with their columns, values must be bound as the column types bind them, and DBAPI errors must
surface as SQLAlchemy's -- the rest of the gateway (and the retry-alone path) relies on those.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import Dialect, Table, delete, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.model import Order, OrderEvent, order_to_json
from gateway.store.db import insert_sql, make_engine, placeholder
from gateway.store.records import FillRecord
from gateway.store.rows import build_append, json_text
from gateway.store.schema import (
    fills,
    kill_switches,
    message_log,
    messages,
    order_events,
    orders,
    reports,
    sessions,
)
from gateway.store.store import SessionStore
from gateway.store.switches import KILL_SWITCH_COLUMNS
from gateway.store.writer import bind_time
from gateway.store.writes import (
    EVENT_COLUMNS,
    FILL_COLUMNS,
    ORDER_COLUMNS,
    REPORT_COLUMNS,
    OrderStatements,
    SessionStatements,
)

T = TypeVar("T")
SID = "FIX.4.4:GW->CLIENT1"
SID2 = "FIX.4.4:GW->CLIENT2"
NS = 1_714_566_645_123_456_789
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))
DIALECTS: list[Dialect] = [
    make_engine(url).dialect  # the engines' dialects, without connecting
    for url in ("sqlite://", "postgresql+psycopg://nobody@127.0.0.1:1/none")
]


def with_store(url: str, body: Callable[[SessionStore], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        async with SessionStore(url, **kwargs) as store:
            return await body(store)

    return asyncio.run(main())


def an_order(order_id: str = "O1", **kw: Any) -> Order:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "session_id": SID,
        "cl_ord_id": f"CL-{order_id}",
        "account": "acct-1",
        "venue": "paper",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": Decimal("1.50000000"),
        "price": Decimal("65000.10"),
        "stop_price": None,
        "time_in_force": TimeInForce.GTC,
        "expire_time_ns": None,
        "post_only": False,
        "reduce_only": False,
        "created_ns": NS,
        "updated_ns": NS + 5,
        "last_event_id": 7,
    }
    fields.update(kw)
    return Order(**fields)


def an_event(event_id: int, exec_id: str | None = None) -> OrderEvent:
    return OrderEvent(
        event_id, "O1", SID, "accepted", NS + event_id, {"q": Decimal("1.0")}, exec_id
    )


# --- the SQL --------------------------------------------------------------------------------------


def _core_statements(dialect_name: str) -> dict[str, Insert]:
    """The SQLAlchemy Core statements the writer used to execute (before the fast path)."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    ins_order = insert(orders)
    ins_event = insert(order_events)
    ins_report = insert(reports)
    ins_message = insert(messages)
    session_columns = ("session_id", "next_sender", "next_target", "creation_time")
    ins_cod = insert(sessions).values({c: None for c in (*session_columns, "cod_override")})
    ins_kill = insert(kill_switches).values(
        {c: None for c in ("scope", "engaged", "reason", "changed_at")}
    )
    return {
        "create_sessions": insert(sessions)
        .values({c: None for c in session_columns})
        .on_conflict_do_nothing(index_elements=[sessions.c.session_id]),
        "upsert_cod_override": ins_cod.on_conflict_do_update(
            index_elements=[sessions.c.session_id],
            set_={"cod_override": ins_cod.excluded.cod_override},
        ),
        "upsert_kill_switch": ins_kill.on_conflict_do_update(
            index_elements=[kill_switches.c.scope],
            set_={
                "engaged": ins_kill.excluded.engaged,
                "reason": ins_kill.excluded.reason,
                "changed_at": ins_kill.excluded.changed_at,
            },
        ),
        "upsert_message": ins_message.on_conflict_do_update(
            index_elements=[messages.c.session_id, messages.c.seq],
            set_={"data": ins_message.excluded.data},
        ),
        "insert_log": insert(message_log).values(
            {c: None for c in ("session_id", "direction", "logged_at", "data")}
        ),
        "insert_event": ins_event.on_conflict_do_update(
            index_elements=[order_events.c.event_id],
            set_={"report_seq": ins_event.excluded.report_seq},
            where=text("order_events.report_seq IS NULL AND excluded.report_seq IS NOT NULL"),
        ),
        "upsert_order": ins_order.on_conflict_do_update(
            index_elements=[orders.c.order_id],
            # (what never changes after an order's first row is not set again)
            set_={c.name: ins_order.excluded[c.name] for c in orders.c
                  if c.name not in ("order_id", "session_id", "venue", "symbol", "list_id")},
            where=orders.c.last_event_id <= ins_order.excluded.last_event_id,
        ),
        "insert_fill": insert(fills).on_conflict_do_nothing(
            index_elements=[fills.c.venue, fills.c.trade_id]
        ),
        "upsert_report": ins_report.on_conflict_do_update(
            index_elements=[reports.c.exec_id],
            set_={"session_id": ins_report.excluded.session_id, "seq": ins_report.excluded.seq},
        ),
    }


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_batch_sql_is_what_sqlalchemy_renders(dialect: Dialect) -> None:
    st = SessionStatements(dialect)
    ost = OrderStatements(dialect)
    ours = {
        "create_sessions": st.create_sessions,
        "upsert_cod_override": st.upsert_cod_override,
        "upsert_kill_switch": st.upsert_kill_switch,
        "upsert_message": st.upsert_message,
        "insert_log": st.insert_log,
        "insert_event": ost.insert_event,
        "upsert_order": ost.upsert_order,
        "insert_fill": ost.insert_fill,
        "upsert_report": ost.upsert_report,
    }
    for name, statement in _core_statements(dialect.name).items():
        compiled = statement.compile(dialect=dialect)
        # a single-row INSERT fetches the new message_log.id; an executemany does not
        rendered = str(compiled).removesuffix(" RETURNING message_log.id")
        if dialect.name == "postgresql":
            # SQLAlchemy renders named parameters with casts; ours are positional, same order
            names = re.findall(r"%\((\w+)\)s", rendered)
            rendered = re.sub(r"%\(\w+\)s(::[A-Z ]+)?", "%s", rendered)
        else:
            names = list(compiled.positiontup or ())
        columns = re.search(r"INSERT INTO \w+ \(([^)]*)\)", ours[name])
        assert columns is not None
        assert names == columns.group(1).split(", "), name
        assert ours[name] == rendered, name

    mark = placeholder(dialect.name)
    assert st.update_seqs == (
        f"UPDATE sessions SET next_sender = coalesce({mark}, next_sender), "
        f"next_target = coalesce({mark}, next_target) WHERE session_id = {mark}"
    )


def test_insert_sql() -> None:
    assert insert_sql("t", ("a", "b"), "?") == "INSERT INTO t (a, b) VALUES (?, ?)"
    assert (
        insert_sql("t", ("a", "b"), "%s", conflict=["a"])
        == "INSERT INTO t (a, b) VALUES (%s, %s) ON CONFLICT (a) DO NOTHING"
    )
    assert insert_sql("t", ("a", "b", "c"), "?", conflict=["a"], update=["b", "c"], where="x") == (
        "INSERT INTO t (a, b, c) VALUES (?, ?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b, "
        "c = excluded.c WHERE x"
    )
    for bad in ("t; DROP TABLE x", "T", "a b", ""):
        with pytest.raises(ValueError):
            insert_sql(bad, ("a",), "?")
        with pytest.raises(ValueError):
            insert_sql("t", (bad,), "?")
    with pytest.raises(ValueError):
        insert_sql("t", ("a",), "?", update=["a"])
    with pytest.raises(ValueError):
        insert_sql("t", ("a",), "?", conflict=["a"], where="x")
    with pytest.raises(ValueError):
        placeholder("mysql")


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_times_are_bound_as_the_utc_datetime_type_binds_them(dialect: Dialect) -> None:
    def bind(when: datetime) -> object:
        return bind_time(dialect.name, when)
    for column in (message_log.c.logged_at, sessions.c.creation_time, kill_switches.c.changed_at):
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        assert processor is not None
        for when in (
            T0,
            T0.astimezone(PARIS),
            T0.replace(microsecond=0),
            datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
            datetime(2024, 3, 31, 1, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        ):
            assert bind(when) == processor(when), when


# --- the rows -------------------------------------------------------------------------------------


def _table_columns(table: Table) -> list[str]:
    return [c.name for c in table.c if not (c.primary_key and c.autoincrement is True)]


def test_row_columns_are_the_tables_columns() -> None:
    assert sorted(EVENT_COLUMNS) == sorted(_table_columns(order_events))
    assert sorted(ORDER_COLUMNS) == sorted(_table_columns(orders))
    assert sorted(FILL_COLUMNS) == sorted(_table_columns(fills))
    assert sorted(REPORT_COLUMNS) == sorted(_table_columns(reports))
    assert list(KILL_SWITCH_COLUMNS) == _table_columns(kill_switches)


def test_built_rows_line_up_with_their_columns() -> None:
    o = an_order()
    f = FillRecord("paper", "T1", "O1", Decimal("0.10"), Decimal("65000.1"), None, None, None, NS)
    append = build_append([an_event(3, "E3")], [o], [f])
    assert [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in append.events] == [
        {
            "event_id": 3,
            "order_id": "O1",
            "session_id": SID,
            "kind": "accepted",
            "ts_ns": NS + 3,
            "exec_id": "E3",
            "data": '{"q":"1.0"}',
            "cl_ord_id": None,
            "report_seq": None,
        }
    ]
    assert [dict(zip(ORDER_COLUMNS, row, strict=True)) for row in append.orders] == [
        {
            "order_id": "O1",
            "session_id": SID,
            "cl_ord_id": "CL-O1",
            "venue": "paper",
            "symbol": "BTC/USDT",
            "status": o.status.value,
            "is_open": True,
            "updated_ns": NS + 5,
            "last_event_id": 7,
            "snapshot": json_text(order_to_json(o)),
            "list_id": None,
        }
    ]
    assert [dict(zip(FILL_COLUMNS, row, strict=True)) for row in append.fills] == [
        {
            "venue": "paper",
            "trade_id": "T1",
            "order_id": "O1",
            "quantity": "0.10",
            "price": "65000.1",
            "fee": None,
            "fee_currency": None,
            "liquidity": None,
            "ts_ns": NS,
        }
    ]


# --- errors, connections --------------------------------------------------------------------------


def test_dbapi_errors_surface_as_sqlalchemy_errors(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.append_order_events([an_event(1, "E1")], [])
        with pytest.raises(IntegrityError) as raised:
            await store.append_order_events([an_event(2, "E1")], [])  # a batch of its own
        assert isinstance(raised.value.orig, sqlite3.IntegrityError | psycopg.IntegrityError)
        assert raised.value.statement is not None
        assert raised.value.statement.startswith("INSERT INTO order_events")
        # the store goes on, and the transaction of the failed append was rolled back
        await store.append_order_events([an_event(3, "E3")], [an_order(last_event_id=3)])
        assert [e.event_id for e in await store.replay_events(0, 10)] == [1, 3]

    with_store(store_url, body)


def test_a_session_row_deleted_under_the_store_fails_only_its_save(store_url: str) -> None:
    async def body(store: SessionStore) -> list[Any]:
        await store.load(SID)
        await store.load(SID2)
        engine = make_engine(store_url)
        try:
            with engine.begin() as conn:
                conn.execute(delete(sessions).where(sessions.c.session_id == SID))
        finally:
            engine.dispose()
        results = await asyncio.gather(
            store.save(SID, sent=[(1, b"lost")], next_sender=2),
            store.save(SID2, sent=[(1, b"kept")], next_sender=2),
            return_exceptions=True,
        )
        assert await store.get_sent(SID, 1, 0) == []
        assert await store.get_sent(SID2, 1, 0) == [(1, b"kept")]
        assert (await store.load(SID2)).next_sender == 2
        return list(results)

    results = with_store(store_url, body)
    assert isinstance(results[0], RuntimeError) and results[1] is None


def test_a_session_created_by_a_save_gets_the_clock_time_in_utc(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.save(SID, sent=[(1, b"m")], next_sender=2)

    with_store(store_url, body, clock=lambda: T0.astimezone(PARIS))
    record = with_store(store_url, lambda store: store.load(SID))
    assert record.creation_time == T0
    assert record.creation_time.utcoffset() == timedelta(0)
    assert (record.next_sender, record.next_target) == (2, 1)


def test_the_writer_keeps_one_connection(store_url: str) -> None:
    checkouts: list[object] = []

    async def body(store: SessionStore) -> None:
        event.listen(store.writer.engine, "checkout", lambda *args: checkouts.append(args[0]))
        await store.load(SID)
        for seq in range(1, 21):
            store.log(SID, "out", b"35=0", T0)
            await store.save(SID, sent=[(seq, b"m")], next_sender=seq + 1)
        assert len(await store.get_sent(SID, 1, 0)) == 20
        await asyncio.gather(*(store.save(SID2, next_target=n) for n in range(2, 30)))
        assert (await store.load(SID2)).next_target == 29

    with_store(store_url, body)
    assert len(checkouts) <= 1


@pytest.mark.postgres
def test_a_lost_postgresql_connection_is_replaced_without_failing_callers(pg_url: str) -> None:
    parsed = make_url(pg_url)

    def kill_other_backends() -> int:
        with psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
        ) as pg:
            row = pg.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            assert row is not None
            return int(row[0])

    async def body(store: SessionStore) -> None:
        await store.save(SID, sent=[(1, b"one")], next_sender=2)
        assert await asyncio.to_thread(kill_other_backends) >= 1
        await store.save(SID, sent=[(2, b"two")], next_sender=3)  # a write-only batch
        assert await asyncio.to_thread(kill_other_backends) >= 1
        assert await store.get_sent(SID, 1, 0) == [(1, b"one"), (2, b"two")]  # a read
        assert await asyncio.to_thread(kill_other_backends) >= 1
        written, read = await asyncio.gather(  # most likely one batch: a write, then a read
            store.save(SID, sent=[(3, b"three")], next_sender=4),
            store.get_sent(SID, 3, 3),
        )
        assert written is None and read == [(3, b"three")]
        assert await asyncio.to_thread(kill_other_backends) >= 1
        await store.append_order_events([an_event(1, "E1")], [an_order(last_event_id=1)])
        assert [e.event_id for e in await store.replay_events(0, 10)] == [1]
        assert (await store.load(SID)).next_sender == 4

    with_store(pg_url, body)


def test_sqlite_stores_times_as_sqlalchemy_does(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"

    async def body(store: SessionStore) -> None:
        store.log(SID, "in", b"35=A", T0.astimezone(PARIS))
        await store.save(SID, next_sender=2)

    with_store(url, body, clock=lambda: T0.replace(microsecond=0))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            logged = conn.execute(text("SELECT logged_at FROM message_log")).scalar_one()
            created = conn.execute(text("SELECT creation_time FROM sessions")).scalar_one()
    finally:
        engine.dispose()
    assert (logged, created) == ("2024-05-01 12:00:00.123456", "2024-05-01 12:00:00.000000")

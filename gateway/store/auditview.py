"""What ``fixgw audit --store URL`` reads from a store: the message log, streamed in the order
it was written, and order snapshots. Read-only, synchronous, its own engine (the audit runs
beside a live gateway or on a copy of its database); no migration is run. The audit layer
reaches it through ``gateway.audit.storecheck.StoreView`` (the command line wires it in)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from gateway.audit.errors import InputError
from gateway.store.db import is_sqlite, make_engine
from gateway.store.orders import known_by_cl_ord_id, maybe_created_since
from gateway.store.schema import message_log, orders

_IN_CHUNK = 500
_YIELD = 5000


class StoreReadError(InputError):
    """The store cannot be read (unreachable, not a fixgw store): an input the audit cannot
    read."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(safe_url(url), None, reason)


def safe_url(url: str) -> str:
    """The URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def read_engine(url: str, probe: ColumnElement[Any], what: str) -> Engine:
    """An engine that reads the store at ``url``, ``probe`` (a column of the table the reader
    needs) read once to show it can; StoreReadError saying it cannot read ``what``. On SQLite
    plain reads, not the gateway's engine (whose transactions take SQLite's write lock up
    front: a live gateway would wait on the reader)."""
    try:
        if is_sqlite(url):
            database = make_url(url).database
            if database and database != ":memory:" and not Path(database).exists():
                raise StoreReadError(url, "no such database file")
            engine: Engine = create_engine(url)
        else:
            engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(select(probe).limit(1)).all()
    except (SQLAlchemyError, ArgumentError, ValueError) as exc:
        raise StoreReadError(url, f"cannot read {what}: {str(exc).splitlines()[0]}") from None
    return engine


class StoreAuditView:
    """The audit's view of the store at ``url`` (sqlite:/// or postgresql+psycopg://)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = safe_url(url)
        self.engine = read_engine(url, message_log.c.id, "the message log")
        self._chains: bool | None = None

    def close(self) -> None:
        self.engine.dispose()

    def message_log(
        self, session_ids: Sequence[str] | None, since: datetime | None, until: datetime | None
    ) -> Iterator[tuple[str, str, datetime, bytes]]:
        c = message_log.c
        query = select(c.session_id, c.direction, c.logged_at, c.data).order_by(c.id)
        if session_ids:
            query = query.where(c.session_id.in_(list(session_ids)))
        if since is not None:
            query = query.where(c.logged_at >= since)
        if until is not None:
            query = query.where(c.logged_at <= until)
        try:
            with self.engine.connect() as conn:
                for row in conn.execution_options(yield_per=_YIELD).execute(query):
                    yield row[0], row[1], row[2], bytes(row[3])
        except SQLAlchemyError as exc:
            raise StoreReadError(self.url, "the message log cannot be read: "
                                 f"{str(exc).splitlines()[0]}") from None

    def _snapshots(self, query: Any) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [json.loads(s) for (s,) in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise StoreReadError(self.url, "the orders cannot be read: "
                                 f"{str(exc).splitlines()[0]}") from None

    def orders_by_id(self, order_ids: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ids = list(order_ids)
        for i in range(0, len(ids), _IN_CHUNK):
            out += self._snapshots(select(orders.c.snapshot).where(
                orders.c.order_id.in_(ids[i:i + _IN_CHUNK])))
        return out

    def orders_by_cl_ord_id(self, session_ids: Sequence[str],
                            cl_ord_ids: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ids, sessions = list(cl_ord_ids), list(session_ids)
        chains = self._has_chains()
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i:i + _IN_CHUNK]
            known = (known_by_cl_ord_id(sessions, chunk) if chains else
                     and_(orders.c.session_id.in_(sessions), orders.c.cl_ord_id.in_(chunk)))
            out += self._snapshots(select(orders.c.snapshot).where(known))
        return out

    def _has_chains(self) -> bool:
        """Whether the store's events keep the ClOrdIDs of their orders' chains (migration
        0010): the audit reads a store as it finds it, an older one included (without that
        column, the orders' own index by ClOrdID is still there)."""
        if self._chains is None:
            try:
                columns = inspect(self.engine).get_columns("order_events")
            except SQLAlchemyError as exc:
                raise StoreReadError(self.url, "the orders cannot be read: "
                                     f"{str(exc).splitlines()[0]}") from None
            self._chains = any(c["name"] == "cl_ord_id" for c in columns)
        return self._chains

    def orders_of_sessions(self, session_ids: Sequence[str], created_from_ns: int,
                           created_to_ns: int) -> Iterator[dict[str, Any]]:
        query = select(orders.c.snapshot).where(
            orders.c.session_id.in_(list(session_ids)),
            maybe_created_since(created_from_ns)).order_by(orders.c.order_id)
        try:
            with self.engine.connect() as conn:
                for (s,) in conn.execution_options(yield_per=_YIELD).execute(query):
                    snap: dict[str, Any] = json.loads(s)
                    if created_from_ns <= int(snap.get("created_ns", 0)) <= created_to_ns:
                        yield snap
        except SQLAlchemyError as exc:
            raise StoreReadError(self.url, "the orders cannot be read: "
                                 f"{str(exc).splitlines()[0]}") from None

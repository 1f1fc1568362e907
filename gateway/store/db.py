"""Engine creation for the fixgw store.

Two back ends are supported:

* ``sqlite:///path/to/fixgw.db`` -- the embedded default. Every new DBAPI connection is put in
  WAL journal mode with ``synchronous=NORMAL`` and a busy timeout, and SQLAlchemy (not the
  ``sqlite3`` module's legacy transaction control) emits ``BEGIN IMMEDIATE`` so that a
  transaction takes the write lock up front instead of failing with "database is locked" when it
  upgrades from reading to writing (SQLAlchemy docs, "Transactions with SQLite and the sqlite3
  driver"). WAL + ``synchronous=NORMAL`` keeps every commit across a process crash (SIGKILL);
  only an operating-system crash or power loss may lose the last commits
  (https://www.sqlite.org/pragma.html#pragma_synchronous).
  Where it is built, the file is opened through fixgw's VFS (:func:`wal_vfs`), which writes
  each commit's write-ahead-log frames with one write rather than two a page.
* ``postgresql+psycopg://user@host:port/db`` -- the production store (psycopg 3).

Engines are synchronous: the store uses them from one dedicated writer thread only, never from
the event loop -- except a SQLite file's commits, run inline on the loop's thread while the
writer thread is idle, never waiting for a lock (see :mod:`gateway.store.writer`).

The writer's hot path (the merged writes of a group commit) bypasses SQLAlchemy's statement
machinery: :func:`insert_sql` renders an ``INSERT ... ON CONFLICT`` once per engine in the DBAPI's
parameter style (:func:`placeholder`), and the writer runs it with the DBAPI cursor's
``executemany``. Both back ends accept the same upsert syntax (SQLite >= 3.24, PostgreSQL >= 9.5).
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from gateway.native import ORDER_PATH

PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""libpq settings of the store's PostgreSQL connections: a connection attempt, an idle
connection and unacknowledged data each give up within about ten seconds."""

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite connection waits for another process's lock before failing."""
SQLITE_PAGE_SIZE = 2048
"""The page size of a new SQLite store (an existing one keeps its own: SQLite changes it only
by rewriting the whole file, which fixgw never does). In WAL mode a commit writes each page it
changed whole, with a checksum over it, and an order's two commits change about 25 pages (a
page or more of each table and index they touch): at 2 KiB rather than SQLite's default 4 KiB
they write 58 KiB rather than 99 and SQLite's work on them (replayed: ``scripts/wal_frames.py``
captures) is about 15% less, though the pages are more (29 rather than 25: the rows of orders
and events, a JSON snapshot of up to a kilobyte, fill a 2 KiB page sooner). 1 KiB pages write
less again but spill those rows into overflow pages (36 an order), and cost as much."""


@functools.cache
def wal_vfs() -> str | None:
    """The name of the SQLite VFS that writes each commit's write-ahead-log frames with one
    write (``gateway/store/_walvfs.c``: SQLite writes a frame's header and its page apart, two
    writes a page, some 56 an order at 1 in flight), registered at the first call; None where
    it is not built, or the order path runs as Python (``FIXGW_PURE=1``), or the ``sqlite3``
    module runs another SQLite library than the one the VFS was registered in. Every store
    connection to a SQLite file opens it through this VFS; what the file holds, and when a
    commit is in it, are as with SQLite's own."""
    if ORDER_PATH.pure:
        return None
    try:
        from gateway.store import _walvfs  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        name: str = _walvfs.register()
        # (the sqlite3 module may run another copy of SQLite than the one the VFS was
        # registered in: it must find the VFS by its name)
        sqlite3.connect(f"file:fixgw-probe?vfs={name}&mode=memory", uri=True).close()
    except (RuntimeError, sqlite3.Error):
        return None
    return name


def is_sqlite(url: str) -> bool:
    """True when ``url`` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def is_file_sqlite(url: str) -> bool:
    """True when ``url`` names a SQLite database in a file (not in memory)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create (without connecting) a synchronous engine for ``url``.

    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        # a server that stops answering (a host gone, a network cut) is an outage within
        # seconds, not a writer blocked for the kernel's default of minutes; what the URL
        # sets wins
        connect_args = dict(PG_CONNECT_ARGS)
        connect_args.update(kwargs.pop("connect_args", {}))
        for key in list(connect_args):
            if key in parsed.query:
                del connect_args[key]
        return create_engine(parsed, connect_args=connect_args, **kwargs)
    raise ValueError(
        f"unsupported store URL backend {backend!r}: use sqlite:// or postgresql+psycopg://"
    )


def _null(value: None) -> None:
    return value


@functools.cache
def _bind_plainly() -> None:
    """The ``sqlite3`` module binds an int, float, str or bytearray parameter at once, and asks
    its adapter registry about every other (None, bool, bytes: some ten an order), failing
    two attribute lookups for each (the ``__adapt__``/``__conform__`` protocol) before binding it
    as it is. Registered, these bind the same values (NULL, 0/1, a BLOB) without the lookups.
    (The registry is the process's: every sqlite3 connection in it binds them so, alike.)"""
    sqlite3.register_adapter(type(None), _null)
    sqlite3.register_adapter(bool, int)
    sqlite3.register_adapter(bytes, bytes)


def _configure_sqlite(engine: Engine) -> None:
    _bind_plainly()
    vfs = wal_vfs()
    if vfs is not None:
        @event.listens_for(engine, "do_connect")
        def _through_vfs(_dialect: Any, _record: Any, cargs: list[Any],
                         cparams: dict[str, Any]) -> None:
            # a file named plainly (not already a URI, not in memory) is opened as a URI naming
            # the VFS; the rest of the URL's settings are the connection's keyword arguments
            database = str(cargs[0]) if cargs else ""
            if cparams.get("uri") or database in ("", ":memory:"):
                return
            path = quote(os.fsencode(os.path.abspath(database)))
            cargs[0] = f"file://{path}?vfs={vfs}"
            cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (legacy mode does not BEGIN
        # before DDL or SELECT); SQLAlchemy emits BEGIN IMMEDIATE itself below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            # (before WAL mode, which writes a new file's first page: later it cannot change)
            cursor.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def placeholder(dialect_name: str) -> str:
    """The positional parameter marker of the DBAPI behind ``dialect_name``: ``sqlite3`` takes
    ``?`` (qmark), ``psycopg`` takes ``%s`` (format)."""
    if dialect_name == "sqlite":
        return "?"
    if dialect_name == "postgresql":
        return "%s"
    raise ValueError(f"unsupported dialect {dialect_name}")


def insert_sql(
    table: str,
    columns: Sequence[str],
    mark: str,
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    where: str = "",
) -> str:
    """``INSERT INTO table (columns) VALUES (mark, ...)``, parameters in ``columns`` order.

    With ``conflict`` (the columns of a unique constraint) it becomes an upsert:
    ``ON CONFLICT (conflict) DO UPDATE SET c = excluded.c`` for each of ``update`` (optionally
    ``WHERE where``), or ``DO NOTHING`` when ``update`` is empty. Names must be plain lower-case
    identifiers (they are not quoted).
    """
    for name in (table, *columns, *conflict, *update):
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    values = ", ".join(mark for _ in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608 - names checked
    if not conflict:
        if update or where:
            raise ValueError("update/where need a conflict target")
        return sql
    sql += f" ON CONFLICT ({', '.join(conflict)}) "
    if not update:
        if where:
            raise ValueError("where needs update columns")
        return sql + "DO NOTHING"
    sql += "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)
    return sql + (f" WHERE {where}" if where else "")

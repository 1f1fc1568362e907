"""A throwaway PostgreSQL database for a benchmark (created, then dropped)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url


@contextmanager
def scratch_database(url: str) -> Iterator[str | None]:
    """Yields the URL of a new database on the server of ``url`` (None: server unreachable)."""
    parsed = make_url(url)
    params = {"host": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
              "user": parsed.username, "password": parsed.password,
              "dbname": parsed.database or "postgres", "connect_timeout": 3}
    try:
        admin = psycopg.connect(make_conninfo("", **{k: v for k, v in params.items()
                                                     if v is not None}))
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable at {parsed.host}:{parsed.port}: {exc}".strip())
        yield None
        return
    admin.autocommit = True
    name = f"fixgw_bench_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
            sql.Identifier(name)))
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

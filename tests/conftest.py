"""Shared fixtures. Keep this small; feature-specific fixtures live next to their tests."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB = "127.0.0.1", 5432, "postgres", "test"
_PG_ADMIN = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_ADMIN_DB} connect_timeout=3"


@functools.cache
def _pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); asked once per test run."""
    try:
        psycopg.connect(_PG_ADMIN).close()
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def require_postgres() -> None:
    """Skip the test when PostgreSQL is not reachable, or fail it when REQUIRE_POSTGRES=1."""
    reason = _pg_unreachable()
    if reason is None:
        return
    message = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}"
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{message} (REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(message)


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped afterwards.

    One database each (``CREATE DATABASE ... TEMPLATE template0``: never busy, so parallel
    runs do not collide) isolates everything, migrations and alembic_version included.
    """
    require_postgres()
    name = f"fixgw_test_{secrets.token_hex(6)}"
    with psycopg.connect(_PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with psycopg.connect(_PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def pg_url_module() -> Iterator[str]:
    """A fresh PostgreSQL database shared by a module (a server started once for many tests)."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL of each back end: SQLite in tmp_path, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fixgw.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url

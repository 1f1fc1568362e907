"""Alembic environment: runs the migrations on the connection handed over by
:func:`gateway.store.migrate.upgrade` (``config.attributes["connection"]``), or on an engine
made from the ``sqlalchemy.url`` option when the ``alembic`` command line is used.

On PostgreSQL the run holds a transaction-level advisory lock, so several gateway nodes that
start at once against one database migrate it one after the other.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from gateway.store.db import make_engine
from gateway.store.schema import metadata

MIGRATION_LOCK_KEY = 0x66697867_77000001
"""pg_advisory_xact_lock key ("fixgw" + 1) serialising concurrent migrations."""


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the migration run")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
_main()

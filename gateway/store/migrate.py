"""Schema migrations, run from code (no ``alembic.ini`` needed).

:func:`upgrade` brings a database to the newest revision; the store calls it on start. The
Alembic scripts live in ``gateway/store/migrations/`` and are located relative to this module,
so they are found from an installed package too (pyproject ``package-data``).

Command line (for developers)::

    python -m gateway.store.migrate upgrade sqlite:///data/fixgw.db
    python -m gateway.store.migrate current sqlite:///data/fixgw.db
    python -m gateway.store.migrate revision "add orders table" --url sqlite:///scratch.db
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from gateway.store.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the fixgw migrations, built in code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % (URL-encoded password) must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str | Engine, revision: str = "head") -> None:
    """Migrate the database at ``url`` (or behind ``engine``) to ``revision``.

    Synchronous: call it from a worker thread, not from the event loop.
    """
    engine = make_engine(url) if isinstance(url, str) else url
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(connection), revision)
            connection.commit()
    finally:
        if isinstance(url, str):
            engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped with this version of fixgw."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str | Engine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    engine = make_engine(url) if isinstance(url, str) else url
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        if isinstance(url, str):
            engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.store.migrate")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("upgrade", help="migrate a database to the newest revision")
    p_up.add_argument("url")
    p_cur = sub.add_parser("current", help="print the revision a database is at")
    p_cur.add_argument("url")
    p_rev = sub.add_parser("revision", help="autogenerate a revision from gateway.store.schema")
    p_rev.add_argument("message")
    p_rev.add_argument("--url", required=True, help="a database at the current head to diff")
    args = parser.parse_args(argv)
    if args.cmd == "upgrade":
        upgrade(args.url)
    elif args.cmd == "current":
        print(current_revision(args.url))
    else:
        head = head_revision()
        rev_id = f"{int(head or '0') + 1:04d}"
        engine = make_engine(args.url)
        try:
            with engine.connect() as connection:
                config = alembic_config(connection)
                # Module names must be identifiers (mypy, imports): r0002_add_orders_table.py
                config.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
                command.revision(config, message=args.message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

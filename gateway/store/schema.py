"""SQLAlchemy Core tables of the fixgw store.

One :data:`metadata` holds every table; later features (orders, fills, events) add theirs here
and a new migration under ``gateway/store/migrations/versions/``. The migrations, not
``metadata.create_all``, create the schema; a test checks the two agree.

Tables (DESIGN.md, "Storage"):

* ``sessions`` -- one row per FIX session id (e.g. ``FIX.4.4:ISLD->TW44``): the next sequence
  number we send (MsgSeqNum 34 of our next message), the next one we expect from the
  counterparty, and the session's creation time (QuickFIX's "creation time", reset with the
  sequence numbers).
* ``messages`` -- every message we sent, by (session, MsgSeqNum), kept for ResendRequest (2)
  answers.
* ``message_log`` -- both directions, append-only, for audit (secrets masked).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    TypeDecorator,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can refer to them on every back end."""

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SESSION_ID_LENGTH = 255


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every back end.

    PostgreSQL stores ``timestamptz``; SQLite has no time zone, so values are stored as UTC and
    the zone is re-attached on load. Naive datetimes are refused: time is UTC (DESIGN.md).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps UTC, pass an aware one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
AutoId = BigInteger().with_variant(Integer(), "sqlite")

sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("next_sender", BigInteger, nullable=False),
    Column("next_target", BigInteger, nullable=False),
    Column("creation_time", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("session_id"),
    CheckConstraint("next_sender >= 1", name="next_sender_positive"),
    CheckConstraint("next_target >= 1", name="next_target_positive"),
)

messages = Table(
    "messages",
    metadata,
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("session_id", "seq"),
)

message_log = Table(
    "message_log",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("logged_at", UTCDateTime, nullable=False),
    Column("data", LargeBinary, nullable=False),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
    Index(None, "session_id", "logged_at"),
)

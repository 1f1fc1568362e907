"""SQLAlchemy Core tables of the fixgw store.

One :data:`metadata` holds every table; later features (orders, fills, events) add theirs here
and a new migration under ``gateway/store/migrations/versions/``. The migrations, not
``metadata.create_all``, create the schema; a test checks the two agree.

Tables:

* ``sessions`` -- one row per FIX session id (e.g. ``FIX.4.4:ISLD->TW44``): the next sequence
  number we send (MsgSeqNum 34 of our next message), the next one we expect from the
  counterparty, and the session's creation time (QuickFIX's "creation time", reset with the
  sequence numbers). ``cod_override`` is the cancel-on-disconnect mode the client's last Logon
  chose with tag 8013 (``both`` for Y, ``off`` for N; NULL when it sent none), so the promise
  outlives a gateway restart.
* ``messages`` -- every message we sent, by (session, MsgSeqNum), kept for ResendRequest (2)
  answers.
* ``message_log`` -- both directions, append-only, for audit (secrets masked).
* ``store_probe`` -- one row the writer rewrites after a failed commit, to learn that the
  store takes writes again (a real write: a full disk answers reads).
* ``gateway_nodes`` -- one row per gateway node (``[gateway] node``, else one per process): its
  fencing token (raised whenever another process takes the node's place), its listening
  address, the host and process that hold it, and until when its lease runs (epoch
  milliseconds, the database's clock). ``sessions.owner`` names the node that serves a session.
* ``kill_switches`` -- one row per scope (a session id, or ``*`` for the whole gateway) whose
  kill switch an admin command engaged or released: whether it is engaged, why, and when it
  last changed; read at start so a switch outlives a gateway restart.

Orders (:mod:`gateway.store.orders`; ids and amounts are the caller's, amounts as exact decimal
strings):

* ``order_events`` -- append-only event log, by the caller's monotonic ``event_id``; replaying it
  rebuilds every order. ``exec_id`` is the ExecID (17) the client is (to be) told it by; unique.
  ``cl_ord_id`` is the ClOrdID (11) the event gave the order's chain (its NewOrderSingle's, a
  cancel's or a replace's; NULL for the other events), indexed: a request naming a ClOrdID of
  an order no longer open finds it (too late to cancel, not unknown). ``report_seq`` is the
  MsgSeqNum (34) that carried the event's ExecutionReport, set when the report commits with
  its event (the usual case); NULL otherwise (only such events are in the
  ``ix_order_events_unreported`` index: a session's are found at its Logon without reading
  its other events).
* ``orders`` -- the latest snapshot of each order (JSON of ``order_to_json``) plus the columns
  it is looked up by (``list_id``: the ListID (66) of the NewOrderList it came in, NULL for an
  order that came alone).
* ``fills`` -- one row per venue trade, keyed by (venue, trade id): a replayed trade is ignored.
* ``reports`` -- an ExecID sent to a client in a transaction without its event (a report told
  at a Logon, one sent while its event waits in memory for the store), with the MsgSeqNum
  (34) that carried it. An event with an ExecID is reported when its ``report_seq`` is set or
  its ExecID is here.
* ``drop_copies`` -- one row per copy of an ExecutionReport a drop copy session is to receive
  (``session_id``: the drop copy session; ``source``: the session the report was for; ``data``:
  the report's body as JSON), inserted in the commit of the order event it copies; ``seq`` is the
  MsgSeqNum (34) that carried it to the drop copy session, set in the commit of that message
  (NULL: not delivered yet, sent at the drop copy's next Logon). Ordered by ``event_id``.
* ``counters`` -- named counters from which OrderIDs and event ids are reserved in blocks.
* ``position_adjustments`` -- where a venue's own position (derivatives) differed from the one
  computed from the fills: both quantities, the difference and why, by venue, symbol and time;
  read at start so a difference is adjusted once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
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
ID_LENGTH = 255
"""External identifiers: ClOrdID (11), ExecID (17), venue trade ids, symbols."""
NAME_LENGTH = 64
"""Short names: gateway OrderIDs (37), venues, event kinds, currencies, counters."""
MODE_LENGTH = 16
"""Setting values: a cancel-on-disconnect mode (``off``, ``disconnect``, ``logout``, ``both``)."""
REASON_LENGTH = 200
ADDRESS_LENGTH = 255
"""A node's FIX listening address (``host:port``)."""
"""Free text an operator gives with an admin command (a kill switch's reason)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every back end.

    PostgreSQL stores ``timestamptz``; SQLite has no time zone, so values are stored as UTC and
    the zone is re-attached on load. Naive datetimes are refused: time is UTC.
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
EventId = BigInteger().with_variant(Integer(), "sqlite")
"""An event id: given by the caller, and on SQLite the table's rowid (INTEGER PRIMARY KEY), so
the events' primary key is no b-tree of its own."""

sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("next_sender", BigInteger, nullable=False),
    Column("next_target", BigInteger, nullable=False),
    Column("creation_time", UTCDateTime, nullable=False),
    Column("cod_override", String(MODE_LENGTH), nullable=True),
    Column("owner", String(NAME_LENGTH), nullable=True),
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
    sqlite_with_rowid=False,
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

kill_switches = Table(
    "kill_switches",
    metadata,
    Column("scope", String(SESSION_ID_LENGTH), nullable=False),
    Column("engaged", Boolean, nullable=False),
    Column("reason", String(REASON_LENGTH), nullable=False, server_default=""),
    Column("changed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("scope"),
)

position_adjustments = Table(
    "position_adjustments",
    metadata,
    Column("venue", String(NAME_LENGTH), nullable=False),
    Column("symbol", String(ID_LENGTH), nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Column("computed", Text, nullable=False),
    Column("venue_quantity", Text, nullable=False),
    Column("delta", Text, nullable=False),
    Column("reason", String(REASON_LENGTH), nullable=False, server_default=""),
    PrimaryKeyConstraint("venue", "symbol", "ts_ns"),
)

store_probe = Table(
    "store_probe",
    metadata,
    Column("id", Integer, nullable=False, autoincrement=False),
    Column("probed_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("id"),
)

gateway_nodes = Table(
    "gateway_nodes",
    metadata,
    Column("node", String(NAME_LENGTH), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("address", String(ADDRESS_LENGTH), nullable=False, server_default=""),
    Column("host", String(ADDRESS_LENGTH), nullable=False, server_default=""),
    Column("process", String(NAME_LENGTH), nullable=False, server_default=""),
    Column("started_ms", BigInteger, nullable=False),
    Column("lease_until_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("node"),
)


UNREPORTED = "exec_id IS NOT NULL AND report_seq IS NULL"
"""An event with an ExecutionReport not sent with it (the partial index
``ix_order_events_unreported`` holds only these: a session's are read at its Logon, less those
whose ExecID is in ``reports``)."""

order_events = Table(
    "order_events",
    metadata,
    Column("event_id", EventId, nullable=False, autoincrement=False),
    Column("order_id", String(NAME_LENGTH), nullable=False),
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("kind", String(NAME_LENGTH), nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Column("exec_id", String(ID_LENGTH), nullable=True),
    Column("data", Text, nullable=False),
    Column("cl_ord_id", String(ID_LENGTH), nullable=True),
    Column("report_seq", BigInteger, nullable=True),
    PrimaryKeyConstraint("event_id"),
    UniqueConstraint("exec_id"),
    Index("ix_order_events_unreported", "session_id", "event_id",
          sqlite_where=text(UNREPORTED), postgresql_where=text(UNREPORTED)),
    Index(None, "order_id", "event_id"),
    Index(None, "cl_ord_id", "session_id", "event_id",
          sqlite_where=text("cl_ord_id IS NOT NULL"),
          postgresql_where=text("cl_ord_id IS NOT NULL")),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(NAME_LENGTH), nullable=False),
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("cl_ord_id", String(ID_LENGTH), nullable=False),
    Column("venue", String(NAME_LENGTH), nullable=False),
    Column("symbol", String(ID_LENGTH), nullable=False),
    Column("status", String(1), nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("last_event_id", BigInteger, nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("list_id", String(ID_LENGTH), nullable=True),
    PrimaryKeyConstraint("order_id"),
    # the open orders only (migration 0013): read at start, and an order's end is one entry
    # taken out rather than one moved. An order is found by its ClOrdID through the events'
    # index of ClOrdIDs (ix_order_events_cl_ord_id), not by one of its own (0013 dropped it).
    Index(None, "is_open", sqlite_where=text("is_open = 1"), postgresql_where=text("is_open")),
    Index(None, "list_id", "session_id", sqlite_where=text("list_id IS NOT NULL"),
          postgresql_where=text("list_id IS NOT NULL")),
)

fills = Table(
    "fills",
    metadata,
    Column("venue", String(NAME_LENGTH), nullable=False),
    Column("trade_id", String(ID_LENGTH), nullable=False),
    Column("order_id", String(NAME_LENGTH), nullable=False),
    Column("quantity", Text, nullable=False),
    Column("price", Text, nullable=False),
    Column("fee", Text, nullable=True),
    Column("fee_currency", String(NAME_LENGTH), nullable=True),
    Column("liquidity", String(NAME_LENGTH), nullable=True),
    Column("ts_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("venue", "trade_id"),
    Index(None, "order_id"),
    sqlite_with_rowid=False,
)

reports = Table(
    "reports",
    metadata,
    Column("exec_id", String(ID_LENGTH), nullable=False),
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("exec_id"),
    sqlite_with_rowid=False,
)

drop_copies = Table(
    "drop_copies",
    metadata,
    Column("session_id", String(SESSION_ID_LENGTH), nullable=False),
    Column("exec_id", String(ID_LENGTH), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("source", String(SESSION_ID_LENGTH), nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Column("seq", BigInteger, nullable=True),
    PrimaryKeyConstraint("session_id", "exec_id"),
    Index(None, "session_id", "seq", "event_id"),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("name"),
)

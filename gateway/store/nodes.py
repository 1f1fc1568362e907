"""Gateway nodes and session ownership in the store (Invariant 9: one owner per session).

Every gateway process is a *node*: a row of ``gateway_nodes`` with a *fencing token* and a
*lease*. The node renews its lease every few seconds; a node whose lease has run out -- or, on
the same host, whose process is gone -- may be *taken over*: the taker raises the node's token
in the same transaction that moves the node's sessions (``sessions.owner``) to itself. The
writer checks the token on every commit (:func:`fence_sql`), so a node that was only paused and
comes back cannot write anything once another has taken its place.

The check and the takeover exclude each other. On SQLite the database's write lock does it
(``BEGIN IMMEDIATE``). On PostgreSQL every commit holds a *shared* advisory lock of its node
(in memory: no row is written for it), and a takeover takes the same lock *exclusively*: it
waits for a commit in flight, and no commit of the old node starts after it. A process paused
in the middle of a transaction would hold its shared lock for as long as it is paused, so the
taker first ends that node's connections (they carry the node's name as ``application_name``)
and waits at most :data:`TAKEOVER_LOCK_TIMEOUT` for the lock (else it tries again later).

Times are the database's clock (every node reads the same one), in epoch milliseconds.

The queries run in the store's writer thread, each in one transaction
(:meth:`Writer.query <gateway.store.writer.Writer.query>`); :class:`NodeRegistry` is the API.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

from sqlalchemy import Connection, or_, select, text, update
from sqlalchemy.sql import Select

from gateway.store.db import placeholder
from gateway.store.errors import NodeFenced
from gateway.store.schema import gateway_nodes, sessions
from gateway.store.writer import Writer
from gateway.store.writes import Fence

T = TypeVar("T")

__all__ = ["Claim", "Me", "NodeBusy", "NodeFenced", "NodeRecord", "NodeRegistry", "NodeStore"]

TAKEOVER_LOCK_TIMEOUT = "3s"
"""How long a takeover waits for the old node's commit in flight (PostgreSQL)."""
FORGET_AFTER_MS = 24 * 3600 * 1000
"""A node row whose lease ran out this long ago and that owns nothing is deleted."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as stored."""

    node: str
    token: int
    address: str
    host: str
    process: str
    lease_until_ms: int

    def describe(self) -> str:
        where = f" at {self.address}" if self.address else ""
        return f"node {self.node}{where}"


@dataclass(frozen=True, slots=True)
class Me:
    """This process as a node: what the queries need to know of it."""

    node: str
    token: int
    address: str
    host: str
    process: str
    lease_ms: int


class NodeBusy(RuntimeError):  # noqa: N818 - a state: the node name is in use
    """Another live process holds the node name."""

    def __init__(self, holder: NodeRecord) -> None:
        super().__init__(f"{holder.describe()} is running (host {holder.host}, process "
                         f"{holder.process}); give this one another [gateway] node name")
        self.holder = holder


@dataclass(slots=True)
class Claim:
    """What :func:`claim` found: the sessions now ours (``taken`` of them from nodes that
    were gone), and the live owner of each of the others."""

    ours: set[str] = field(default_factory=set)
    taken: dict[str, str] = field(default_factory=dict)
    """Session id -> the node it was taken from (its process was gone or its lease out)."""
    others: dict[str, NodeRecord] = field(default_factory=dict)


# --- who this process is ------------------------------------------------------------------------


@cache
def this_host() -> str:
    """This host as processes on it can tell: its name, this boot, and this process's PID
    namespace (a process of another container is not one this one can look for)."""
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()[:8]  # noqa: SIM115
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        boot, pidns = "?", 0
    return f"{os.uname().nodename}/{boot}/{pidns}"[:255]


def process_id(pid: int | None = None) -> str:
    """A process as ``pid:start`` (its start time since boot, in clock ticks): a pid used again
    by a later process is not taken for the one that had it."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> int:
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(host: str, process: str) -> bool | None:
    """Whether ``process`` of ``host`` runs: known only on this host (None elsewhere)."""
    if host != this_host():
        return None
    pid_text, _, start = process.partition(":")
    if not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return str(_start_ticks(pid)) == start


Alive = Callable[[str, str], bool | None]
Query: TypeAlias = Callable[[Connection], T]
"""What the functions below make: a query for the writer (:meth:`Writer.query`)."""


def _gone(rec: NodeRecord, now_ms: int, alive: Alive) -> bool:
    """The node's holder is gone: its lease ran out, or (same host) its process died."""
    return rec.lease_until_ms <= now_ms or alive(rec.host, rec.process) is False


# --- SQL helpers ----------------------------------------------------------------------------------


def db_now_ms(conn: Connection) -> int:
    """The database's clock, epoch milliseconds."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    else:
        sql = "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    return int(conn.execute(text(sql)).scalar_one())


def lock_key(node: str) -> int:
    """The advisory lock of ``node`` (a signed 64-bit number)."""
    return int.from_bytes(hashlib.sha256(node.encode()).digest()[:8], "big", signed=True)


def connection_name(node: str) -> str:
    """The PostgreSQL ``application_name`` of a node's store connection."""
    return f"fixgw node {node}"[:63]


def fence_sql(mark: str, dialect: str) -> str:
    """The check of every commit: parameters ``(lock key, node)`` on PostgreSQL (which also
    takes the node's shared advisory lock for the transaction), ``(node,)`` on SQLite; returns
    the node's token."""
    if dialect == "postgresql":
        return (f"SELECT token FROM gateway_nodes, pg_advisory_xact_lock_shared({mark}) "  # noqa: S608
                f"WHERE node = {mark}")
    return f"SELECT token FROM gateway_nodes WHERE node = {mark}"  # noqa: S608


def _locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _record(row: Sequence[Any]) -> NodeRecord:
    return NodeRecord(str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]),
                      int(row[5]))


_NODE_COLUMNS = (gateway_nodes.c.node, gateway_nodes.c.token, gateway_nodes.c.address,
                 gateway_nodes.c.host, gateway_nodes.c.process, gateway_nodes.c.lease_until_ms)


def _node(conn: Connection, node: str) -> NodeRecord | None:
    row = conn.execute(
        _locked(conn, select(*_NODE_COLUMNS).where(gateway_nodes.c.node == node))
    ).first()
    return None if row is None else _record(row)


def _cut_off(conn: Connection, node: str) -> bool:
    """Make sure no transaction of ``node`` is in flight, ending its PostgreSQL connections
    (a process of it paused in a transaction holds its shared lock); False when its commit in
    flight did not end in time (try again later)."""
    if conn.dialect.name != "postgresql":
        return True
    conn.execute(
        text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE application_name = :app AND pid <> pg_backend_pid()"),
        {"app": connection_name(node)},
    )
    conn.execute(text(f"SET LOCAL lock_timeout = '{TAKEOVER_LOCK_TIMEOUT}'"))
    try:
        with conn.begin_nested():
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(node)})
    except Exception:  # lock_timeout: its commit in flight holds on
        return False
    return True


def _check_token(conn: Connection, me: Me) -> None:
    current = _node(conn, me.node)
    if current is None or current.token != me.token:
        raise NodeFenced(me.node)


def _take_node(conn: Connection, me: Me, gone: NodeRecord) -> set[str] | None:
    """Fence ``gone`` (raise its token, end its lease) and move its sessions to ``me``; None
    when it could not be (it renewed meanwhile, or its commit in flight held on)."""
    if not _cut_off(conn, gone.node):
        return None
    done = conn.execute(
        update(gateway_nodes)
        .where(gateway_nodes.c.node == gone.node, gateway_nodes.c.token == gone.token,
               gateway_nodes.c.lease_until_ms == gone.lease_until_ms)
        .values(token=gone.token + 1, lease_until_ms=0)
    )
    if done.rowcount != 1:
        return None
    owned = {str(sid) for (sid,) in conn.execute(
        _locked(conn, select(sessions.c.session_id).where(sessions.c.owner == gone.node))
    )}
    if owned:
        conn.execute(update(sessions).where(sessions.c.owner == gone.node)
                     .values(owner=me.node))
    return owned


# --- the queries ---------------------------------------------------------------------------------

def register(me: Me, alive: Alive = process_alive) -> Query[int]:
    """A query: take the node name ``me.node`` (its token raised), unless a live process holds
    it (:class:`NodeBusy`). Returns the new token."""
    def query(conn: Connection) -> int:
        now = db_now_ms(conn)
        held = _node(conn, me.node)
        values = {"address": me.address, "host": me.host, "process": me.process,
                  "started_ms": now, "lease_until_ms": now + me.lease_ms}
        if held is None:
            conn.execute(gateway_nodes.insert().values(node=me.node, token=1, **values))
            return 1
        if held.process == me.process and held.host == me.host:
            pass  # this very process registered before (a gateway stopped and started again)
        elif not _gone(held, now, alive):
            raise NodeBusy(held)
        elif not _cut_off(conn, me.node):
            raise NodeBusy(held)
        conn.execute(update(gateway_nodes).where(gateway_nodes.c.node == me.node)
                     .values(token=held.token + 1, **values))
        return held.token + 1
    return query


def renew(me: Me) -> Query[None]:
    """A query: extend ``me``'s lease (the commit's token check raises NodeFenced once another
    process has taken the node's place)."""
    def query(conn: Connection) -> None:
        now = db_now_ms(conn)
        conn.execute(update(gateway_nodes)
                     .where(gateway_nodes.c.node == me.node, gateway_nodes.c.token == me.token)
                     .values(lease_until_ms=now + me.lease_ms))
    return query


def claim(
    me: Me, session_ids: Iterable[str], alive: Alive = process_alive,
) -> Query[Claim]:
    """A query: make ``me`` the owner of each of ``session_ids`` that has none, is ``me``'s, or
    belongs to a node that is gone (that node is taken over whole: its other sessions move to
    ``me`` too). Sessions never seen get their row."""
    wanted = sorted(set(session_ids))

    def query(conn: Connection) -> Claim:
        _check_token(conn, me)
        now = db_now_ms(conn)
        out = Claim()
        rows: dict[str, str | None] = {
            str(r[0]): r[1] for r in conn.execute(
                _locked(conn, select(sessions.c.session_id, sessions.c.owner)
                        .where(sessions.c.session_id.in_(wanted))))
        }
        holders: dict[str, NodeRecord | None] = {}
        for sid in wanted:
            if sid in out.ours:
                continue  # taken with its node a moment ago
            if sid not in rows:
                conn.execute(sessions.insert().values(
                    session_id=sid, next_sender=1, next_target=1,
                    creation_time=datetime.fromtimestamp(now / 1000, UTC), owner=me.node))
                out.ours.add(sid)
                continue
            owner = rows[sid]
            if owner is None or owner == me.node:
                if owner is None:
                    conn.execute(update(sessions).where(sessions.c.session_id == sid)
                                 .values(owner=me.node))
                out.ours.add(sid)
                continue
            if owner not in holders:
                holders[owner] = _node(conn, owner)
            holder = holders[owner]
            if holder is None:  # its node was forgotten: nobody serves it
                conn.execute(update(sessions).where(sessions.c.session_id == sid)
                             .values(owner=me.node))
                out.ours.add(sid)
                out.taken[sid] = owner
                continue
            if _gone(holder, now, alive):
                taken = _take_node(conn, me, holder)
                if taken is not None:
                    holders[owner] = None
                    for t in taken:
                        out.taken[t] = owner
                    out.ours |= taken
                    continue
            out.others[sid] = holder
        return out
    return query


def take_over_gone(
    me: Me, alive: Alive = process_alive
) -> Query[dict[str, str]]:
    """A query: take over every other node that is gone and owns sessions; returns session
    id -> the node it was taken from. Rows of nodes long gone that own nothing are deleted."""
    def query(conn: Connection) -> dict[str, str]:
        _check_token(conn, me)
        now = db_now_ms(conn)
        taken: dict[str, str] = {}
        candidates = [_record(r) for r in conn.execute(
            select(*_NODE_COLUMNS).where(
                gateway_nodes.c.node != me.node,
                or_(gateway_nodes.c.lease_until_ms <= now, gateway_nodes.c.host == me.host),
            )
        )]
        for rec in candidates:
            if not _gone(rec, now, alive):
                continue
            owns = conn.execute(
                select(sessions.c.session_id).where(sessions.c.owner == rec.node).limit(1)
            ).first() is not None
            if not owns:
                if rec.lease_until_ms <= now - FORGET_AFTER_MS:
                    conn.execute(gateway_nodes.delete().where(
                        gateway_nodes.c.node == rec.node, gateway_nodes.c.token == rec.token))
                continue
            for sid in _take_node(conn, me, rec) or ():
                taken[sid] = rec.node
        return taken
    return query


def release(
    me: Me, session_ids: Iterable[str]
) -> Query[set[str]]:
    """A query: give up ``session_ids`` (those ``me`` owns); another node may claim them."""
    wanted = sorted(set(session_ids))

    def query(conn: Connection) -> set[str]:
        _check_token(conn, me)
        mine = {str(sid) for (sid,) in conn.execute(
            select(sessions.c.session_id).where(sessions.c.session_id.in_(wanted),
                                                sessions.c.owner == me.node))}
        if mine:
            conn.execute(update(sessions).where(sessions.c.session_id.in_(sorted(mine)))
                         .values(owner=None))
        return mine
    return query


def owner_of(session_id: str) -> Query[NodeRecord | None]:
    """A query: the node that owns ``session_id`` (None: no node does)."""
    def query(conn: Connection) -> NodeRecord | None:
        owner = conn.execute(select(sessions.c.owner)
                             .where(sessions.c.session_id == session_id)).scalar_one_or_none()
        if owner is None:
            return None
        row = conn.execute(select(*_NODE_COLUMNS)
                           .where(gateway_nodes.c.node == owner)).first()
        return None if row is None else _record(row)
    return query


def live_nodes() -> Query[list[NodeRecord]]:
    """A query: every node whose lease runs."""
    def query(conn: Connection) -> list[NodeRecord]:
        now = db_now_ms(conn)
        return [_record(r) for r in conn.execute(
            select(*_NODE_COLUMNS).where(gateway_nodes.c.lease_until_ms > now)
            .order_by(gateway_nodes.c.node))]
    return query


def set_address(me: Me) -> Query[None]:
    """A query: the address other nodes name for ``me``."""
    def query(conn: Connection) -> None:
        _check_token(conn, me)
        conn.execute(update(gateway_nodes).where(gateway_nodes.c.node == me.node)
                     .values(address=me.address))
    return query


def leave(me: Me) -> Query[None]:
    """A query: end ``me``'s lease now (a clean stop): its sessions go to whichever node claims
    them next, without waiting for the lease to run out."""
    def query(conn: Connection) -> None:
        conn.execute(update(gateway_nodes).where(gateway_nodes.c.node == me.node,
                                                 gateway_nodes.c.token == me.token)
                     .values(lease_until_ms=0))
    return query


def hand_over(
    me: Me, session_id: str, to: str | None
) -> Query[None]:
    """A query: give ``session_id`` (``me``'s) to node ``to`` (it must be live), or to no node
    (the next to claim it at a Logon gets it). Raises KeyError when ``me`` does not own it,
    LookupError when ``to`` is not a live node."""
    def query(conn: Connection) -> None:
        _check_token(conn, me)
        owner = conn.execute(_locked(conn, select(sessions.c.owner)
                                     .where(sessions.c.session_id == session_id))
                             ).scalar_one_or_none()
        if owner != me.node:
            raise KeyError(session_id)
        if to is not None:
            target = _node(conn, to)
            if target is None or target.lease_until_ms <= db_now_ms(conn):
                raise LookupError(f"node {to} is not running")
        conn.execute(update(sessions).where(sessions.c.session_id == session_id)
                     .values(owner=to))
    return query


def sessions_owned(me: Me) -> Query[set[str]]:
    """A query: the sessions the store says ``me`` owns (one handed over to it among them)."""
    def query(conn: Connection) -> set[str]:
        _check_token(conn, me)
        return {str(sid) for (sid,) in conn.execute(
            select(sessions.c.session_id).where(sessions.c.owner == me.node))}
    return query


@runtime_checkable
class NodeStore(Protocol):
    """The store as :class:`gateway.cluster.Ownership` uses it (:class:`NodeRegistry`'s
    requests, as the session store makes them). Here, not in ``gateway/cluster.py``: that
    module is compiled by mypyc, and ``runtime_checkable`` refuses a compiled protocol."""

    async def register_node(self, node: str, *, address: str, lease_s: float) -> int: ...

    async def set_node_address(self, address: str) -> None: ...

    async def renew_node(self) -> None: ...

    async def claim_sessions(self, session_ids: Sequence[str]) -> Claim: ...

    async def take_over_gone(self) -> dict[str, str]: ...

    async def live_nodes(self) -> list[NodeRecord]: ...

    async def leave_node(self) -> None: ...

    async def hand_over_session(self, session_id: str, to: str | None) -> None: ...

    async def sessions_owned(self) -> set[str]: ...

    @property
    def node(self) -> Me | None: ...


# --- the API ------------------------------------------------------------------------------------


class NodeRegistry:
    """This process as a gateway node, on ``writer``: once registered, every commit of the
    writer checks the node's fencing token (:func:`fence_sql`)."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._me: Me | None = None
        dialect = writer.engine.dialect.name
        self._fence_sql = fence_sql(placeholder(dialect), dialect)
        self._pg = dialect == "postgresql"

    async def register_node(
        self, node: str, *, address: str, lease_s: float, host: str | None = None,
        process: str | None = None,
    ) -> int:
        """Become gateway node ``node`` (raises :class:`NodeBusy` when a live process holds
        it); from now on every commit checks the node's fencing token. Returns the token.
        ``host`` and ``process`` say who this is (tests pose as others)."""
        me = Me(node, 0, address, host or this_host(), process or process_id(),
                int(lease_s * 1000))
        token = await self.writer.query(register(me))
        self._me = Me(me.node, token, me.address, me.host, me.process, me.lease_ms)
        self.writer.label(connection_name(node))
        # Invariant 9: nothing commits once another process has taken this node's place
        self.writer.fence = Fence(node, token, self._fence_sql,
                                  (lock_key(node), node) if self._pg else (node,))
        return token

    @property
    def node(self) -> Me | None:
        return self._me

    @property
    def fenced(self) -> str | None:
        """Why this store may write nothing more (another process took this node's place)."""
        return self.writer.fenced

    def _now_me(self) -> Me:
        me = self._me
        if me is None:
            raise RuntimeError("no node registered (register_node first)")
        return me

    async def renew_node(self) -> None:
        """Extend this node's lease (raises NodeFenced once another process took its place)."""
        await self.writer.query(renew(self._now_me()))

    async def claim_sessions(self, session_ids: Sequence[str]) -> Claim:
        """Own ``session_ids`` where no live node does (:func:`claim`)."""
        return await self.writer.query(claim(self._now_me(), session_ids))

    async def take_over_gone(self) -> dict[str, str]:
        """Take over the sessions of nodes that are gone: session id -> the node it was
        taken from."""
        return await self.writer.query(take_over_gone(self._now_me()))

    async def release_sessions(self, session_ids: Sequence[str]) -> set[str]:
        return await self.writer.query(release(self._now_me(), session_ids))

    async def session_owner(self, session_id: str) -> NodeRecord | None:
        return await self.writer.query(owner_of(session_id))

    async def hand_over_session(self, session_id: str, to: str | None) -> None:
        """Give a session this node owns to node ``to`` (or to no node)."""
        await self.writer.query(hand_over(self._now_me(), session_id, to))

    async def sessions_owned(self) -> set[str]:
        """The sessions the store says this node owns."""
        return await self.writer.query(sessions_owned(self._now_me()))

    async def leave_node(self) -> None:
        """End this node's lease (a clean stop); commits are no longer fenced by it."""
        me = self._me
        if me is None or self.writer.fenced is not None:
            return
        await self.writer.query(leave(self._now_me()))
        self._me = None
        self.writer.fence = None

    async def live_nodes(self) -> list[NodeRecord]:
        """Every node whose lease runs (this one included)."""
        return await self.writer.query(live_nodes())

    async def set_node_address(self, address: str) -> None:
        """The address other nodes name for this one (known once it listens)."""
        me = self._now_me()
        self._me = Me(me.node, me.token, address, me.host, me.process, me.lease_ms)
        await self.writer.query(set_address(self._me))

"""Gateway nodes and session ownership in the store (Invariant 9: one owner per session).

Every gateway process is a *node*: a row of ``gateway_nodes`` with a *fencing token* and a
*lease*. The node renews its lease every few seconds; a node whose lease has run out -- or, on
the same host, whose process is gone -- may be *taken over*: the taker raises the node's token
in the same transaction that moves the node's sessions (``sessions.owner``) to itself. The
writer checks the token on every commit (:meth:`SessionStore.fence
<gateway.store.sessions.SessionStore.fence>`), so a node that was only paused and comes back
cannot write anything once another has taken its place.

These functions run in the store's writer thread, each in one transaction (the queries of
:meth:`SessionStore._order_read <gateway.store.sessions.SessionStore>`); row locks (PostgreSQL's
``FOR UPDATE``) make two nodes that race for the same node or session serialise. Times are
epoch milliseconds from the caller's clock: the nodes' clocks must agree to well within a lease
(NTP).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, text, update
from sqlalchemy.sql import Select

from gateway.store.orders import OrderStatements
from gateway.store.schema import gateway_nodes, sessions


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as stored."""

    node: str
    token: int
    address: str
    host: str
    pid: int
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
    pid: int
    now_ms: int
    lease_ms: int


class NodeBusy(RuntimeError):  # noqa: N818 - a state: the node name is in use
    """Another live process holds the node name."""

    def __init__(self, holder: NodeRecord) -> None:
        super().__init__(f"{holder.describe()} is running (host {holder.host}, process "
                         f"{holder.pid}); give this one another [gateway] node name")
        self.holder = holder


@dataclass(slots=True)
class Claim:
    """What :func:`claim` found: the sessions now ours (``taken`` of them from nodes that
    were gone), and the live owner of each of the others."""

    ours: set[str] = field(default_factory=set)
    taken: dict[str, str] = field(default_factory=dict)
    """Session id -> the node it was taken from (its process was gone or its lease out)."""
    others: dict[str, NodeRecord] = field(default_factory=dict)


def process_alive(host: str, pid: int) -> bool | None:
    """Whether process ``pid`` of ``host`` runs: known only on this host (None elsewhere)."""
    if host != os.uname().nodename or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gone(rec: NodeRecord, now_ms: int, alive: Callable[[str, int], bool | None]) -> bool:
    """The node's holder is gone: its lease ran out, or (same host) its process died."""
    return rec.lease_until_ms <= now_ms or alive(rec.host, rec.pid) is False


def _locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def _record(row: Sequence[Any]) -> NodeRecord:
    return NodeRecord(str(row[0]), int(row[1]), str(row[2]), str(row[3]), int(row[4]),
                      int(row[5]))


_NODE_COLUMNS = (gateway_nodes.c.node, gateway_nodes.c.token, gateway_nodes.c.address,
                 gateway_nodes.c.host, gateway_nodes.c.pid, gateway_nodes.c.lease_until_ms)


def _node(conn: Connection, node: str) -> NodeRecord | None:
    row = conn.execute(
        _locked(conn, select(*_NODE_COLUMNS).where(gateway_nodes.c.node == node))
    ).first()
    return None if row is None else _record(row)


def register(
    me: Me, alive: Callable[[str, int], bool | None] = process_alive
) -> Callable[[Connection, OrderStatements], int]:
    """A query: take the node name ``me.node`` (its token raised), unless a live process holds
    it (:class:`NodeBusy`). Returns the new token."""
    def query(conn: Connection, _st: OrderStatements) -> int:
        held = _node(conn, me.node)
        values = {"address": me.address, "host": me.host, "pid": me.pid,
                  "started_ms": me.now_ms, "lease_until_ms": me.now_ms + me.lease_ms}
        if held is None:
            conn.execute(gateway_nodes.insert().values(node=me.node, token=1, **values))
            name_connection(conn, me.node)
            return 1
        if not _gone(held, me.now_ms, alive):
            raise NodeBusy(held)
        _cut_off(conn, me.node)
        conn.execute(update(gateway_nodes).where(gateway_nodes.c.node == me.node)
                     .values(token=held.token + 1, **values))
        name_connection(conn, me.node)
        return held.token + 1
    return query


def renew_sql(mark: str) -> str:
    """The writer's lease renewal: ``(lease_until_ms, node, token)``; one row updated while
    the token is ours, none once another process has taken the node's place."""
    return (f"UPDATE gateway_nodes SET lease_until_ms = {mark} "  # noqa: S608 - mark is ? or %s
            f"WHERE node = {mark} AND token = {mark}")


def fence_sql(mark: str, dialect: str) -> str:
    """The token check of every commit: ``(node,)`` -> the node's token. On PostgreSQL the
    row is locked in share mode, so a takeover (which updates it) waits for this commit."""
    lock = " FOR SHARE" if dialect == "postgresql" else ""
    return f"SELECT token FROM gateway_nodes WHERE node = {mark}{lock}"  # noqa: S608


def connection_name(node: str) -> str:
    """The PostgreSQL ``application_name`` of a node's store connection."""
    return f"fixgw node {node}"[:63]


def name_connection(conn: Connection, node: str) -> None:
    """Label the writer's PostgreSQL connection with its node, so that a node taking this one
    over can end it (:func:`_cut_off`)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('application_name', :app, false)"),
                     {"app": connection_name(node)})


def _cut_off(conn: Connection, node: str) -> None:
    """End the PostgreSQL connections of ``node`` (taken over): a process of it that was paused
    in the middle of a transaction holds row locks that would stall the takeover; its
    transaction is rolled back, and it finds its token changed when it reconnects."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = :app AND pid <> pg_backend_pid()"),
            {"app": connection_name(node)},
        )


def _take_node(conn: Connection, me: Me, gone: NodeRecord) -> set[str]:
    """Fence ``gone`` (raise its token, end its lease) and move its sessions to ``me``."""
    _cut_off(conn, gone.node)
    done = conn.execute(
        update(gateway_nodes)
        .where(gateway_nodes.c.node == gone.node, gateway_nodes.c.token == gone.token)
        .values(token=gone.token + 1, lease_until_ms=0)
    )
    if done.rowcount != 1:
        return set()
    owned = {str(sid) for (sid,) in conn.execute(
        _locked(conn, select(sessions.c.session_id).where(sessions.c.owner == gone.node))
    )}
    if owned:
        conn.execute(update(sessions).where(sessions.c.owner == gone.node)
                     .values(owner=me.node))
    return owned


def _check_token(conn: Connection, me: Me) -> None:
    current = _node(conn, me.node)
    if current is None or current.token != me.token:
        raise NodeFenced(me.node)


class NodeFenced(RuntimeError):  # noqa: N818 - a state
    """Another process has taken this node's place: it must not write anything more."""

    def __init__(self, node: str) -> None:
        super().__init__(f"node {node} was taken over by another process (its fencing token "
                         "changed): this process must stop")


def claim(
    me: Me, session_ids: Iterable[str], alive: Callable[[str, int], bool | None] = process_alive,
) -> Callable[[Connection, OrderStatements], Claim]:
    """A query: make ``me`` the owner of each of ``session_ids`` that has none, is ``me``'s, or
    belongs to a node that is gone (that node is taken over whole: its other sessions move to
    ``me`` too). Sessions never seen get their row."""
    wanted = sorted(set(session_ids))

    def query(conn: Connection, _st: OrderStatements) -> Claim:
        _check_token(conn, me)
        out = Claim()
        rows: dict[str, str | None] = {
            str(r[0]): r[1] for r in conn.execute(
                _locked(conn, select(sessions.c.session_id, sessions.c.owner)
                        .where(sessions.c.session_id.in_(wanted))))
        }
        nodes: dict[str, NodeRecord | None] = {}
        for sid in wanted:
            owner = rows.get(sid, None)
            if sid not in rows:
                conn.execute(sessions.insert().values(
                    session_id=sid, next_sender=1, next_target=1,
                    creation_time=_utc_from_ms(me.now_ms), owner=me.node))
                out.ours.add(sid)
                continue
            if owner is None or owner == me.node:
                if owner is None:
                    conn.execute(update(sessions).where(sessions.c.session_id == sid)
                                 .values(owner=me.node))
                out.ours.add(sid)
                continue
            if owner not in nodes:
                nodes[owner] = _node(conn, owner)
            holder = nodes[owner]
            if holder is None or _gone(holder, me.now_ms, alive):
                taken = _take_node(conn, me, holder) if holder is not None else set()
                if holder is None:
                    conn.execute(update(sessions).where(sessions.c.session_id == sid)
                                 .values(owner=me.node))
                    taken = {sid}
                for t in taken:
                    out.taken[t] = owner
                out.ours |= taken | {sid}
                nodes[owner] = None
                continue
            out.others[sid] = holder
        return out
    return query


def take_over_gone(
    me: Me, alive: Callable[[str, int], bool | None] = process_alive
) -> Callable[[Connection, OrderStatements], dict[str, str]]:
    """A query: take over every other node that is gone and owns sessions; returns session
    id -> the node it was taken from. Gone nodes that own nothing are deleted."""
    def query(conn: Connection, _st: OrderStatements) -> dict[str, str]:
        _check_token(conn, me)
        taken: dict[str, str] = {}
        candidates = [_record(r) for r in conn.execute(
            select(*_NODE_COLUMNS).where(
                gateway_nodes.c.node != me.node,
                or_(gateway_nodes.c.lease_until_ms <= me.now_ms,
                    and_(gateway_nodes.c.host == me.host, gateway_nodes.c.pid != me.pid)),
            )
        )]
        for rec in candidates:
            if not _gone(rec, me.now_ms, alive):
                continue
            has_sessions = conn.execute(
                select(sessions.c.session_id).where(sessions.c.owner == rec.node).limit(1)
            ).first() is not None
            if not has_sessions:
                if rec.lease_until_ms <= me.now_ms:
                    conn.execute(gateway_nodes.delete().where(
                        gateway_nodes.c.node == rec.node, gateway_nodes.c.token == rec.token))
                continue
            for sid in _take_node(conn, me, rec):
                taken[sid] = rec.node
        return taken
    return query


def release(
    me: Me, session_ids: Iterable[str]
) -> Callable[[Connection, OrderStatements], set[str]]:
    """A query: give up ``session_ids`` (those ``me`` owns); another node may claim them."""
    wanted = sorted(set(session_ids))

    def query(conn: Connection, _st: OrderStatements) -> set[str]:
        _check_token(conn, me)
        mine = {str(sid) for (sid,) in conn.execute(
            select(sessions.c.session_id).where(sessions.c.session_id.in_(wanted),
                                                sessions.c.owner == me.node))}
        if mine:
            conn.execute(update(sessions).where(sessions.c.session_id.in_(sorted(mine)))
                         .values(owner=None))
        return mine
    return query


def owner_of(session_id: str) -> Callable[[Connection, OrderStatements], NodeRecord | None]:
    """A query: the node that owns ``session_id`` (None: no node does)."""
    def query(conn: Connection, _st: OrderStatements) -> NodeRecord | None:
        owner = conn.execute(select(sessions.c.owner)
                             .where(sessions.c.session_id == session_id)).scalar_one_or_none()
        if owner is None:
            return None
        row = conn.execute(select(*_NODE_COLUMNS)
                           .where(gateway_nodes.c.node == owner)).first()
        return None if row is None else _record(row)
    return query


def _utc_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def live_nodes(now_ms: int) -> Callable[[Connection, OrderStatements], list[NodeRecord]]:
    """A query: every node whose lease runs."""
    def query(conn: Connection, _st: OrderStatements) -> list[NodeRecord]:
        return [_record(r) for r in conn.execute(
            select(*_NODE_COLUMNS).where(gateway_nodes.c.lease_until_ms > now_ms)
            .order_by(gateway_nodes.c.node))]
    return query


def set_address(me: Me) -> Callable[[Connection, OrderStatements], None]:
    """A query: the address other nodes name for ``me``."""
    def query(conn: Connection, _st: OrderStatements) -> None:
        _check_token(conn, me)
        conn.execute(update(gateway_nodes).where(gateway_nodes.c.node == me.node)
                     .values(address=me.address))
    return query


def leave(me: Me) -> Callable[[Connection, OrderStatements], None]:
    """A query: end ``me``'s lease now (a clean stop): its sessions go to whichever node claims
    them next, without waiting for the lease to run out."""
    def query(conn: Connection, _st: OrderStatements) -> None:
        conn.execute(update(gateway_nodes).where(gateway_nodes.c.node == me.node,
                                                 gateway_nodes.c.token == me.token)
                     .values(lease_until_ms=0))
    return query

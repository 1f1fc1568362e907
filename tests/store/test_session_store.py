"""SessionStore against SQLite and PostgreSQL (the ``store_url`` fixture runs each test on both)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway.store.db import make_engine
from gateway.store.errors import StoreClosedError
from gateway.store.records import SessionRecord
from gateway.store.schema import kill_switches, message_log, sessions
from gateway.store.store import SessionStore

from .unchecked import unchecked_save

T = TypeVar("T")
SID = "FIX.4.4:ISLD->TW44"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def with_store(url: str, body: Callable[[SessionStore], Awaitable[T]], **kwargs: Any) -> T:
    """Run ``body(store)`` on a started store in a fresh event loop, closing it afterwards."""

    async def main() -> T:
        store = SessionStore(url, **kwargs)
        await store.start()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def fix(seq: int, body: bytes = b"35=D") -> bytes:
    return b"8=FIX.4.4\x019=99\x01%s\x0134=%d\x0110=000\x01" % (body, seq)


def read_log(url: str) -> list[tuple[str, str, datetime, bytes]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    message_log.c.session_id,
                    message_log.c.direction,
                    message_log.c.logged_at,
                    message_log.c.data,
                ).order_by(message_log.c.id)
            ).all()
        return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]
    finally:
        engine.dispose()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- load / save / get_sent / reset -----------------------------------------------------------


def test_load_creates_the_session_once(store_url: str) -> None:
    clock = Clock(T0)

    async def first(store: SessionStore) -> tuple[SessionRecord, SessionRecord]:
        created = await store.load(SID)
        clock.now = T0 + timedelta(hours=1)
        return created, await store.load(SID)

    created, again = with_store(store_url, first, clock=clock)
    assert created == SessionRecord(1, 1, T0)
    assert again == created  # not re-created
    assert created.creation_time.tzinfo is not None
    assert created.creation_time.utcoffset() == timedelta(0)

    # and it is on disk: a new store (new process state) sees the same record
    assert with_store(store_url, lambda s: s.load(SID)) == SessionRecord(1, 1, T0)


def test_save_persists_messages_and_sequence_numbers(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.load(SID)
        await store.save(SID, sent=[(1, fix(1)), (2, fix(2))], next_sender=3)
        await store.save(SID, next_target=7)  # only the target: the sender stays 3
        await store.save(SID, sent=[(3, fix(3))], next_sender=4, next_target=8)

    with_store(store_url, body)

    async def check(store: SessionStore) -> None:
        record = await store.load(SID)
        assert (record.next_sender, record.next_target) == (4, 8)
        assert await store.get_sent(SID, 1, 0) == [(1, fix(1)), (2, fix(2)), (3, fix(3))]

    with_store(store_url, check)


def test_save_of_a_never_loaded_session_creates_it(store_url: str) -> None:
    async def body(store: SessionStore) -> SessionRecord:
        await store.save("FIX.4.4:A->B", sent=[(1, fix(1))], next_sender=2)
        return await store.load("FIX.4.4:A->B")

    record = with_store(store_url, body)
    assert (record.next_sender, record.next_target) == (2, 1)


def test_get_sent_range_end_zero_limit_and_isolation(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.save(SID, sent=[(seq, fix(seq)) for seq in range(1, 21)], next_sender=21)
        await store.save("FIX.4.4:OTHER->TW44", sent=[(5, b"other")], next_sender=6)

        assert [s for s, _ in await store.get_sent(SID, 5, 8)] == [5, 6, 7, 8]
        assert [s for s, _ in await store.get_sent(SID, 18, 0)] == [18, 19, 20]  # 0 = infinity
        assert [s for s, _ in await store.get_sent(SID, 0, 3)] == [1, 2, 3]
        assert [s for s, _ in await store.get_sent(SID, 1, 0, limit=4)] == [1, 2, 3, 4]
        assert await store.get_sent(SID, 9, 8) == []
        assert await store.get_sent(SID, 21, 0) == []
        assert await store.get_sent("FIX.4.4:NOBODY->TW44", 1, 0) == []
        assert await store.get_sent("FIX.4.4:OTHER->TW44", 1, 0) == [(5, b"other")]
        with pytest.raises(ValueError):
            await store.get_sent(SID, 1, 0, limit=0)

    with_store(store_url, body)


def test_resaving_a_seq_overwrites_it(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.save(SID, sent=[(1, b"first")], next_sender=2)
        await store.save(SID, sent=[(1, b"second")])
        assert await store.get_sent(SID, 1, 1) == [(1, b"second")]
        # twice in one group commit (and twice in one call): the last one queued wins
        await asyncio.gather(
            store.save(SID, sent=[(2, b"a"), (2, b"b")]), store.save(SID, sent=[(2, b"c")])
        )
        assert await store.get_sent(SID, 2, 2) == [(2, b"c")]

    with_store(store_url, body)


def test_reset_clears_sent_messages_and_sequence_numbers(store_url: str) -> None:
    clock = Clock(T0)

    async def body(store: SessionStore) -> None:
        await store.load(SID)
        await store.save(SID, sent=[(1, fix(1)), (2, fix(2))], next_sender=3, next_target=9)
        await store.save("FIX.4.4:OTHER->TW44", sent=[(1, b"kept")], next_sender=2)
        store.log(SID, "out", fix(1), T0)
        clock.now = T0 + timedelta(days=1)
        await store.reset(SID)
        assert await store.load(SID) == SessionRecord(1, 1, T0 + timedelta(days=1))
        assert await store.get_sent(SID, 1, 0) == []
        assert await store.get_sent("FIX.4.4:OTHER->TW44", 1, 0) == [(1, b"kept")]
        await store.reset("FIX.4.4:NEW->TW44")  # resetting an unknown session creates it
        assert (await store.load("FIX.4.4:NEW->TW44")).next_sender == 1

    with_store(store_url, body, clock=clock)
    assert len(read_log(store_url)) == 1  # the audit log survives a reset


def test_reads_see_writes_queued_before_them_in_the_same_batch(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        # submitted in one loop iteration: they land in the same group commit, in order
        save = store.save(SID, sent=[(1, b"x")], next_sender=2, next_target=3)
        results = await asyncio.gather(save, store.get_sent(SID, 1, 0), store.load(SID))
        assert results[1] == [(1, b"x")]
        assert (results[2].next_sender, results[2].next_target) == (2, 3)
        await asyncio.gather(store.reset(SID), store.save(SID, sent=[(5, b"y")], next_sender=6))
        assert await store.get_sent(SID, 1, 0) == [(5, b"y")]
        assert (await store.load(SID)).next_sender == 6

    with_store(store_url, body)


def test_many_sessions_concurrently(store_url: str) -> None:
    """50 sessions x 20 saves, interleaved: every message and final seq num is right."""

    async def session(store: SessionStore, n: int) -> None:
        sid = f"FIX.4.4:GW->C{n}"
        await store.load(sid)
        for seq in range(1, 21):
            await store.save(sid, sent=[(seq, fix(seq, b"35=%d" % n))], next_sender=seq + 1)
            store.log(sid, "out", fix(seq), T0)

    async def body(store: SessionStore) -> None:
        await asyncio.gather(*(session(store, n) for n in range(50)))
        for n in range(50):
            sid = f"FIX.4.4:GW->C{n}"
            assert (await store.load(sid)).next_sender == 21
            sent = await store.get_sent(sid, 1, 0)
            assert sent == [(seq, fix(seq, b"35=%d" % n)) for seq in range(1, 21)]

    with_store(store_url, body)
    assert len(read_log(store_url)) == 50 * 20


# --- group commit ------------------------------------------------------------------------------


def test_concurrent_saves_share_commits(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.load(SID)
        before = store.stats
        await asyncio.gather(
            *(store.save(f"FIX.4.4:GW->C{n}", sent=[(1, b"m")], next_sender=2) for n in range(50))
        )
        after = store.stats
        assert after.requests - before.requests == 50
        assert after.batches - before.batches <= 5  # not 50: they were group-committed
        assert after.largest_batch >= 10

    with_store(store_url, body)


def test_a_failing_request_fails_only_its_caller(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        store.log(SID, "in", b"logged", T0)
        results = await asyncio.gather(
            store.save(SID, sent=[(1, b"ok")], next_sender=2),
            unchecked_save(store, "FIX.4.4:BAD->TW44", [(1, b"bad")], 0),  # fails
            store.save("FIX.4.4:GOOD->TW44", sent=[(1, b"good")], next_sender=2),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Exception)
        assert await store.get_sent(SID, 1, 0) == [(1, b"ok")]
        assert await store.get_sent("FIX.4.4:GOOD->TW44", 1, 0) == [(1, b"good")]
        assert await store.get_sent("FIX.4.4:BAD->TW44", 1, 0) == []
        await store.save(SID, next_sender=3)  # the store still works
        assert (await store.load(SID)).next_sender == 3

    with_store(store_url, body)
    assert [row[3] for row in read_log(store_url)] == [b"logged"]


# --- cancel-on-disconnect override (Logon tag 8013) ---------------------------------------------


def test_cod_override_is_stored_and_survives_a_restart(store_url: str) -> None:
    other, cleared = "FIX.4.4:ISLD->NEW", "FIX.4.4:ISLD->CLEARED"
    clock = Clock(T0)

    async def body(store: SessionStore) -> dict[str, str]:
        await store.load(SID)
        await store.save(SID, sent=[(1, fix(1))], next_sender=2, next_target=3)
        await store.save_cod_override(SID, "both")
        await store.save_cod_override(other, "off")  # a session never loaded is created
        await store.save(other, next_sender=5)
        await store.save_cod_override(cleared, "both")
        await store.save_cod_override(cleared, None)  # a later Logon without 8013
        # several in one batch: the last of a session wins
        await asyncio.gather(
            store.save_cod_override(SID, "off"), store.save_cod_override(SID, "both")
        )
        with pytest.raises(ValueError):
            store.save_cod_override(SID, "sometimes")
        return await store.load_cod_overrides()

    assert with_store(store_url, body, clock=clock) == {SID: "both", other: "off"}

    # a new store on the same database (a restarted gateway) reads them back, and the
    # sequence numbers are untouched by them
    async def check(store: SessionStore) -> tuple[dict[str, str], SessionRecord, SessionRecord]:
        return await store.load_cod_overrides(), await store.load(SID), await store.load(other)

    overrides, record, created = with_store(store_url, check)
    assert overrides == {SID: "both", other: "off"}
    assert record == SessionRecord(2, 3, T0)
    assert created == SessionRecord(5, 1, T0)


def test_cod_override_commits_no_later_than_a_save_queued_after_it(store_url: str) -> None:
    """The Logon reply is saved (then written) after the override was queued: once that save
    returns, the override is committed (another connection reads it)."""

    async def body(store: SessionStore) -> None:
        await store.load(SID)
        for seq, mode in enumerate(("both", "off", None), start=1):
            stored = store.save_cod_override(SID, mode)
            await store.save(SID, sent=[(seq, fix(seq, b"35=A"))], next_sender=seq + 1)
            assert stored.done() and stored.exception() is None
            assert await asyncio.to_thread(read_cod_override, store_url, SID) == mode

    with_store(store_url, body)


def read_cod_override(url: str, session_id: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            mode: str | None = conn.execute(
                select(sessions.c.cod_override).where(sessions.c.session_id == session_id)
            ).scalar_one()
        return mode
    finally:
        engine.dispose()


# --- kill switches (admin commands) ------------------------------------------------------------


def test_kill_switches_survive_a_restart_and_released_ones_are_absent(store_url: str) -> None:
    clock = Clock(T0)

    async def body(store: SessionStore) -> dict[str, str]:
        await store.save_kill_switch("*", True, "venue outage")
        await store.save_kill_switch(SID, True, "runaway algo")
        clock.now = T0 + timedelta(minutes=5)
        await store.save_kill_switch(SID, False)
        return await store.load_kill_switches()

    assert with_store(store_url, body, clock=clock) == {"*": "venue outage"}
    # a new store on the same database (a restarted gateway) reads back exactly the engaged one
    assert with_store(store_url, lambda store: store.load_kill_switches()) == {
        "*": "venue outage"
    }
    # the released switch keeps its row: not engaged, when it changed
    assert read_kill_switches(store_url) == {
        "*": (True, "venue outage", T0),
        SID: (False, "", T0 + timedelta(minutes=5)),
    }


def test_kill_switch_writes_of_one_scope_in_one_batch_the_last_wins(store_url: str) -> None:
    async def body(store: SessionStore) -> dict[str, str]:
        # hold the writer in a read so that the writes below are queued together
        entered, release = threading.Event(), threading.Event()

        def blocking_read(_conn: Any) -> None:
            entered.set()
            release.wait(10)

        before = store.stats
        held = asyncio.ensure_future(store.writer.query(blocking_read))
        assert await asyncio.to_thread(entered.wait, 10)
        writes = [
            store.save_kill_switch(SID, True, "first"),
            store.save_kill_switch("*", True, "all"),
            store.save_kill_switch(SID, False, "released"),
            store.save_kill_switch(SID, True, "last"),
        ]
        release.set()
        await held
        assert await asyncio.gather(*writes) == [None] * 4
        after = store.stats  # two transactions: the read's, then all four writes
        assert (after.batches - before.batches, after.largest_batch) == (2, 4)
        return await store.load_kill_switches()

    assert with_store(store_url, body) == {SID: "last", "*": "all"}
    assert with_store(store_url, lambda store: store.load_kill_switches()) == {
        SID: "last",
        "*": "all",
    }


def test_kill_switch_scope_is_checked_and_the_reason_cut(store_url: str) -> None:
    async def body(store: SessionStore) -> dict[str, str]:
        for bad in ("", "x" * 256):
            with pytest.raises(ValueError):
                store.save_kill_switch(bad, True, "r")
        await store.save_kill_switch("x" * 255, True, "y" * 500)
        return await store.load_kill_switches()

    assert with_store(store_url, body) == {"x" * 255: "y" * 200}


def test_kill_switch_commits_no_later_than_a_save_queued_after_it(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.load(SID)
        for seq, engaged in enumerate((True, False), start=1):
            stored = store.save_kill_switch(SID, engaged, "admin")
            await store.save(SID, sent=[(seq, fix(seq))], next_sender=seq + 1)
            assert stored.done() and stored.exception() is None
            rows = await asyncio.to_thread(read_kill_switches, store_url)
            assert rows[SID][:2] == (engaged, "admin")

    with_store(store_url, body)


def read_kill_switches(url: str) -> dict[str, tuple[bool, str, datetime]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    kill_switches.c.scope,
                    kill_switches.c.engaged,
                    kill_switches.c.reason,
                    kill_switches.c.changed_at,
                )
            ).all()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}
    finally:
        engine.dispose()


# --- message log --------------------------------------------------------------------------------


def test_log_is_committed_in_utc_with_secrets_masked(store_url: str) -> None:
    logon = b"8=FIX.4.4\x019=40\x0135=A\x01554=hunter2\x0198=0\x01108=30\x0110=000\x01"
    paris = timezone(timedelta(hours=2))

    async def body(store: SessionStore) -> None:
        store.log(SID, "in", logon, T0)
        store.log(SID, "out", fix(1), T0.astimezone(paris))
        with pytest.raises(ValueError):
            store.log(SID, "sideways", b"x", T0)
        with pytest.raises(ValueError):
            store.log(SID, "in", b"x", datetime(2024, 1, 1))  # naive

    with_store(store_url, body)  # close() commits the fire-and-forget entries
    rows = read_log(store_url)
    assert [(r[0], r[1]) for r in rows] == [(SID, "in"), (SID, "out")]
    assert rows[0][3] == logon.replace(b"hunter2", b"********")
    assert rows[1][3] == fix(1)
    assert [r[2] for r in rows] == [T0, T0]
    assert all(r[2].utcoffset() == timedelta(0) for r in rows)


# --- lifecycle ----------------------------------------------------------------------------------


def test_lifecycle_errors(store_url: str) -> None:
    async def body() -> None:
        store = SessionStore(store_url)
        with pytest.raises(StoreClosedError):
            await store.load(SID)  # not started
        await store.start()
        with pytest.raises(StoreClosedError):
            await store.start()
        store.log(SID, "in", b"last words", T0)
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(StoreClosedError):
            await store.save(SID, next_sender=2)
        with pytest.raises(StoreClosedError):
            store.log(SID, "in", b"too late", T0)
        async with SessionStore(store_url) as again:
            assert (await again.load(SID)).next_sender == 1

    asyncio.run(body())
    assert [row[3] for row in read_log(store_url)] == [b"last words"]


def test_close_before_start_does_not_connect() -> None:
    async def body() -> None:
        store = SessionStore("postgresql+psycopg://nobody@127.0.0.1:1/none")
        await store.close()

    asyncio.run(body())


def test_start_fails_cleanly_when_the_database_is_unreachable() -> None:
    async def body() -> None:
        store = SessionStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
        with pytest.raises(Exception, match="(?i)connect"):
            await store.start()
        with pytest.raises(StoreClosedError):
            await store.load(SID)
        await store.close()

    asyncio.run(body())


def test_invalid_arguments_are_refused_before_queueing(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        with pytest.raises(ValueError):
            await store.save(SID, sent=[(0, b"x")])
        with pytest.raises(ValueError):
            await store.save(SID, next_sender=0)
        with pytest.raises(ValueError):
            await store.load("")
        with pytest.raises(ValueError):
            await store.load("x" * 256)

    with_store(store_url, body)


# --- invariant 7: the event loop never waits for the database ----------------------------------


def _hold_write_lock(url: str, acquired: threading.Event, release: threading.Event) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(parsed.database), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        acquired.set()
        release.wait(10)
        conn.execute("ROLLBACK")
        conn.close()
    else:
        with psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
        ) as pg:
            pg.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            acquired.set()
            release.wait(10)
            pg.rollback()


def test_event_loop_keeps_running_while_the_database_is_locked(store_url: str) -> None:
    async def body(store: SessionStore) -> None:
        await store.load(SID)
        acquired, release = threading.Event(), threading.Event()
        locker = threading.Thread(target=_hold_write_lock, args=(store_url, acquired, release))
        locker.start()
        assert await asyncio.to_thread(acquired.wait, 10)
        try:
            save = asyncio.ensure_future(store.save(SID, sent=[(1, b"x")], next_sender=2))
            ticks = 0
            started = time.monotonic()
            while time.monotonic() - started < 0.5:  # the save is stuck behind the lock...
                await asyncio.sleep(0.01)
                ticks += 1
            assert not save.done()
            assert ticks >= 20  # ...but the loop was never blocked
        finally:
            release.set()
            await asyncio.to_thread(locker.join)
        await asyncio.wait_for(save, 10)
        assert await store.get_sent(SID, 1, 0) == [(1, b"x")]

    with_store(store_url, body)

"""The SQLite VFS that writes each commit's write-ahead-log frames at once
(``gateway/store/_walvfs.c``): what it writes is what SQLite's own VFS writes, a commit is in
the file (for other connections, for a killed process) when it returns, and the store opens its
SQLite files through it."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gateway.native import ORDER_PATH
from gateway.store.db import wal_vfs
from gateway.store.store import SessionStore

VFS = wal_vfs()
if VFS is None:
    _WHY = ("the store's WAL VFS is not in use (gateway/store/_walvfs.c not built: "
            "scripts/build_native.py; or FIXGW_PURE=1)")
    if os.environ.get("REQUIRE_NATIVE") == "1" and not ORDER_PATH.asked_pure:
        pytest.fail(f"{_WHY} (REQUIRE_NATIVE=1)", pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)

from gateway.store import _walvfs  # type: ignore[attr-defined]  # noqa: E402


def _open(path: Path, vfs: str | None) -> sqlite3.Connection:
    conn = (sqlite3.connect(f"file:{path}?vfs={vfs}", uri=True, isolation_level=None)
            if vfs else sqlite3.connect(path, isolation_level=None))
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _contents(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}  # noqa: S608


def _workload(conn: sqlite3.Connection, other: sqlite3.Connection, seed: int) -> None:
    """Commits of every size (one spilling to the WAL before its commit, with a page cache of
    ten pages), rolled back transactions (one after spilling), and checkpoints of every mode
    run by ``other`` between them (the WAL restarting from its start after a full one)."""
    rng = random.Random(seed)
    conn.execute("PRAGMA cache_size = 10")
    for t in ("a", "b", "c"):
        conn.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v BLOB)")
        conn.execute(f"CREATE INDEX ix_{t}_v ON {t} (v)")
    key = 0
    for step in range(300):
        conn.execute("BEGIN IMMEDIATE")
        rows = rng.choice((1, 2, 5, 40, 400 if step % 50 == 7 else 3))
        for _ in range(rows):
            key += 1
            t = rng.choice("abc")
            conn.execute(f"INSERT INTO {t} (k, v) VALUES (?, ?)",  # noqa: S608
                         (f"k{rng.randrange(10**9)}-{key}", rng.randbytes(rng.randrange(900))))
        if step % 7 == 3:
            conn.execute("UPDATE a SET v = ? WHERE id % 5 = ?", (rng.randbytes(300), step % 5))
        if step % 11 == 5:
            conn.execute("DELETE FROM b WHERE id % 3 = 0")
        conn.execute("ROLLBACK" if step % 13 == 12 else "COMMIT")
        if step % 37 == 36:
            mode = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")[step // 37 % 4]
            other.execute(f"PRAGMA wal_checkpoint({mode})")


def test_what_it_writes_reads_back_as_sqlites_own_vfs_writes_it(tmp_path: Path) -> None:
    before = _walvfs.counts()
    written: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for name, vfs in (("default", None), ("gathered", VFS)):
        path = tmp_path / f"{name}.db"
        conn, other = _open(path, vfs), _open(path, None)
        _workload(conn, other, seed=11)
        conn.close()
        other.close()
        with sqlite3.connect(path) as fresh:  # (SQLite's own VFS, the WAL recovered from disk)
            assert fresh.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            written[name] = _contents(fresh)
    assert written["gathered"] == written["default"]
    assert sum(len(rows) for rows in written["default"].values()) > 1000
    made, out = (a - b for a, b in zip(_walvfs.counts(), before, strict=True))
    assert 0 < out < made  # (fewer: the spills of a ten-page cache read the WAL between writes)


def test_a_commit_is_in_the_file_for_another_connection_when_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    conn = _open(path, VFS)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    reader = _open(path, None)
    total = 0
    for i in range(1, 200):
        rows = i % 9 + 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (id, v) VALUES (?, ?)",
                         [(total + j + 1, f"{total + j + 1}" * 100) for j in range(rows)])
        conn.execute("COMMIT")
        total += rows
        assert reader.execute("SELECT count(*), max(id), sum(length(v)) FROM t").fetchone() == (
            total, total, sum(len(f"{k}") * 100 for k in range(1, total + 1)))


def test_a_commit_of_any_size_is_written_whole(tmp_path: Path) -> None:
    """Commits from a page to some 4 MiB (SQLite's "unix" VFS takes no write of 128 KiB or
    more: the gathered frames go to it in pieces)."""
    path = tmp_path / "big.db"
    conn = _open(path, VFS)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    reader = _open(path, None)
    rng = random.Random(5)
    total = 0
    for rows in (1, 60, 64, 65, 130, 500, 2000, 3):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (v) VALUES (?)",
                         [(rng.randbytes(1900),) for _ in range(rows)])
        conn.execute("COMMIT")
        total += rows
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (total,)
    conn.close()
    with sqlite3.connect(path) as fresh:
        assert fresh.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert fresh.execute("SELECT count(*) FROM t").fetchone() == (total,)


_CHILD = textwrap.dedent("""
    import os, sqlite3, sys
    sys.path.insert(0, sys.argv[2])
    from gateway.store.db import wal_vfs
    vfs = wal_vfs()
    assert vfs is not None
    conn = sqlite3.connect(f"file:{sys.argv[1]}?vfs={vfs}", uri=True, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    if sys.argv[3] == "spill":
        # one transaction larger than a five-page cache (pages spill to the WAL before its
        # commit), which then changes pages it spilled (SQLite writes them again in place and
        # rewrites the checksums of the frames after them): a crash right after its commit
        conn.execute("PRAGMA cache_size = 5")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (id, v) VALUES (?, ?)",
                         [(i, str(i) * 300) for i in range(10, 2000)])
        conn.execute("UPDATE t SET v = 'again' || v WHERE id IN (10, 500, 900)")
        conn.execute("COMMIT")
        print(199, flush=True)
        os._exit(0)
    i = 0
    while True:
        i += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (id, v) VALUES (?, ?)",
                         [(i * 10 + j, "y" * 700) for j in range(i % 7 + 1)])
        conn.execute("COMMIT")
        print(i, flush=True)
""")


def test_a_commit_survives_the_process_killed_after_it(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(Path(__file__).resolve().parents[2]),
         "commits"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    last = 0
    try:
        for line in child.stdout:
            last = int(line)
            if last >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert last >= 300
    with sqlite3.connect(path) as conn:  # (the WAL recovered from what the killed one wrote)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        committed = {r[0] // 10 for r in conn.execute("SELECT id FROM t")}
    assert set(range(1, last + 1)) <= committed


def test_a_commit_that_spilled_and_rewrote_its_frames_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "spilled.db"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(Path(__file__).resolve().parents[2]),
         "spill"], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["199"]
    with sqlite3.connect(path) as conn:  # (the WAL recovered from the file as the child left it)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1990,)
        assert conn.execute("SELECT count(*) FROM t WHERE v LIKE 'again%'").fetchone() == (3,)


def test_a_rolled_back_transaction_leaves_nothing_to_write_later(tmp_path: Path) -> None:
    """What a rolled back transaction spilled is never written over the frames another
    connection commits after it."""
    path = tmp_path / "rolled.db"
    ours = _open(path, VFS)
    ours.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    ours.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, v BLOB)")
    ours.execute("INSERT INTO t VALUES (1, zeroblob(100))")
    other = _open(path, None)
    ours.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ours.execute("PRAGMA cache_size = 5")
    ours.execute("BEGIN IMMEDIATE")
    before = _walvfs.counts()
    ours.executemany("INSERT INTO t VALUES (?, ?)", [(i, b"s" * 1500) for i in range(2, 100)])
    ours.execute("ROLLBACK")
    made, out = (a - b for a, b in zip(_walvfs.counts(), before, strict=True))
    assert made > 50 and out == 0  # (it spilled; what it spilled was gathered, and dropped)
    other.execute("BEGIN IMMEDIATE")
    other.executemany("INSERT INTO u VALUES (?, ?)",
                      [(i, bytes([i % 251]) * 1500) for i in range(1, 200)])
    other.execute("COMMIT")
    assert ours.execute("SELECT count(*) FROM t").fetchone() == (1,)
    ours.execute("INSERT INTO t VALUES (2, zeroblob(10))")
    ours.close()
    other.close()
    with sqlite3.connect(path) as fresh:
        assert fresh.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert fresh.execute("SELECT count(*) FROM t").fetchone() == (2,)
        assert all(v == bytes([i % 251]) * 1500 for i, v in fresh.execute("SELECT id, v FROM u"))
        assert fresh.execute("SELECT count(*) FROM u").fetchone() == (199,)


@pytest.mark.parametrize("psow", [0, 1])
def test_a_synced_commit_is_readable_when_it_returns(tmp_path: Path, psow: int) -> None:
    """synchronous=FULL: the commit synced (and, without powersafe overwrite, padded to a
    sector: SQLite writes the padding after the commit frame)."""
    path = tmp_path / "synced.db"
    conn = sqlite3.connect(f"file:{path}?vfs={VFS}&psow={psow}", uri=True,
                           isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    reader = _open(path, None)
    for i in range(1, 60):
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, bytes([i]) * 1000))
        rows = reader.execute("SELECT id, v FROM t").fetchall()
        assert rows == [(k, bytes([k]) * 1000) for k in range(1, i + 1)]


_FULL_DISK_CHILD = textwrap.dedent("""
    import json, os, sqlite3, sys
    sys.path.insert(0, sys.argv[2])
    from gateway.store.db import wal_vfs
    path, flag = sys.argv[1], os.environ["FIXGW_TEST_DISK_FULL"]
    vfs = wal_vfs() if sys.argv[3] == "ours" else None
    conn = (sqlite3.connect(f"file:{path}?vfs={vfs}", uri=True, isolation_level=None) if vfs
            else sqlite3.connect(path, isolation_level=None))
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v BLOB)")
    conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO r VALUES (?)", [(i,) for i in range(100)])
    conn.execute("INSERT INTO t VALUES (1, 'k1', zeroblob(100))")
    held = conn.execute("SELECT id FROM r")  # a read left open across what follows
    held.fetchone()
    failed = []
    def run(label, sql, *args):
        try:
            conn.execute(sql, *args)
        except sqlite3.Error as exc:
            failed.append(f"{label}: {exc}")
    if sys.argv[4] == "spill":
        conn.execute("PRAGMA cache_size = 5")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                     [(i, f"k{i}", bytes([i % 256]) * 1500) for i in range(2, 200)])
    open(flag, "w").close()  # the disk is full for a while
    run("statement", "INSERT INTO t (k, v) SELECT k || 'y', v FROM t WHERE id IN (150, 190)")
    run("commit", "COMMIT")
    os.unlink(flag)
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    # the disk has room again: does the connection work, does the open read go on?
    def outcome(step):
        try:
            return step()
        except sqlite3.Error as exc:
            return f"failed: {exc}"
    after = outcome(lambda: conn.execute("INSERT INTO t VALUES (1000, 'after', x'00')")
                    and conn.execute("SELECT count(*) FROM t WHERE id = 1000").fetchone()[0])
    rest = outcome(lambda: len(held.fetchall()))
    held.close()
    again = outcome(lambda: conn.execute("INSERT INTO t VALUES (1001, 'again', x'00')")
                    and conn.execute("SELECT count(*) FROM t WHERE id >= 1000").fetchone()[0])
    conn.close()
    print(json.dumps({"failed": failed, "after": after, "held": rest, "again": again}))
""")


@pytest.mark.parametrize("spill", ["spill", "no-spill"])
def test_a_transaction_that_met_a_full_disk_ends_as_with_sqlites_own_vfs(tmp_path: Path,
                                                                         spill: str) -> None:
    """The WAL's writes fail (ENOSPC) at the end of a transaction (spilled before or not):
    through either VFS the file is sound and holds the transaction whole or not at all, and
    once the disk has room the connection (and a read it had open) goes on wherever it does
    through SQLite's own."""
    shim = tmp_path / "wal_write_fails.so"
    built = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim),
                            str(Path(__file__).with_name("wal_write_fails.c")), "-ldl"],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    seen = {}
    for vfs in ("sqlite's", "ours"):
        path = tmp_path / f"full-{len(seen)}.db"
        env = {**os.environ, "LD_PRELOAD": str(shim),
               "FIXGW_TEST_DISK_FULL": str(tmp_path / "disk-full")}
        out = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD, str(path),
                              str(Path(__file__).resolve().parents[2]), vfs, spill],
                             env=env, capture_output=True, text=True, check=True, timeout=120)
        seen[vfs] = json.loads(out.stdout)
        assert seen[vfs]["failed"], seen  # (the disk was full: something failed)
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            count = conn.execute("SELECT count(*) FROM t WHERE id < 1000").fetchone()[0]
            assert count in (1, 199, 201)
            if count > 1:
                assert all(v == bytes([i % 256]) * 1500 for i, v in
                           conn.execute("SELECT id, v FROM t WHERE id BETWEEN 2 AND 199"))
    # (what works through SQLite's own VFS works through ours; with a read left open, SQLite's
    # own keeps failing after a spilled transaction failed, where ours goes on)
    for step in ("after", "held"):
        if not str(seen["sqlite's"][step]).startswith("failed"):
            assert seen["ours"][step] == seen["sqlite's"][step], (step, seen)
    assert isinstance(seen["ours"]["again"], int) and isinstance(seen["sqlite's"]["again"], int)


def test_the_store_opens_its_sqlite_file_through_it(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'gw.db'}")
        await store.start()
        try:
            before = _walvfs.counts()
            for seq in range(1, 21):
                await store.save("FIX.4.4:GW->C", sent=[(seq, b"m" * 300)], next_sender=seq + 1)
            made, out = (a - b for a, b in zip(_walvfs.counts(), before, strict=True))
            assert 20 <= out < made  # (each commit: one write, not two a page)
        finally:
            await store.close()

    asyncio.run(body())
    with sqlite3.connect(tmp_path / "gw.db") as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (20,)


def test_an_unusual_file_name_is_opened_as_a_uri(tmp_path: Path) -> None:
    odd = tmp_path / "a dir#&=" / "g w.db"  # (what a URI would read otherwise)
    odd.parent.mkdir()

    async def body() -> None:
        # ("sqlite:////" + an absolute path: "//tmp/...", which a URI would read as a host)
        store = SessionStore(f"sqlite:////{odd}")
        await store.start()
        try:
            await store.save("FIX.4.4:GW->C", sent=[(1, b"x")], next_sender=2)
        finally:
            await store.close()

    asyncio.run(body())
    assert odd.exists()
    with sqlite3.connect(odd) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (1,)



def test_a_large_transactions_buffer_is_freed_as_it_ends(tmp_path: Path) -> None:
    """A connection keeps its gathering buffer across commits of the usual size (the next
    reuses it), not one a large transaction grew (megabytes): freed as its write lock goes."""
    gc.collect()  # (connections earlier tests left to the collector: none freed meanwhile)
    gc.disable()
    base = _walvfs.held()  # (other connections' of this process)
    conn = _open(tmp_path / "big.db", VFS)
    try:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (v) VALUES (?)", [(b"x" * 3000,)] * 3)
        conn.execute("COMMIT")
        kept = _walvfs.held() - base
        assert 0 < kept <= 256 * 1024
        conn.execute("PRAGMA cache_size = 10")  # (the transaction spills to the WAL as it goes)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t (v) VALUES (?)",
                         [(random.randbytes(2000),) for _ in range(1500)])  # ~3 MB of frames
        grown = _walvfs.held() - base
        conn.execute("COMMIT")
        assert grown > 256 * 1024 and _walvfs.held() - base == 0
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1503,)
    finally:
        conn.close()
        gc.enable()

"""What the store's SQLite connections bind: None, bools and bytes through the adapters
gateway.store.db registers (no attribute lookups a parameter) are stored as they were before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.db import make_engine


def test_none_bools_and_bytes_bind_as_null_integers_and_blobs(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("CREATE TABLE t (a, b, c, d)")
        cur.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                        [(None, True, False, b"\x00\x01x"), (None, False, True, b"")])
        rows = cur.execute(
            "SELECT typeof(a), a, typeof(b), b, typeof(c), c, typeof(d), d FROM t ORDER BY rowid"
        ).fetchall()
    finally:
        raw.close()
    assert rows == [("null", None, "integer", 1, "integer", 0, "blob", b"\x00\x01x"),
                    ("null", None, "integer", 0, "integer", 1, "blob", b"")]
    # (registered for the process: a connection of its own binds them alike)
    with sqlite3.connect(":memory:") as other:
        assert other.execute("SELECT typeof(?), ?, typeof(?)", (None, True, b"z")).fetchone() == (
            "null", 1, "blob")

"""The peer of the order benchmark (``scripts/qf_peer.py``: QuickFIX doing fixgw's durable work
per order) does what the benchmark says it does, in both of its commit modes:

* every marketable order gets ExecutionReport New, then Fill, and nothing else;
* what it sent is in its SQLite file: a report row per ExecutionReport (same ExecID, ExecType,
  OrdStatus), each order's ``created``/``accepted``/``fill`` events and its fill, every order
  closed;
* it refuses what fixgw refuses, by the same rules: the same OrdStatus, ExecType, OrdRejReason
  (103) and Text (58) as ``fixgw run`` serving the same configuration, for a price outside the
  band, a quantity or a notional over the limits, a quantity that is not positive, off the lot
  size or below the venue's minimum, a price off the tick, an unknown symbol, a live duplicate
  ClOrdID; a quantity that is not a number is a session Reject (373=6) from both.

Skipped when ``quickfix`` is not installed (``scripts/setup.sh --interop``), unless
``REQUIRE_INTEROP=1``.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import quickfix  # noqa: F401
except ImportError as exc:
    _MISSING = f"the quickfix package is not importable ({exc}): run scripts/setup.sh --interop"
    if os.environ.get("REQUIRE_INTEROP") == "1":
        pytest.fail(f"{_MISSING} (REQUIRE_INTEROP=1)", pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from benchlib import procs  # noqa: E402
from benchlib.client import LeanClient  # noqa: E402
from benchlib.fixwire import field, tag  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

T = {n: tag(n) for n in (11, 17, 35, 39, 58, 103, 150, 371, 373)}


def _peer(tmp: Path, commit: str, config: Path) -> procs.Server:
    return procs.start(f"peer-{commit}", [sys.executable, str(REPO / "scripts" / "qf_peer.py"),
                                          "--workdir", str(tmp / commit), "--config",
                                          str(config), "--commit", commit],
                       stderr_path=tmp / f"peer-{commit}.stderr", timeout=60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "gw.toml", store=f"sqlite:///{tmp_path / 'gw.db'}",
                        log_dir=None)


def _order(cl: str, qty: str = "0.001", px: str = "98000", side: str = "1",
           symbol: str = "BTC/USDT") -> bytes:
    return (f"11={cl}\x0121=1\x0138={qty}\x0140=2\x0144={px}\x0154={side}\x0155={symbol}"
            f"\x0159=0\x0160=20260101-00:00:00.000\x01").encode()


def _collect(c: LeanClient, until: int, deadline_s: float = 30.0) -> list[bytes]:
    """Application messages (ExecutionReports, Rejects) until ``until`` of them arrived."""
    out: list[bytes] = []
    end = time.monotonic() + deadline_s
    while len(out) < until:
        assert time.monotonic() < end, f"{len(out)} of {until} messages after {deadline_s}s"
        for m in c.recv_msgs():
            if field(m, T[35]) in (b"8", b"3"):
                out.append(m)
            else:
                c._admin(m)
    return out


@pytest.mark.parametrize("commit", ["order", "group"])
def test_every_order_is_new_then_filled_and_stored(tmp_path: Path, config: Path,
                                                   commit: str) -> None:
    s = _peer(tmp_path, commit, config)
    n = 300
    try:
        c = LeanClient(s.host, s.port)
        c.logon()
        got: list[bytes] = []
        for start in range(0, n, 50):  # 50 at a time: the group commit sees batches
            for i in range(start, start + 50):
                c.send(b"D", _order(f"o{i}", px="98000" if i % 2 == 0 else "96000",
                                    side="1" if i % 2 == 0 else "2"))
            got += _collect(c, 100)
        c.logout()
    finally:
        s.stop()
    seen: dict[bytes, list[tuple[bytes | None, bytes | None]]] = {}
    for m in got:
        cl = field(m, T[11])
        assert cl is not None
        seen.setdefault(cl, []).append((field(m, T[150]), field(m, T[39])))
    assert len(seen) == n
    assert all(v == [(b"0", b"0"), (b"F", b"2")] for v in seen.values()), seen
    db = sqlite3.connect(tmp_path / commit / "peer.db")
    stored = {r[0]: r[1:] for r in db.execute(
        "SELECT exec_id, cl_ord_id, exec_type, ord_status FROM reports")}
    sent = {field(m, T[17]).decode(): (field(m, T[11]).decode(),  # type: ignore[union-attr]
                                      field(m, T[150]).decode(),  # type: ignore[union-attr]
                                      field(m, T[39]).decode())  # type: ignore[union-attr]
            for m in got}
    assert stored == sent
    assert db.execute("SELECT count(*), sum(is_open), min(status), max(status) FROM orders"
                      ).fetchone() == (n, 0, "2", "2")
    kinds = db.execute("SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind").fetchall()
    assert kinds == [("accepted", n), ("created", n), ("fill", n)]
    assert db.execute("SELECT count(*) FROM fills").fetchone() == (n,)
    # the intent was stored before the venue heard of it: created is each order's first event
    firsts = db.execute("SELECT kind FROM events e WHERE event_id = (SELECT min(event_id) FROM "
                        "events WHERE order_id = e.order_id)").fetchall()
    assert set(firsts) == {("created",)}


BAD = [
    ("band", _order("band", px="150000")),
    ("qty", _order("qty", qty="200", px="97000")),
    ("notional", _order("notional", qty="20", px="97000")),
    ("negative", _order("negative", qty="-1")),
    ("zero", _order("zero", qty="0")),
    ("lot", _order("lot", qty="0.000001")),
    ("tick", _order("tick", px="97000.001")),
    ("minnotional", _order("minnotional", qty="0.00001")),
    ("symbol", _order("symbol", symbol="XYZ/USDT")),
    ("rest", _order("rest", px="92000")),  # rests (the next one is its live duplicate)
    ("dup", _order("rest", px="92000")),
]


def _answers(s: procs.Server) -> list[tuple[bytes | None, ...]]:
    c = LeanClient(s.host, s.port)
    c.logon()
    out = []
    for _, body in BAD:
        c.send(b"D", body)
        (m,) = _collect(c, 1)
        out.append(tuple(field(m, T[t]) for t in (35, 39, 150, 103, 58)))
    c.send(b"D", _order("nan", qty="abc"))
    (m,) = _collect(c, 1)
    out.append(tuple(field(m, T[t]) for t in (35, 371, 373)))
    c.logout()
    return out


@pytest.fixture
def fixgw(tmp_path: Path) -> Iterator[procs.Server]:
    cfg = write_config(tmp_path / "fixgw.toml", store=f"sqlite:///{tmp_path / 'fixgw.db'}",
                       log_dir=None)
    s = procs.start("fixgw", [sys.executable, "-c", "import sys; from gateway.cli import main; "
                              "sys.exit(main())", "run", "--config", str(cfg)],
                    stderr_path=tmp_path / "fixgw.stderr", cwd=tmp_path, timeout=60)
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("commit", ["order", "group"])
def test_refuses_what_fixgw_refuses_with_the_same_answer(tmp_path: Path, config: Path,
                                                         fixgw: procs.Server,
                                                         commit: str) -> None:
    expected = _answers(fixgw)
    s = _peer(tmp_path, commit, config)
    try:
        got = _answers(s)
    finally:
        s.stop()
    names = [n for n, _ in BAD] + ["nan"]
    for name, want, have in zip(names, expected, got, strict=True):
        assert have == want, name
    # (the answers are what they should be, not only alike)
    by = dict(zip(names, got, strict=True))
    assert by["band"][1:4] == (b"8", b"8", b"3")
    assert by["rest"][1:3] == (b"0", b"0")
    assert by["dup"][3] == b"6"
    assert by["nan"] == (b"3", b"38", b"6")
    db = sqlite3.connect(tmp_path / commit / "peer.db")
    # refused by a check, the order and its report are stored; not even an order, nothing
    assert {r[0] for r in db.execute("SELECT cl_ord_id FROM reports WHERE ord_status = '8'")} == {
        "band", "qty", "notional", "lot", "tick", "minnotional", "rest"}

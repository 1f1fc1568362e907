"""``fixgw replay``: a log the gateway wrote, played again to a fresh gateway on the simulated
venue (in process), gives the same answers; a log whose answers were changed gives
differences; no gateway to talk to is bad usage."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from orders.support import running, session
from server.harness import run

from gateway.audit.replay import ReplayOptions, replay

from .support import Flow, find, lines_of, make_flow, set_field

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return make_flow(tmp_path_factory.mktemp("flow"))


def _replay(tmp: Path, log: Path, session_id: str, begin: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()

    async def body() -> int:
        target = session_id.rsplit("->", 1)[-1] if "->" in session_id else session_id
        async with running(tmp, [session(target, begin)]) as r:
            return await replay(ReplayOptions([str(log)], session_id, r.host, r.port,
                                              speed=0, wait=2.0), out, err)

    return run(body(), 90), out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("which", "sid", "begin"), [
    ("fix44", "CLIENT1", "FIX.4.4"),
    ("fixt", "FIXT.1.1:GATEWAY->CLIENT50", "FIXT.1.1"),
])
def test_a_replay_gives_the_same_answers(flow: Flow, tmp_path: Path, which: str, sid: str,
                                         begin: str) -> None:
    code, out, err = _replay(tmp_path, getattr(flow, which), sid, begin)
    assert code == 0, out + err
    assert "no differences" in out and "17 compared" in out


def test_changed_answers_are_differences(flow: Flow, tmp_path: Path) -> None:
    lines = lines_of(flow.fix44)
    i = find(lines, (11, b"S1"), (39, b"2"))
    lines[i] = set_field(lines[i], 31, b"96000.5")
    del lines[find(lines, (35, b"9"), (11, b"B2"))]
    log = tmp_path / flow.fix44.name
    log.write_bytes(b"".join(lines))
    code, out, _ = _replay(tmp_path, log, "CLIENT1", "FIX.4.4")
    assert code == 1
    assert "LastPx (31) was 96000.5, replayed 96999.95" in out
    assert "OrderCancelReject for ClOrdID B2: sent in the replay, not in the log" in out


def test_no_gateway_is_bad_usage(flow: Flow, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(replay(ReplayOptions([str(flow.fix44)], "CLIENT1", "127.0.0.1", 1), out, err))
    assert code == 2 and "cannot connect to 127.0.0.1:1" in err.getvalue()
    code = run(replay(ReplayOptions([str(flow.fix44)], "NOBODY", "127.0.0.1", 1), out, err))
    assert code == 2 and "no message of session NOBODY" in err.getvalue()

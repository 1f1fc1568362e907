"""Restart persistence with the real SQLite store: ``fixgw run`` is SIGKILLed mid-stream and
started again; the session continues its sequence numbers and a resend returns what was sent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .fixclient import ConnectionClosed, FixClient, FixMessage
from .harness import run

FIXGW = Path(sys.executable).with_name("fixgw")


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        "[gateway]\n"
        'host = "127.0.0.1"\nport = 0\nsender_comp_id = "GATEWAY"\n'
        f'store = "sqlite:///{tmp_path / "fixgw.db"}"\n'
        f'log_dir = "{tmp_path / "log"}"\n'
        '[[session]]\ntarget_comp_id = "CLIENT1"\n'
    )
    return path


@contextmanager
def _gateway(config: Path, stderr_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``fixgw run --config`` until its ``listening on host:port`` line; killed on exit."""
    with stderr_path.open("a") as err:
        proc = subprocess.Popen(
            [str(FIXGW), "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=config.parent,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the line or EOF (the process died)
        m = re.match(r"listening on ([\d.]+):(\d+)", line)
        assert m, f"fixgw did not start: {line!r}\n{stderr_path.read_text()}"
        yield proc, int(m.group(2))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _order(i: int) -> list[tuple[int, str | int]]:
    return [(11, f"ord-{i}"), (55, "BTC-USD"), (54, 1), (60, "20240102-03:04:05"), (38, 1),
            (40, 1)]


def test_sigkill_and_restart_continue_the_sequence_and_resend(tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    stderr_path = tmp_path / "fixgw.stderr"

    async def first_life(port: int, proc: subprocess.Popen[str]) -> tuple[int, int, int]:
        """Returns (our next seq, the last seq received, the app replies received)."""
        c = await FixClient.connect("127.0.0.1", port)
        reply = await c.logon()
        assert reply.msg_type == "A" and reply.seq == 1, str(reply)
        last = reply.seq
        replies = 0
        for i in range(12):
            if i % 3 == 2:
                m = await c.test_request(f"t{i}")
            else:
                await c.send("D", _order(i))
                m = await c.recv_type("j")
                assert m[380] == "4"
                replies += 1
            assert m.seq == last + 1
            last = m.seq
        # mid-stream: a burst goes out and the process dies while it is being served
        await c.send_raw(b"".join(c.build("D", _order(100 + i)) for i in range(50)))
        m = await c.recv_type("j")  # the burst is being served...
        assert m.seq == last + 1
        last = m.seq
        replies += 1
        os.kill(proc.pid, signal.SIGKILL)  # ...now
        while True:
            try:
                m = await c.recv(5.0)
            except ConnectionClosed:
                break
            assert m.seq == last + 1, "no hole in what arrived before the kill"
            last = m.seq
            replies += 1
        await c.close()
        return c.next_seq, last, replies

    async def second_life(port: int, next_seq: int, last: int, replies: int) -> None:
        c = await FixClient.connect("127.0.0.1", port, next_seq=next_seq)
        logon_seq = c.next_seq
        reply = await c.logon()
        assert reply.msg_type == "A", str(reply)
        assert 141 not in reply, "no reset"
        assert reply.seq > last, f"Logon reply {reply.seq} does not continue after {last}"
        server_last = reply.seq
        # the server may have lost the tail of our burst: answer its ResendRequest with a
        # gap fill up to our Logon (our orders are not worth resending)
        await c.send("1", [(112, "sync")])
        while True:
            m = await c.recv(5.0)
            server_last = max(server_last, m.seq)
            if m.msg_type == "2":
                begin = int(m[7])
                await c.send("4", [(123, "Y"), (36, logon_seq)], seq=begin,
                             header=[(43, "Y")])
            elif m.msg_type == "0" and m.get(112) == "sync":
                break
            else:
                assert m.msg_type in ("0", "j"), str(m)  # served queued orders
        # everything from 1: application messages again (PossDup), admin ones gap-filled
        await c.send("2", [(7, 1), (16, 0)])
        await c.send("1", [(112, "end")])
        resent: list[FixMessage] = []
        while True:
            m = await c.recv(5.0)
            if m.msg_type == "0" and m.get(112) == "end":
                end_hb = m
                break
            resent.append(m)
        covered: list[int] = []
        app = 0
        for m in resent:
            assert m[43] == "Y", f"resent without PossDupFlag: {m}"
            if m.msg_type == "4":
                assert m[123] == "Y", str(m)
                covered += range(m.seq, int(m[36]))
            else:
                assert m.msg_type == "j", f"admin message resent instead of gap-filled: {m}"
                assert 122 in m, "OrigSendingTime"
                covered.append(m.seq)
                app += 1
        assert covered == list(range(1, end_hb.seq)), f"holes or overlaps: {covered}"
        assert server_last < end_hb.seq
        assert app >= replies, f"{replies} app messages received before, {app} resent"
        await c.close()

    with _gateway(config, stderr_path) as (proc, port):
        next_seq, last, replies = run(first_life(port, proc))
        assert proc.wait(5) == -signal.SIGKILL
    with _gateway(config, stderr_path) as (proc, port):
        run(second_life(port, next_seq, last, replies))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, stderr_path.read_text()


def test_run_reports_port_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = _write_config(tmp_path)

    async def logon(port: int) -> None:
        c = await FixClient.connect("127.0.0.1", port)
        assert (await c.logon()).msg_type == "A"
        await c.close()

    with _gateway(config, tmp_path / "stderr") as (proc, port):
        run(logon(port))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert (tmp_path / "fixgw.db").exists()
    assert any((tmp_path / "log").iterdir())


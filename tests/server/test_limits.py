"""Per-connection limits: inbound rate, message size, logon and partial-message deadlines,
slow readers; and garbage from one client never disturbing another session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from pathlib import Path

import pytest

from gateway.fix.session import SessionID

from .fixclient import ConnectionClosed, FixClient
from .harness import make_config, run, serving


def _session(name: str, **options: object) -> str:
    lines = [f'[[session]]\ntarget_comp_id = "{name}"']
    for k, v in options.items():
        lines.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}")
    return "\n".join(lines) + "\n"


def _order(i: int) -> list[tuple[int, str | int]]:
    return [(11, f"ord-{i}"), (55, "BTC-USD"), (54, 1), (60, "20240102-03:04:05"), (38, 1),
            (40, 1)]


async def _keeps_working(c: FixClient, tag: str, stop: asyncio.Event) -> int:
    """TestRequest/Heartbeat round trips until ``stop``; returns how many were made."""
    n = 0
    while not stop.is_set():
        hb = await c.test_request(f"{tag}-{n}", timeout=5.0)
        assert hb[56] == c.sender
        n += 1
    return n


# ----------------------------------------------------------------------------------------------
# inbound rate


def test_rate_limit_reject_throttles_application_messages_only(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1", rate_limit=5.0, rate_burst=5,
                                         rate_action="reject"))

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).msg_type == "A"
            # the Logon took a token; give the bucket time to refill completely (5/s -> 0.2 s
            # per token, capped at the burst) so the burst below starts from exactly 5 tokens
            await asyncio.sleep(1.1)
            first = c.next_seq
            await c.send_raw(b"".join(c.build("D", _order(i)) for i in range(10)))
            rejects = [await c.recv_type("j") for _ in range(10)]
            assert [int(r[45]) for r in rejects] == list(range(first, first + 10))
            normal, throttled = rejects[:5], rejects[5:]
            assert all(r[380] == "4" for r in normal), [str(r) for r in normal]
            for r in throttled:
                assert r[380] == "99" and "Throttle" in r[58], str(r)
                assert r[372] == "D"
            # administrative messages are still honoured while over the rate
            hb = await c.test_request("still-alive")
            assert hb.seq == rejects[-1].seq + 1
            await c.send("0", [])
            # nothing was lost: sequence numbers line up with a further round trip
            assert (await c.test_request("in-sync")).seq == hb.seq + 1
            await c.close()

    run(main())


def test_rate_limit_logout(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1", rate_limit=5.0, rate_burst=5,
                                         rate_action="logout", logout_timeout=0.5))

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).msg_type == "A"
            await c.send_raw(b"".join(c.build("D", _order(i)) for i in range(10)))
            got = await c.expect_closed(5.0)
            types = [m.msg_type for m in got]
            assert "5" in types, [str(m) for m in got]
            assert types[types.index("5") + 1:] == [], "nothing after the Logout"
            assert types.count("5") == 1
            logout = got[types.index("5")]
            assert "rate" in (logout.get(58) or "")

    run(main())


def test_a_flood_is_paced_and_does_not_starve_another_session(tmp_path: Path) -> None:
    """A client sends heartbeats as fast as it can write: past its allowance (the burst, then
    the rate) its socket is no longer read, so the gateway processes at most about the rate of
    them, and another session keeps its round trips. Before: all of a 41k/s flood was
    processed, cutting another session's throughput to a third."""
    rate, burst = 200.0, 100
    cfg = make_config(tmp_path, _session("FLOOD", rate_limit=rate, rate_burst=burst)
                      + _session("CLIENT2"))

    async def main() -> None:
        async with serving(cfg) as s:
            flood = await FixClient.connect(s.host, s.port, sender="FLOOD")
            assert (await flood.logon()).msg_type == "A"
            other = await FixClient.connect(s.host, s.port, sender="CLIENT2")
            assert (await other.logon()).msg_type == "A"
            session = s.gateway.acceptor.session(SessionID("FIX.4.4", "GATEWAY", "FLOOD"))
            assert session is not None
            start_target = session.next_target
            loop = asyncio.get_running_loop()
            started = loop.time()
            stop = asyncio.Event()

            async def pump() -> int:
                sent = 0
                while not stop.is_set():
                    flood.writer.write(b"".join(flood.build("0", []) for _ in range(200)))
                    sent += 200
                    try:
                        await asyncio.wait_for(flood.writer.drain(), 0.2)
                    except TimeoutError:
                        await asyncio.sleep(0)  # the gateway stopped reading: TCP pushes back
                return sent

            flooding = asyncio.create_task(pump())
            trips = 0
            while loop.time() - started < 2.0:
                hb = await other.test_request(f"t{trips}", timeout=5.0)
                assert hb.msg_type == "0"
                trips += 1
            stop.set()
            sent = await flooding
            elapsed = loop.time() - started
            processed = session.next_target - start_target
            # the bucket holds at most `burst` and may owe at most `burst` (+1) before reading
            # pauses: whatever was sent, no more than this was processed
            assert processed <= 2 * burst + 1 + rate * elapsed + 1, (processed, elapsed)
            assert sent > 5 * processed, (sent, processed)
            assert trips >= 20
            await other.close()
            flood.writer.close()

    run(main())


def test_a_client_held_over_its_rate_too_long_is_logged_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading paused for longer than the limit (a runaway client, or one gone leaving its
    socket full): a Logout saying why, and the session is free again."""
    from gateway.server import acceptor

    monkeypatch.setattr(acceptor, "PACED_LIMIT_S", 0.5)
    cfg = make_config(tmp_path, _session("CLIENT1", rate_limit=50.0, rate_burst=10))

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).msg_type == "A"
            stop = asyncio.Event()

            async def pump() -> None:
                with contextlib.suppress(ConnectionError, OSError):
                    while not stop.is_set():
                        c.writer.write(b"".join(c.build("0", []) for _ in range(50)))
                        await c.writer.drain()

            flooding = asyncio.create_task(pump())
            got = await c.expect_closed(10.0)
            stop.set()
            await flooding
            logouts = [m for m in got if m.msg_type == "5"]
            assert len(logouts) == 1 and "rate" in (logouts[0].get(58) or ""), got
            again = await FixClient.connect(s.host, s.port, next_seq=c.next_seq)
            reply = await again.logon()
            assert reply.msg_type == "A", str(reply)
            await again.close()

    run(main())


# ----------------------------------------------------------------------------------------------
# message size


def test_oversized_message_drops_the_connection(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1", max_message_size=512)
                      + _session("CLIENT2", max_message_size=512))

    async def main() -> None:
        async with serving(cfg) as s:
            other = await FixClient.connect(s.host, s.port, sender="CLIENT2")
            assert (await other.logon()).msg_type == "A"
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).msg_type == "A"
            assert (await c.test_request("x" * 300)).seq == 2  # under the limit: fine
            await c.send("1", [(112, "y" * 1000)])
            got = await c.expect_closed(3.0)
            assert [m.msg_type for m in got] in ([], ["5"]), [str(m) for m in got]
            assert (await other.test_request("unaffected")).seq == 2
            await other.close()

    run(main())


def test_oversized_logon_drops_the_connection(tmp_path: Path) -> None:
    """The first message is framed before the session is known; the session's limit must still
    hold for it (at worst the largest limit of any configured session)."""
    cfg = make_config(tmp_path, _session("CLIENT1", max_message_size=512))

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            # Username (553) is a valid Logon field (no authentication is configured)
            await c.send("A", [(98, 0), (108, 30), (553, "z" * 4000)])
            got = await c.expect_closed(3.0)
            assert got == [], [str(m) for m in got]
        # the same Logon under the limit is fine: the refusal above is for the size
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon(extra=[(553, "z" * 60)])).msg_type == "A"
            await c.close()

    run(main())


# ----------------------------------------------------------------------------------------------
# deadlines


@pytest.mark.parametrize("sends", ["nothing", "half-a-logon"])
def test_connection_that_never_logs_on_is_dropped_after_logon_timeout(
    tmp_path: Path, sends: str
) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1", logon_timeout=1.0))

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            if sends == "half-a-logon":
                logon = c.build("A", [(98, 0), (108, 30)])
                await c.send_raw(logon[: len(logon) // 2])
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            got = await c.expect_closed(3.5)  # logon_timeout 1 s + timer granularity
            assert got == []
            assert loop.time() - t0 >= 0.9

    run(main())


def test_partial_message_is_dropped_after_partial_message_timeout(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1", partial_message_timeout=1.0)
                      + _session("CLIENT2", partial_message_timeout=1.0))

    async def main() -> None:
        async with serving(cfg) as s:
            other = await FixClient.connect(s.host, s.port, sender="CLIENT2")
            assert (await other.logon()).msg_type == "A"
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).msg_type == "A"
            msg = c.build("1", [(112, "never-finished")])
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await c.send_raw(msg[: len(msg) // 2])
            stop = asyncio.Event()
            pinger = asyncio.create_task(_keeps_working(other, "p", stop))
            got = await c.expect_closed(4.0)
            stop.set()
            assert await pinger >= 1
            assert [m.msg_type for m in got] in ([], ["5"]), [str(m) for m in got]
            assert loop.time() - t0 >= 0.9
            await other.close()

    run(main())


# ----------------------------------------------------------------------------------------------
# slow reader


def test_a_batch_larger_than_the_outbound_limit_reaches_a_client_that_reads(
    tmp_path: Path,
) -> None:
    """300 messages processed in one go are answered in one batch (300 BusinessMessageRejects,
    about 45 KB), ten times the session's outbound limit: written in pieces as the client
    reads them, not as one write that trips the slow-reader limit."""
    cfg = make_config(tmp_path, _session("CLIENT1", max_outbound_bytes=4096))

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port, rcvbuf=4096)
            assert (await c.logon()).msg_type == "A"
            # small kernel buffers on both ends, so the batch cannot hide in them
            h = await s.gateway.acceptor.handle(SessionID("FIX.4.4", "GATEWAY", "CLIENT1"))
            assert h is not None and h.connection is not None
            h.connection.writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            await c.send_raw(b"".join(c.build("D", _order(i)) for i in range(300)))
            rejects = [await c.recv_type("j") for _ in range(300)]
            assert [r[45] for r in rejects] == [str(2 + i) for i in range(300)]
            assert (await c.test_request("after")).msg_type == "0"
            await c.close()

    run(main())


def test_slow_reader_is_disconnected_while_another_session_keeps_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1", max_outbound_bytes=2048)
                      + _session("CLIENT2", max_outbound_bytes=2048))
    caplog.set_level(logging.INFO, logger="fixgw")  # the disconnect is said with its session

    async def main() -> None:
        async with serving(cfg) as s:
            other = await FixClient.connect(s.host, s.port, sender="CLIENT2")
            assert (await other.logon()).msg_type == "A"
            slow = await FixClient.connect(s.host, s.port, rcvbuf=4096)
            assert (await slow.logon()).msg_type == "A"
            stop = asyncio.Event()
            pinger = asyncio.create_task(_keeps_working(other, "p", stop))
            # every TestRequest makes the server write a Heartbeat as large; never read them
            big = "x" * 1000  # (the longest value of a field is 1024 by default)
            sent = 0
            try:
                while sent < 64 << 20:
                    data = b"".join(slow.build("1", [(112, big)]) for _ in range(8))
                    await asyncio.wait_for(slow.send_raw(data), 5.0)
                    sent += len(data)
            except (ConnectionError, ConnectionClosed):
                pass
            got = await slow.expect_closed(5.0)  # reads what the kernel held, then EOF/reset
            assert all(m.msg_type in ("A", "0") for m in got)
            stop.set()
            assert await pinger >= 1
            assert (await other.test_request("after")).seq > 2
            await other.close()

    run(main())
    assert any("slow reader" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------------------------
# garbage


def test_garbage_from_one_client_never_disturbs_another_session(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, _session("CLIENT1") + _session("CLIENT2"))
    rnd = random.Random(1234)

    async def main() -> None:
        async with serving(cfg) as s:
            good = await FixClient.connect(s.host, s.port)
            assert (await good.logon()).msg_type == "A"
            stop = asyncio.Event()
            pinger = asyncio.create_task(_keeps_working(good, "g", stop))

            # 1. a stranger: random bytes, then a message start with a huge BodyLength
            stranger = await FixClient.connect(s.host, s.port, sender="X")
            await stranger.send_raw(bytes(rnd.getrandbits(8) for _ in range(20_000)))
            await stranger.send_raw(b"8=FIX.4.4\x019=999999999\x0135=A\x01")
            assert await stranger.expect_closed(5.0) == []

            # 2. a logged-on session that starts sending garbage
            bad = await FixClient.connect(s.host, s.port, sender="CLIENT2")
            assert (await bad.logon()).msg_type == "A"
            await bad.send_raw(bytes(rnd.getrandbits(8) for _ in range(20_000)))
            await bad.send_raw(b"8=FIX.4.4\x019=999999999\x0135=D\x01")
            await bad.expect_closed(5.0)

            # 3. well-framed nonsense and bad checksums
            noisy = await FixClient.connect(s.host, s.port, sender="CLIENT2", next_seq=3)
            await noisy.send_raw(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01" * 50)
            await noisy.send_raw(b"\x00" * 5000 + b"8=FIX.4.4\x019=12\x01" + b"\xff" * 100)
            await noisy.close()

            stop.set()
            rounds = await pinger
            assert rounds >= 1
            hb = await good.test_request("end")
            assert hb.seq == rounds + 2  # one Heartbeat per TestRequest, nothing in between
            await good.close()

    run(main())

"""Many sessions on one port, told apart by CompIDs; unknown and duplicate identities; templates;
the source-address allow-list."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .fixclient import FixClient, FixMessage
from .harness import make_config, run, serving

THREE = "".join(
    f'[[session]]\ntarget_comp_id = "CLIENT{i}"\n' for i in (1, 2, 3)
)


async def _ping(c: FixClient, rounds: int) -> list[FixMessage]:
    out = []
    for i in range(rounds):
        hb = await c.test_request(f"{c.sender}-{i}")
        assert hb[49] == "GATEWAY"
        assert hb[56] == c.sender
        out.append(hb)
    return out


def test_three_sessions_logged_on_at_once_are_independent(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, THREE)

    async def main() -> None:
        async with serving(cfg) as s:
            clients = [
                await FixClient.connect(s.host, s.port, sender=f"CLIENT{i}") for i in (1, 2, 3)
            ]
            for c in clients:
                reply = await c.logon()
                assert reply.msg_type == "A", str(reply)
                assert reply[56] == c.sender and reply.seq == 1
            # uneven, interleaved traffic: each session's numbers depend on its own only
            results = await asyncio.gather(
                *(_ping(c, n) for c, n in zip(clients, (5, 1, 3), strict=True))
            )
            for c, hbs in zip(clients, results, strict=True):
                assert [h.seq for h in hbs] == list(range(2, 2 + len(hbs)))
                assert [h[112] for h in hbs] == [f"{c.sender}-{i}" for i in range(len(hbs))]
            # and once more, in a different order
            for c, n in zip(reversed(clients), (5, 1, 3), strict=True):
                hb = await c.test_request("again")
                assert hb[56] == c.sender
                assert hb.seq == {"CLIENT1": 7, "CLIENT2": 3, "CLIENT3": 5}[c.sender], n
            for c in clients:
                await c.close()

    run(main())


@pytest.mark.parametrize(
    ("sender", "target"),
    [("NOBODY", "GATEWAY"), ("CLIENT1", "ELSEWHERE"), ("client1", "GATEWAY")],
)
def test_unknown_comp_ids_are_disconnected(tmp_path: Path, sender: str, target: str) -> None:
    cfg = make_config(tmp_path, THREE)

    async def main() -> None:
        async with serving(cfg) as s:
            known = await FixClient.connect(s.host, s.port, sender="CLIENT2")
            assert (await known.logon()).msg_type == "A"
            c = await FixClient.connect(s.host, s.port, sender=sender, target=target)
            await c.send("A", [(98, 0), (108, 30)])
            got = await c.expect_closed(3.0)
            assert got == [], [str(m) for m in got]
            # the known session is not affected, and CLIENT1 can still log on
            assert (await known.test_request("x")).seq == 2
            c1 = await FixClient.connect(s.host, s.port, sender="CLIENT1")
            assert (await c1.logon()).msg_type == "A"
            await c1.close()
            await known.close()

    run(main())


def test_second_connection_for_a_logged_on_session_is_refused(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, THREE)

    async def main() -> None:
        async with serving(cfg) as s:
            first = await FixClient.connect(s.host, s.port, sender="CLIENT1")
            assert (await first.logon()).msg_type == "A"
            assert (await first.test_request("before")).seq == 2
            for reset in (False, True):
                dup = await FixClient.connect(s.host, s.port, sender="CLIENT1", next_seq=3)
                await dup.send("A", [(98, 0), (108, 30)] + ([(141, "Y")] if reset else []))
                got = await dup.expect_closed(3.0)
                assert got == [], [str(m) for m in got]
            # the first connection keeps working, with its sequence numbers untouched
            hb = await first.test_request("after")
            assert hb.seq == 3
            assert first.next_seq == 4
            await first.send("5", [])
            logout = await first.recv_type("5")
            assert logout.seq == 4
            await first.expect_closed(3.0)
            # after a clean logout, the session may connect again
            again = await FixClient.connect(s.host, s.port, sender="CLIENT1", next_seq=5)
            reply = await again.logon()
            assert reply.msg_type == "A" and reply.seq == 5
            await again.close()

    run(main())


def test_template_accepts_only_the_listed_comp_ids(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, '[[template]]\nallowed_target_comp_ids = ["A1", "A2"]\n'
    )

    async def main() -> None:
        async with serving(cfg) as s:
            a1 = await FixClient.connect(s.host, s.port, sender="A1")
            a2 = await FixClient.connect(s.host, s.port, sender="A2")
            for c in (a1, a2):
                reply = await c.logon()
                assert reply.msg_type == "A" and reply[56] == c.sender
            assert (await a1.test_request("1"))[56] == "A1"
            assert (await a2.test_request("2"))[56] == "A2"
            a3 = await FixClient.connect(s.host, s.port, sender="A3")
            await a3.send("A", [(98, 0), (108, 30)])
            assert await a3.expect_closed(3.0) == []
            # a template session is one session: a second A1 is a duplicate
            dup = await FixClient.connect(s.host, s.port, sender="A1")
            await dup.send("A", [(98, 0), (108, 30)])
            assert await dup.expect_closed(3.0) == []
            assert (await a1.test_request("3")).seq == 3
            for c in (a1, a2):
                await c.close()

    run(main())


@pytest.mark.parametrize(
    ("allowed", "accepted"),
    [
        (["10.0.0.0/8"], False),
        (["192.168.1.7"], False),
        (["127.0.0.1/32"], True),
        (["10.0.0.0/8", "127.0.0.0/8"], True),
    ],
)
def test_source_address_allow_list(tmp_path: Path, allowed: list[str], accepted: bool) -> None:
    nets = ", ".join(f'"{n}"' for n in allowed)
    cfg = make_config(
        tmp_path, f'[[session]]\ntarget_comp_id = "CLIENT1"\nallowed_addresses = [{nets}]\n'
    )

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port, sender="CLIENT1")
            if accepted:
                assert (await c.logon()).msg_type == "A"
                assert (await c.test_request("ok")).seq == 2
                await c.close()
            else:
                await c.send("A", [(98, 0), (108, 30)])
                assert await c.expect_closed(3.0) == []
                # refused before the session saw anything: its numbers did not move
                session = s.gateway.acceptor.session(
                    next(iter(s.gateway.acceptor._defs))
                )
                assert session is None or (session.next_target, session.next_sender) == (1, 1)

    run(main())


def test_messages_pipelined_behind_the_logon_are_processed(tmp_path: Path) -> None:
    """A Logon and a TestRequest in one TCP segment: both must be processed, in order."""
    cfg = make_config(tmp_path, THREE)

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port, sender="CLIENT1")
            data = c.build("A", [(98, 0), (108, 30)]) + c.build("1", [(112, "pipelined")])
            await c.send_raw(data)
            assert (await c.recv()).msg_type == "A"
            hb = await c.recv(3.0)
            assert (hb.msg_type, hb.get(112), hb.seq) == ("0", "pipelined", 2), str(hb)
            await c.close()

    run(main())

"""Logon authentication: Username (553) + bcrypt-checked Password (554)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import bcrypt
import pytest

from gateway.config import Config
from gateway.fix.session import SessionID
from gateway.store.memory import MemoryStore

from .fixclient import FixClient
from .harness import make_config, run, serving

SID = str(SessionID("FIX.4.4", "GATEWAY", "CLIENT1"))


def _config(tmp_path: Path, password: str = "s3cret") -> Config:
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return make_config(
        tmp_path,
        '[[session]]\ntarget_comp_id = "CLIENT1"\n'
        f'username = "alice"\npassword_hash = "{digest}"\n',
    )


def test_right_credentials_log_on(tmp_path: Path) -> None:
    cfg = _config(tmp_path)

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            reply = await c.logon(username="alice", password="s3cret")
            assert reply.msg_type == "A", str(reply)
            assert 554 not in reply and 553 not in reply
            assert (await c.test_request("t")).seq == 2
            await c.close()

    run(main())


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong"),
        ("mallory", "s3cret"),
        ("alice", None),
        (None, "s3cret"),
        (None, None),
        ("alice", ""),
    ],
)
def test_bad_credentials_do_not_log_on(
    tmp_path: Path, username: str | None, password: str | None
) -> None:
    cfg = _config(tmp_path)

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            body: list[tuple[int, str | int]] = [(98, 0), (108, 30)]
            if username is not None:
                body.append((553, username))
            if password is not None:
                body.append((554, password))
            await c.send("A", body)
            got = await c.expect_closed(5.0)
            assert [m.msg_type for m in got] in ([], ["5"]), [str(m) for m in got]
            session = s.gateway.acceptor.session(SessionID("FIX.4.4", "GATEWAY", "CLIENT1"))
            assert session is not None and not session.is_logged_on
            assert (session.next_sender, session.next_target) == (1, 1)
            # the right password still works afterwards
            ok = await FixClient.connect(s.host, s.port)
            assert (await ok.logon(username="alice", password="s3cret")).seq == 1
            await ok.close()

    run(main())


def test_messages_after_a_pending_logon_wait_for_the_password_check(tmp_path: Path) -> None:
    """Frames sent right behind the Logon (while bcrypt runs) are processed only once it passed,
    and not at all when it failed."""
    cfg = _config(tmp_path)

    async def main() -> None:
        async with serving(cfg) as s:
            c = await FixClient.connect(s.host, s.port)
            data = c.build("A", [(98, 0), (108, 30), (553, "alice"), (554, "s3cret")])
            data += c.build("1", [(112, "right-behind")])
            await c.send_raw(data)
            assert (await c.recv()).msg_type == "A"
            hb = await c.recv_type("0")
            assert hb[112] == "right-behind" and hb.seq == 2
            await c.close()

            bad = await FixClient.connect(s.host, s.port, next_seq=3)
            data = bad.build("A", [(98, 0), (108, 30), (553, "alice"), (554, "nope")])
            data += bad.build("1", [(112, "must-not-answer")])
            await bad.send_raw(data)
            got = await bad.expect_closed(5.0)
            assert all(m.msg_type == "5" for m in got), [str(m) for m in got]

    run(main())


def test_reset_flag_on_a_logon_with_a_wrong_password_does_not_reset(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    store = MemoryStore()

    async def main() -> None:
        async with serving(cfg, store) as s:
            # a normal day: log on, exchange messages, log out -> both sides at 6
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon(username="alice", password="s3cret")).seq == 1
            for i in range(3):
                assert (await c.test_request(f"t{i}")).seq == 2 + i
            await c.send("5", [])
            assert (await c.recv_type("5")).seq == 5
            await c.expect_closed(3.0)
            rec = await store.load(SID)
            assert (rec.next_sender, rec.next_target) == (6, 6)
            stored_before = await store.get_sent(SID, 1, 0)
            assert [seq for seq, _ in stored_before] == [1, 2, 3, 4, 5]

            # an attacker with the wrong password asks for a sequence reset
            bad = await FixClient.connect(s.host, s.port)
            await bad.send("A", [(98, 0), (108, 30), (141, "Y"), (553, "alice"),
                                 (554, "guess")])
            got = await bad.expect_closed(5.0)
            assert "A" not in [m.msg_type for m in got], [str(m) for m in got]
            rec = await store.load(SID)
            assert (rec.next_sender, rec.next_target) == (6, 6)
            assert await store.get_sent(SID, 1, 0) == stored_before

            # the real counterparty continues where it left off
            good = await FixClient.connect(s.host, s.port, next_seq=6)
            reply = await good.logon(username="alice", password="s3cret")
            assert reply.msg_type == "A", str(reply)
            assert reply.seq == 6
            assert 141 not in reply
            assert (await good.test_request("continued")).seq == 7
            await good.close()

    run(main())


def test_password_guessers_cannot_lock_the_real_client_out(tmp_path: Path) -> None:
    """Three guessers loop Logons with wrong passwords from 127.0.0.2 while the real client logs
    on and off from 127.0.0.1: the session is claimed only after the password check (a
    guesser never holds it), and the guessers' failures slow down their own address only.
    Before: the real client logged on once in 73 tries."""
    cfg = _config(tmp_path)

    async def main() -> None:
        async with serving(cfg) as s:
            stop = asyncio.Event()
            guesses = 0

            async def guesser() -> None:
                nonlocal guesses
                while not stop.is_set():
                    try:
                        g = await FixClient.connect(s.host, s.port, local_addr=("127.0.0.2", 0))
                        await g.send("A", [(98, 0), (108, 30), (553, "alice"), (554, "guess")])
                        await g.expect_closed(10.0)
                    except (TimeoutError, OSError):
                        pass
                    guesses += 1

            tasks = [asyncio.create_task(guesser()) for _ in range(3)]
            seq = 1
            try:
                for _ in range(8):
                    c = await FixClient.connect(s.host, s.port, next_seq=seq)
                    reply = await c.logon(username="alice", password="s3cret")
                    assert reply.msg_type == "A", str(reply)
                    await c.send("5", [])
                    await c.recv_type("5")
                    await c.expect_closed(5.0)
                    seq = c.next_seq
            finally:
                stop.set()
                await asyncio.gather(*tasks)
            assert guesses >= 3
            throttle = s.gateway.acceptor.logon_throttle
            assert throttle.delay("127.0.0.2") > 0 and throttle.delay("127.0.0.1") == 0

    run(main(), timeout=120)

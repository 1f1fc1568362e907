"""The acceptor when its store fails (a store double that fails on demand): the Logout that ends
the session follows exactly what the client was written (no gap before it, which QuickFIX would
take as the number of a lost message), what was never stored is numbered again, the client's
messages since the last commit are asked for again, and Logons are answered with a Logout
saying why until the store is back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.fix.session import SessionID
from gateway.store.errors import StoreUnavailable
from gateway.store.memory import MemoryStore
from gateway.store.records import Commit, SessionRecord
from gateway.store.writer import AvailabilityListener

from .fixclient import FixClient
from .harness import make_config, run, serving

SID = SessionID("FIX.4.4", "GATEWAY", "CLIENT1")


class FlakyStore(MemoryStore):
    """A MemoryStore whose commits fail while ``down``; it tells its listeners as the real
    store's writer does."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self._listeners: list[AvailabilityListener] = []

    def add_availability_listener(self, listener: AvailabilityListener) -> None:
        self._listeners.append(listener)

    def fail(self, announce: bool = True) -> None:
        self.down = True
        if announce:
            for listener in self._listeners:
                listener(False, "the test broke it")

    def mend(self) -> None:
        self.down = False
        for listener in self._listeners:
            listener(True, "mended")

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store unavailable: the test broke it")

    async def load(self, session_id: str) -> SessionRecord:
        self._check()
        return await super().load(session_id)

    async def commit(self, unit: Commit) -> None:
        self._check()
        await super().commit(unit)

    async def get_sent(self, session_id: str, begin: int, end: int,
                       limit: int = 1000) -> list[tuple[int, bytes]]:
        self._check()
        return await super().get_sent(session_id, begin, end, limit)

    def stored_seqs(self) -> tuple[int, int]:
        s, t, _ = self._seq[str(SID)]
        return s, t

    def sent_seqs(self) -> Sequence[int]:
        return sorted(self._sent.get(str(SID), {}))


def _config(tmp_path: Path) -> Any:
    return make_config(tmp_path, '[[session]]\ntarget_comp_id = "CLIENT1"\n')


def test_a_failed_commit_ends_the_session_with_a_logout_that_follows_what_was_written(
    tmp_path: Path,
) -> None:
    store = FlakyStore()

    async def main() -> None:
        async with serving(_config(tmp_path), store) as s:
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).seq == 1
            assert (await c.test_request("ok")).seq == 2
            # the commit of the answer to this TestRequest fails (nobody announced the outage:
            # the session finds out by itself)
            store.fail(announce=False)
            await c.send("1", [(112, "lost")])
            got = await c.expect_closed(5.0)
            assert [m.msg_type for m in got] == ["5"], [str(m) for m in got]
            logout = got[0]
            assert logout.seq == 3, "the Heartbeat that was never written is not a gap"
            assert "store unavailable" in (logout.get(58) or "")
            # a Logon meanwhile gets the same answer, numbered on
            store.fail()
            assert s.gateway.acceptor.store_down is not None
            c2 = await FixClient.connect(s.host, s.port, next_seq=c.next_seq)
            reply = await c2.logon()
            assert (reply.msg_type, reply.seq) == ("5", 4)
            assert "store unavailable" in (reply.get(58) or "")
            await c2.expect_closed(5.0)
            # back: the Logouts' numbers are stored, the client's TestRequest (3) is asked for
            store.mend()
            await s.gateway.settled()  # the catch-up after the outage
            assert s.gateway.acceptor.store_down is None
            c3 = await FixClient.connect(s.host, s.port, next_seq=c2.next_seq)
            reply = await c3.logon()
            assert (reply.msg_type, reply.seq) == ("A", 5), str(reply)
            resend = await c3.recv_type("2")
            assert resend[7] == "3", f"the unanswered TestRequest is asked for again: {resend}"
            assert store.stored_seqs()[0] >= 6
            assert 3 not in store.sent_seqs() and 4 not in store.sent_seqs()
            await c3.close()

    run(main())


def test_a_restart_while_the_store_is_down_goes_on_from_the_logouts_written(
    tmp_path: Path,
) -> None:
    """The Logouts written while the store was down count at the client; a gateway restarted
    before the store came back still numbers its Logon reply after them (the journal)."""
    store = FlakyStore()

    async def main() -> None:
        async with serving(_config(tmp_path), store) as s:
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).seq == 1
            store.fail()
            got = await c.expect_closed(5.0)
            assert [(m.msg_type, m.seq) for m in got] == [("5", 2)]
            c2 = await FixClient.connect(s.host, s.port, next_seq=c.next_seq)
            reply = await c2.logon()
            assert (reply.msg_type, reply.seq) == ("5", 3)
            await c2.expect_closed(5.0)
        assert store.stored_seqs()[0] == 2, "the store never heard of the Logouts"
        store.down = False  # back, with a gateway restarted meanwhile
        async with serving(_config(tmp_path), store) as s:
            c3 = await FixClient.connect(s.host, s.port, next_seq=c2.next_seq)
            reply = await c3.logon()
            assert (reply.msg_type, reply.seq) == ("A", 4), str(reply)
            await c3.close()
        assert store.stored_seqs()[0] >= 5  # (a ResendRequest for the refused Logons' numbers)
        assert list((tmp_path / "log").glob("*.unstored-seq")) == [], "the journal's copy went"

    run(main())


def test_without_a_place_to_keep_its_number_no_logout_is_written(tmp_path: Path) -> None:
    """A Logout whose number cannot be kept anywhere (the disk is full too) is not written:
    the connection just ends, and the numbers stay in step."""
    store = FlakyStore()

    async def main() -> None:
        async with serving(_config(tmp_path), store) as s:
            h = await s.gateway.acceptor.handle(SID)
            assert h is not None and h.journal is not None
            (tmp_path / "a-file").write_text("")
            h.journal.directory = tmp_path / "a-file" / "journal"  # cannot be written
            c = await FixClient.connect(s.host, s.port)
            assert (await c.logon()).seq == 1
            store.fail()
            assert await c.expect_closed(5.0) == []
            store.mend()
            await s.gateway.settled()
            c2 = await FixClient.connect(s.host, s.port, next_seq=c.next_seq)
            reply = await c2.logon()
            assert (reply.msg_type, reply.seq) == ("A", 2), str(reply)
            await c2.close()

    run(main())

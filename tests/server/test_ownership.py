"""A gateway node's view of session ownership, in process: a Logon that claims the session of
a node that is gone is served with the numbers that node left (not those loaded at start), and
a template session's first Logon claims it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.app import build_gateway
from gateway.store.store import SessionStore

from .fixclient import FixClient
from .harness import make_config, run

SID = "FIX.4.4:GATEWAY->CLIENT1"


@pytest.mark.parametrize("file_logs", [True, False])
def test_a_logon_that_takes_a_gone_nodes_session_goes_on_from_its_numbers(
    tmp_path: Path, file_logs: bool,
) -> None:
    async def main() -> None:
        url = f"sqlite:///{tmp_path / 'fixgw.db'}"
        cfg = make_config(tmp_path, '[[session]]\ntarget_comp_id = "CLIENT1"\n',
                          gateway_extra='node = "b"\nlease = 300')
        if not file_logs:
            cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(
                update={"log_dir": None})})
        async with SessionStore(url) as a, SessionStore(url) as b_store:
            # node a, on another host, serves the session
            await a.register_node("a", address="a:1", lease_s=0.5, host="elsewhere")
            assert (await a.claim_sessions([SID])).ours == {SID}
            await a.save(SID, sent=[(1, b"x")], next_sender=5, next_target=3)
            gw = build_gateway(cfg, b_store)
            _, port = await gw.start()  # b stands by, its handle of SID loaded now: (5, 3)
            try:
                assert gw.ownership is not None and SID not in gw.ownership.owned
                await a.save(SID, sent=[(9, b"y")], next_sender=20, next_target=15)
                for _ in range(100):  # a stops renewing: its lease runs out
                    if not any(n.node == "a" for n in await b_store.live_nodes()):
                        break
                    await asyncio.sleep(0.05)
                c = await FixClient.connect("127.0.0.1", port, next_seq=15)
                reply = await c.logon()
                assert (reply.msg_type, reply.seq) == ("A", 20), str(reply)
                assert (await b_store.load(SID)).next_sender == 21
                await c.close()
            finally:
                await gw.stop()

    run(main(), timeout=30)


def test_the_first_logon_of_a_template_session_claims_it(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config(tmp_path, '[[template]]\nbegin_string = "FIX.4.4"\n'
                          'allowed_target_comp_ids = ["DESK1"]\n')
        async with SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}") as store:
            gw = build_gateway(cfg, store)
            _, port = await gw.start()
            try:
                c = await FixClient.connect("127.0.0.1", port, sender="DESK1")
                assert (await c.logon()).msg_type == "A"
                await c.close()
                owner = await store.session_owner("FIX.4.4:GATEWAY->DESK1")
                assert owner is not None and gw.ownership is not None
                assert owner.node == gw.ownership.node
            finally:
                await gw.stop()

    run(main(), timeout=30)

"""Where the gateway logs each FIX message (``[gateway] message_log``): with a log_dir, the
QuickFIX-format file log alone by default (the store's message_log table stays empty: the
order path's commits do not carry a second copy); ``both`` or ``store`` on request; a store
without a message log is refused by ``fixgw audit --store`` with a reason, not audited as if
no message had been exchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from orders.support import running
from pydantic import ValidationError
from server.harness import run as run_async

from gateway.config import GatewayConfig, MessageLogTo

from .support import audit

pytestmark = pytest.mark.timeout(60)

LOG = "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"
EVENTS = "FIX.4.4-GATEWAY-CLIENT1.event.current.log"


async def _one_order(tmp_path: Path, message_log: str | None) -> tuple[list[str], str, str]:
    """One filled order through a gateway logging to ``message_log``: the store's
    message_log rows (their message types), the file log's messages and its events."""
    log_dir = tmp_path / "log"
    gateway = {} if message_log is None else {"message_log": message_log}
    async with running(tmp_path, log_dir=log_dir, gateway=gateway) as r:
        c = await r.client("CLIENT1")
        await c.order("O1", qty="0.1", price="99000")
        await c.er(t11="O1", t39="0")
        await c.er(t11="O1", t39="2")
        await c.logout()
    with sqlite3.connect(tmp_path / "fixgw.db") as conn:
        rows = [bytes(d).split(b"\x0135=")[1].split(b"\x01")[0].decode()
                for (d,) in conn.execute("SELECT data FROM message_log ORDER BY id")]
    return rows, (log_dir / LOG).read_text(), (log_dir / EVENTS).read_text()


def test_with_a_log_dir_the_files_alone_log_the_messages(tmp_path: Path) -> None:
    rows, text, events = run_async(_one_order(tmp_path, None))
    assert rows == []
    assert "35=D\x01" in text and text.count("35=8\x01") == 2 and "35=5\x01" in text
    assert events  # (the session's events are in the file log whatever the setting)
    # the audit reads the files, compares the store; the store alone is refused with a reason
    store = f"sqlite:///{tmp_path / 'fixgw.db'}"
    code, out, err = audit(tmp_path / "log", "--store", store)
    assert code == 0, out + err
    assert "compared with" in out
    code, out, err = audit("--store", store)
    assert code == 2
    assert "has no message log rows" in err and "name its log directory" in err


@pytest.mark.parametrize("where", ["both", "store"])
def test_the_store_logs_them_on_request(tmp_path: Path, where: str) -> None:
    rows, text, events = run_async(_one_order(tmp_path, where))
    assert rows.count("D") == 1 and rows.count("8") == 2 and "A" in rows and "5" in rows
    assert ("35=D\x01" in text) is (where == "both")
    assert events
    code, out, err = audit("--store", f"sqlite:///{tmp_path / 'fixgw.db'}")
    assert code == 0, out + err


def test_files_need_a_log_dir() -> None:
    assert GatewayConfig(log_dir=None).message_log_to == MessageLogTo(store=True, files=False)
    assert GatewayConfig().message_log_to == MessageLogTo(store=False, files=True)
    assert GatewayConfig(message_log="both").message_log_to == (True, True)
    with pytest.raises(ValidationError, match="needs a log_dir"):
        GatewayConfig(log_dir=None, message_log="file")

"""Configuration: errors name the key at fault; ``fixgw run`` reports them and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from gateway.app import build_gateway, session_definition
from gateway.config import DEFAULT_CONFIG, ConfigError, load_config
from gateway.fix.session import SessionID
from gateway.store.memory import MemoryStore
from gateway.store.store import SessionStore

REPO = Path(__file__).resolve().parents[2]
FIXGW = Path(sys.executable).with_name("fixgw")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


BAD = {
    "bad-toml": ('[gateway\nport = 1\n', ["not valid TOML"]),
    "unknown-key": (
        '[[session]]\ntarget_comp_id = "C1"\ncolour = "red"\n',
        ["session.0.colour", "Extra inputs are not permitted"],
    ),
    "unknown-gateway-key": ('[gateway]\nprot = 9876\n', ["gateway.prot"]),
    "unknown-table": ('[sessions]\ntarget_comp_id = "C1"\n', ["sessions"]),
    "fixt-without-default-appl-ver-id": (
        '[[session]]\ntarget_comp_id = "C1"\nbegin_string = "FIXT.1.1"\n',
        ["session.0", "default_appl_ver_id"],
    ),
    "bad-bcrypt-hash": (
        '[[session]]\ntarget_comp_id = "C1"\npassword_hash = "plaintext"\n',
        ["session.0.password_hash", "bcrypt"],
    ),
    "bad-network": (
        '[[session]]\ntarget_comp_id = "C1"\nallowed_addresses = ["10.0.0.0/33"]\n',
        ["session.0.allowed_addresses", "10.0.0.0/33"],
    ),
    "not-a-network": (
        '[[template]]\nallowed_target_comp_ids = ["A"]\nallowed_addresses = ["localhost"]\n',
        ["template.0.allowed_addresses", "localhost"],
    ),
    "bad-begin-string": (
        '[[session]]\ntarget_comp_id = "C1"\nbegin_string = "FIX.4.2"\n',
        ["session.0.begin_string"],
    ),
    "port-out-of-range": ('[gateway]\nport = 70000\n', ["gateway.port"]),
    "bad-rate-action": (
        '[[session]]\ntarget_comp_id = "C1"\nrate_action = "ignore"\n',
        ["session.0.rate_action"],
    ),
    "duplicate-session": (
        '[[session]]\ntarget_comp_id = "C1"\n[[session]]\ntarget_comp_id = "C1"\n',
        ["defined twice"],
    ),
    "empty-template": ('[[template]]\nallowed_target_comp_ids = []\n',
                       ["template.0.allowed_target_comp_ids"]),
    "exchange-without-credentials": (
        '[[venue]]\nname = "bn"\nkind = "binance"\n', ["venue.0", "credentials_env"],
    ),
    "ccxt-without-exchange-id": (
        '[[venue]]\nname = "k"\nkind = "ccxt"\ncredentials_env = "K"\n',
        ["venue.0", "exchange_id"],
    ),
    "paper-key-on-exchange": (
        '[[venue]]\nname = "o"\nkind = "okx"\ncredentials_env = "OKX"\nseed = 3\n',
        ["venue.0", "seed", "simulated venue only"],
    ),
    "exchange-key-on-paper": (
        '[[venue]]\nname = "p"\ntestnet = true\n', ["venue.0", "testnet", "exchange venues"],
    ),
    "market-on-exchange": (
        '[[venue]]\nname = "o"\nkind = "okx"\ncredentials_env = "OKX"\n'
        '[[venue.market]]\nsymbol = "BTC/USDT"\n',
        ["venue.0", "market", "simulated venue only"],
    ),
    "market-bad-volatility": (
        '[[venue]]\nname = "p"\n[[venue.market]]\nsymbol = "BTC/USDT"\nvolatility = "-1"\n',
        ["venue.0.market.0.volatility"],
    ),
    "busy-poll-too-long": ('[gateway]\nbusy_poll_us = 1001\n', ["gateway.busy_poll_us", "1000"]),
    "busy-poll-negative": ('[gateway]\nbusy_poll_us = -1\n', ["gateway.busy_poll_us", "0"]),
    "half-a-schedule": (
        '[[session]]\ntarget_comp_id = "C1"\n[session.schedule]\nstart_day = "mon"\n',
        ["session.0.schedule", "start_day and end_day go together"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_config_errors_are_clear(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("case", ["bad-toml", "unknown-key", "bad-bcrypt-hash", "bad-network"])
def test_run_with_a_bad_config_exits_2(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = _write(tmp_path, text)
    proc = subprocess.run(
        [str(FIXGW), "run", "--config", str(path)],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("fixgw: ")
    for part in expected:
        assert part in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_run_with_missing_venue_credentials_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, f'[gateway]\nport = 0\nstore = "sqlite:///{tmp_path}/x.db"\n'
                            'log_dir = "log"\n[[venue]]\nname = "okx"\nkind = "okx"\n'
                            'credentials_env = "FIXGW_TEST_ABSENT"\n[[session]]\n'
                            'target_comp_id = "C1"\ndefault_venue = "okx"\n')
    proc = subprocess.run([str(FIXGW), "run", "--config", str(path)], capture_output=True,
                          text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "fixgw: [[venue]] okx: no API key found in $FIXGW_TEST_ABSENT_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_with_a_missing_config_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(FIXGW), "run", "--config", str(tmp_path / "absent.toml")],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_shipped_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.gateway.sender_comp_id == "GATEWAY"
    assert cfg.gateway.port == 9876
    assert [(s.begin_string, s.target_comp_id) for s in cfg.session] == [
        ("FIX.4.4", "CLIENT1"), ("FIXT.1.1", "CLIENT50")
    ]
    assert cfg.session[1].default_appl_ver_id == "FIX.5.0SP2"
    assert [v.name for v in cfg.venue] == ["paper"]
    assert all(s.default_venue == "paper" for s in cfg.session)
    monkeypatch.chdir(tmp_path)  # log_dir is relative: keep build_gateway's mkdir out of the repo
    gw = build_gateway(cfg, SessionStore(f"sqlite:///{tmp_path / 'x.db'}"))
    assert gw.orders is not None and set(gw.orders.connectors) == {"paper"}
    for sid in (SessionID("FIX.4.4", "GATEWAY", "CLIENT1"),
                SessionID("FIXT.1.1", "GATEWAY", "CLIENT50")):
        assert gw.acceptor.definition_for(sid) is not None
    with pytest.raises(TypeError, match="cannot keep orders"):
        build_gateway(cfg, MemoryStore())


def test_hash_password_output_is_accepted_and_checks(tmp_path: Path) -> None:
    proc = subprocess.run([str(FIXGW), "hash-password"], input="hunter2\n", capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.strip()
    assert bcrypt.checkpw(b"hunter2", digest.encode())
    path = _write(tmp_path, f'[[session]]\ntarget_comp_id = "C1"\npassword_hash = "{digest}"\n')
    cfg = load_config(path)
    d = session_definition(SessionID("FIX.4.4", "GATEWAY", "C1"), cfg.session[0])
    assert d.password_hash == digest.encode()
    assert d.settings.require_authentication


def _paths_config(tmp_path: Path) -> tuple[Path, Path]:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "gw.toml"
    path.write_text(
        "[gateway.tls]\n"
        'cert_file = "tls/server.crt"\nkey_file = "/abs/server.key"\n'
        'client_ca_file = "/abs/ca.crt"\n'
        '[[session]]\ntarget_comp_id = "C1"\ndata_dictionary = "/abs/FIX44.xml"\n'
        '[[session]]\ntarget_comp_id = "C2"\ndata_dictionary = "dd/FIX44.xml"\n'
    )
    return sub, path


def test_relative_paths_are_resolved_against_the_config_file(tmp_path: Path) -> None:
    sub, path = _paths_config(tmp_path)
    cfg = load_config(path)
    tls = cfg.gateway.tls
    assert tls is not None
    assert tls.cert_file == sub / "tls/server.crt"
    assert tls.key_file == Path("/abs/server.key")
    assert cfg.session[1].data_dictionary == sub / "dd/FIX44.xml"


def test_absolute_client_ca_file_is_kept(tmp_path: Path) -> None:
    """An absolute client_ca_file must not be dropped (that silently turns mutual TLS off)."""
    _, path = _paths_config(tmp_path)
    tls = load_config(path).gateway.tls
    assert tls is not None
    assert tls.client_ca_file == Path("/abs/ca.crt")


def test_absolute_data_dictionary_is_kept(tmp_path: Path) -> None:
    _, path = _paths_config(tmp_path)
    assert load_config(path).session[0].data_dictionary == Path("/abs/FIX44.xml")


def test_every_session_setting_comes_from_the_configuration() -> None:
    """A setting is declared once, in the record the code uses (SessionSettings, Limits,
    ValidationSettings); the configuration's key has its name, and every one reaches it."""
    import dataclasses

    from gateway.app import session_definition
    from gateway.config import SessionOptions
    from gateway.fix.session import SessionID, SessionSettings
    from gateway.server.handle import Limits

    internal = {"session_id", "require_authentication", "check_latency", "test_request_factor",
                "appl_ver_id_in_business_reject", "first_message_timeout", "write_chunk",
                "slow_reader_timeout",
                # the configured sessions are the gateway's, acceptors; the initiator's role
                # and HeartBtInt are set by its driver (fixgw client)
                "role", "heartbeat_interval"}
    for record in (SessionSettings, Limits):
        names = {f.name for f in dataclasses.fields(record)} - internal
        missing = sorted(names - set(SessionOptions.model_fields))
        assert not missing, missing
    opts = SessionOptions.model_validate({
        "max_latency": 7.0, "logon_timeout": 3.0, "timestamp_precision": 6,
        "rate_limit": 12.0, "rate_burst": 5, "max_outbound_bytes": 4096,
        "validation": {"max_id_length": 20, "check_values": False},
    })
    d = session_definition(SessionID("FIX.4.4", "GW", "C"), opts)
    s = d.settings
    assert (s.max_latency, s.logon_timeout, s.timestamp_precision) == (7.0, 3.0, 6)
    assert d.settings.validation.max_id_length == 20 and not d.settings.validation.check_values
    limits = d.limits
    assert (limits.rate_limit, limits.rate_burst, limits.max_outbound_bytes) == (12.0, 5, 4096)
    assert d.limits.first_message_timeout == 3.0
    with pytest.raises(ValueError, match="max_id_length"):
        SessionOptions.model_validate({"validation": {"max_id_length": 1000}})


def test_an_empty_log_dir_means_no_file_logs(tmp_path: Path) -> None:
    """TOML has no null: ``log_dir = ""`` says "no file logs" (not the working directory);
    the message log is then the store's. Asking for file logs without a directory is refused."""
    cfg = load_config(_write(tmp_path, '[gateway]\nlog_dir = ""\n'))
    assert cfg.gateway.log_dir is None
    assert cfg.gateway.message_log_to.store and not cfg.gateway.message_log_to.files
    assert load_config(_write(tmp_path, '[gateway]\nlog_dir = "logs"\n')).gateway.log_dir == \
        Path("logs")
    with pytest.raises(ConfigError, match='message_log = "file" needs a log_dir'):
        load_config(_write(tmp_path, '[gateway]\nlog_dir = ""\nmessage_log = "file"\n'))

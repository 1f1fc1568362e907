"""The gateway configuration of the benchmarks (a TOML file in a temporary directory)."""

from __future__ import annotations

from pathlib import Path


def write_config(
    path: Path, *, store: str, log_dir: Path | None, port: int = 0,
    cancel_on_disconnect: str = "off", grace: float = 0.0, sessions: int = 1,
    admin: bool = False, busy_poll_us: int | None = None,
) -> Path:
    """One FIX.4.4 session GATEWAY <-> CLIENT1 on the paper venue, pre-trade checks ON (with
    ``sessions`` > 1: CLIENT1 ... CLIENT<n>, each with the same limits).

    The limits are those of the embedded configuration (gateway/defaults/gateway.toml) except
    max_open_orders (the memory benchmark keeps 20,000 orders open) and the inbound rate limit
    (off: the benchmarks send several thousand orders a second on one session); balances are
    large enough for 20,000 resting buys. ``admin``: the admin API on a loopback port of the
    system's choice (its metrics are fed by the order path's hooks). ``busy_poll_us``: the
    event loop's busy polling (default: the gateway's own, for this store)."""
    log = f'log_dir = "{log_dir}"' if log_dir is not None else ""
    if busy_poll_us is not None:
        log += f"\nbusy_poll_us = {busy_poll_us}"
    blocks = "".join(_session(f"CLIENT{i}", cancel_on_disconnect, grace)
                     for i in range(1, sessions + 1))
    admin_section = '\n[admin]\nhost = "127.0.0.1"\nport = 0\n' if admin else ""
    path.write_text(f"""
[gateway]
host = "127.0.0.1"
port = {port}
sender_comp_id = "GATEWAY"
store = "{store}"
{log}

[[venue]]
name = "paper"
kind = "paper"
seed = 1
balances = {{ BTC = "1000", ETH = "100", SOL = "1000", USDT = "100000000" }}

{blocks}{admin_section}""")
    return path


def _session(target: str, cancel_on_disconnect: str, grace: float) -> str:
    return f"""
[[session]]
target_comp_id = "{target}"
begin_string = "FIX.4.4"
default_venue = "paper"
cancel_on_disconnect = "{cancel_on_disconnect}"
cancel_on_disconnect_grace = {grace}
rate_limit = 0

[session.risk]
max_order_qty = "100"
max_notional = "1000000"
price_band = "0.10"
max_open_orders = 1000000
"""

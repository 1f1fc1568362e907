#!/usr/bin/env python3
"""Run venue emulators on loopback, by hand (test doubles: the gateway never loads them).

    .venv/bin/python scripts/emulator.py all --config emulators.toml   # all three, one config
    .venv/bin/python scripts/emulator.py binance --port 18080
    .venv/bin/python scripts/emulator.py okx --port 18081 --key k --secret s --passphrase p

Each prints the URLs to put in a ``[[venue]]`` entry (``urls = {...}``, ``testnet = false``)
and the credentials it accepts. With ``--config FILE`` it also writes a gateway configuration
that trades on them (one ``[[venue]]`` per emulator, the credentials in a secrets file beside
it, the sessions CLIENT1 and CLIENT50 on port 9876, the admin API on 9877), so that
``fixgw run --config FILE`` and ``fixgw venue-check --config FILE --venue binance`` work as
they are. It runs until interrupted (SIGINT, SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.common.credentials import Credentials  # noqa: E402
from emulators import KINDS, emulator_class  # noqa: E402


def gateway_config(urls: dict[str, dict[str, str]], secrets: Path) -> str:
    """A gateway configuration trading on the emulators at ``urls`` (kind -> urls)."""
    lines = ["# written by scripts/emulator.py: the gateway on the venue emulators",
             "[gateway]", 'host = "127.0.0.1"', "port = 9876", 'sender_comp_id = "GATEWAY"',
             'store = "sqlite:///data/emulators.db"', 'log_dir = "data/log"', "",
             "[admin]", 'host = "127.0.0.1"', "port = 9877", ""]
    for kind, u in urls.items():
        pairs = ", ".join(f'{k} = "{v}"' for k, v in sorted(u.items()))
        lines += ["[[venue]]", f'name = "{kind}"', f'kind = "{kind}"',
                  f'secrets_file = "{secrets.name}"', f"urls = {{ {pairs} }}",
                  "dead_man_switch = 0", ""]
    names = ", ".join(f'"{k}"' for k in urls)
    first = next(iter(urls))
    for target, begin in (("CLIENT1", "FIX.4.4"), ("CLIENT50", "FIXT.1.1")):
        lines += ["[[session]]", f'target_comp_id = "{target}"', f'begin_string = "{begin}"']
        if begin == "FIXT.1.1":
            lines.append('default_appl_ver_id = "FIX.5.0SP2"')
        lines += [f'default_venue = "{first}"', f"venues = [{names}]", ""]
    return "\n".join(lines)


def write_config(config: Path, urls: dict[str, dict[str, str]], creds: Credentials) -> Path:
    """The gateway configuration at ``config``, its credentials beside it (returned)."""
    secrets = config.with_name(config.stem + "-secrets.toml")
    secrets.write_text(f'api_key = "{creds.api_key}"\napi_secret = "{creds.secret}"\n'
                       f'passphrase = "{creds.passphrase or ""}"\n')
    secrets.chmod(0o600)
    config.write_text(gateway_config(urls, secrets))
    return secrets


async def serve(kinds: list[str], port: int, creds: Credentials, config: Path | None) -> None:
    started = []
    urls: dict[str, dict[str, str]] = {}
    try:
        for i, kind in enumerate(kinds):
            emu = emulator_class(kind)(creds)  # type: ignore[call-arg]
            await emu.start(port + i if port else 0)
            started.append(emu)
            urls[kind] = dict(emu.urls)
            print(f"{kind} emulator on 127.0.0.1:{emu.port}: urls = {emu.urls}", flush=True)
        print(f"credentials: api_key {creds.api_key} (secret and passphrase as given)",
              flush=True)
        if config is not None:
            secrets = write_config(config, urls, creds)
            print(f"wrote {config} (and {secrets.name}): fixgw run --config {config}",
                  flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        print("ready", flush=True)
        await stop.wait()
    finally:
        for emu in started:
            await emu.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", nargs="+", choices=[*KINDS, "all"],
                    help="the venues to emulate (all: binance, okx and bybit)")
    ap.add_argument("--port", type=int, default=0,
                    help="the first one's port, the next ones' after it (0: any free ones)")
    ap.add_argument("--key", default="emulator-key")
    ap.add_argument("--secret", default="emulator-secret")
    ap.add_argument("--passphrase", default="emulator-passphrase")
    ap.add_argument("--config", type=Path, metavar="FILE",
                    help="write a gateway configuration that trades on the emulators")
    args = ap.parse_args()
    kinds = list(KINDS) if "all" in args.kind else list(dict.fromkeys(args.kind))
    creds = Credentials(api_key=args.key, secret=args.secret, passphrase=args.passphrase)
    asyncio.run(serve(kinds, args.port, creds, args.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

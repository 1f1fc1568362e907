#!/usr/bin/env python3
"""Run a venue's emulator on loopback, by hand (a test double: the gateway never loads it).

    .venv/bin/python scripts/emulator.py binance --port 18080
    .venv/bin/python scripts/emulator.py okx --port 18081 --key k --secret s --passphrase p

It prints the URLs to put in a ``[[venue]]`` entry (``urls = {...}``, ``testnet = false``) and
the credentials it accepts (export them as ``<PREFIX>_API_KEY`` ... for ``credentials_env``);
it runs until interrupted.
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


async def serve(kind: str, port: int, creds: Credentials) -> None:
    emu = emulator_class(kind)(creds)  # type: ignore[call-arg]
    await emu.start(port)
    print(f"{kind} emulator on 127.0.0.1:{emu.port}: urls = {emu.urls}", flush=True)
    print(f"credentials: api_key {creds.api_key} (secret and passphrase as given)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emu.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", default="emulator-key")
    ap.add_argument("--secret", default="emulator-secret")
    ap.add_argument("--passphrase", default="emulator-passphrase")
    args = ap.parse_args()
    creds = Credentials(api_key=args.key, secret=args.secret,
                        passphrase=args.passphrase if args.kind == "okx" else None)
    asyncio.run(serve(args.kind, args.port, creds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

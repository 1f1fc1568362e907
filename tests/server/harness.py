"""Starting an in-process acceptor for a test: a TOML snippet -> config -> gateway -> port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.app import Gateway, build_gateway, tls_context
from gateway.config import Config, load_config
from gateway.server.ports import Application, SessionStorePort
from gateway.store.memory import MemoryStore

T = TypeVar("T")


def gateway_toml(tmp_path: Path, sessions: str, *, gateway_extra: str = "") -> str:
    """A complete configuration: port 0, memory store, file logs in ``tmp_path``."""
    return (
        "[gateway]\n"
        'host = "127.0.0.1"\n'
        "port = 0\n"
        'sender_comp_id = "GATEWAY"\n'
        'store = "memory:"\n'
        f'log_dir = "{tmp_path / "log"}"\n'
        f"{gateway_extra}\n"
        f"{sessions}\n"
    )


def make_config(tmp_path: Path, sessions: str, *, gateway_extra: str = "") -> Config:
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_toml(tmp_path, sessions, gateway_extra=gateway_extra))
    return load_config(path)


@dataclass
class Served:
    gateway: Gateway
    host: str
    port: int


@asynccontextmanager
async def serving(
    cfg: Config, store: SessionStorePort | None = None, app: Application | None = None
) -> AsyncIterator[Served]:
    """Run the configured acceptor on 127.0.0.1, an ephemeral port, for the ``async with``."""
    gw = build_gateway(cfg, store if store is not None else MemoryStore(), app)
    ctx = tls_context(cfg.gateway.tls) if cfg.gateway.tls is not None else None
    host, port = await gw.acceptor.start("127.0.0.1", 0, ctx)
    gw.watch_store()
    try:
        yield Served(gw, host, port)
    finally:
        await gw.acceptor.stop()
        await _connections_finished()


async def _connections_finished(wait: float = 3.0) -> None:
    """``Acceptor.stop`` aborts the connections but returns before their handlers have run
    ``_finish``; wait for those tasks, or the loop's shutdown cancels them and asyncio logs
    noise."""
    handlers = [
        t for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "Acceptor._on_client"
    ]
    if handlers:
        await asyncio.wait(handlers, timeout=wait)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a test coroutine on a fresh event loop, bounded by ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))

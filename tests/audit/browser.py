"""Debian's Chromium, headless, driven over the DevTools protocol (aiohttp's WebSocket client:
no other dependency), for tests that look at an HTML page as a person would (STYLE 19).

Started as this machine's notes say it must be (--headless --no-sandbox --disable-gpu
--disable-quic --no-first-run --disable-background-networking --disable-component-update
--disable-sync, a fresh --user-data-dir). :func:`require_browser` skips the test when Chromium
is not installed (``scripts/setup.sh --dev`` installs it as root), or fails it when
``REQUIRE_BROWSER=1``.
"""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1280,1600"]


def chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_browser() -> str:
    path = chromium()
    if path is None:
        message = "Chromium is not installed (scripts/setup.sh --dev installs Debian's chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message} (REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(message)
    return path


class Page:
    """One tab: navigate, evaluate JavaScript, take a screenshot."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        n = next(self._ids)
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"DevTools connection: {msg.type}")
                data = json.loads(msg.data)
                if data.get("id") == n:
                    if "error" in data:
                        raise AssertionError(f"{method}: {data['error']}")
                    result: dict[str, Any] = data.get("result", {})
                    return result

    async def open(self, url: str) -> None:
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)
        for _ in range(200):  # bounded poll of the document's state
            if await self.js("document.readyState") == "complete":
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{url} did not load")

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 6000), "scale": 1}
            params["captureBeyondViewport"] = True
        data = await self.call("Page.captureScreenshot", **params)
        path.write_bytes(base64.b64decode(data["data"]))  # noqa: ASYNC240 - a test's file
        return path


@asynccontextmanager
async def browser(tmp: Path) -> AsyncIterator[Page]:
    """Chromium with a fresh profile under ``tmp``; one page."""
    exe = require_browser()
    profile = tmp / "chromium-profile"
    proc = await asyncio.create_subprocess_exec(
        exe, *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        endpoint = None
        async with asyncio.timeout(30):
            while endpoint is None:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("Chromium exited before DevTools listened")
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m:
                    endpoint = m.group(1)
        port = endpoint.split(":")[2].split("/")[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(page_ws, max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

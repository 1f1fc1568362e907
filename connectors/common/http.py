"""REST requests to a venue: rate limits, timeouts, 429/418 and 5xx, classified for the gateway.

The outcome of every request is one of:

* a :class:`RestResponse` (any 2xx or 4xx other than 429/418: the venue answered, and the
  connector reads its error code);
* :class:`~connectors.base.VenueUnavailable` — definitely not executed: the connection could not
  be made, the key is banned (418), or the request never left because of our own rate limit;
* :class:`~connectors.base.VenueAmbiguous` — a request that changes state (``mutating``) timed
  out, lost its connection, or got a 5xx: it may have been executed (Invariant 3);
* a :class:`~connectors.base.VenueRejected` with ``RATE_LIMIT`` when 429s kept coming for longer
  than ``max_429_wait_s``: the venue refused it every time, so nothing happened.

Requests are prepared (and signed) by a callable at the moment they are sent, so a retry after a
429 carries a fresh timestamp and signature.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from connectors.base import RejectReason, VenueAmbiguous, VenueRejected, VenueUnavailable
from connectors.common.backoff import Backoff
from connectors.common.ratelimit import Priority, RateLimited, RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    method: str
    path: str
    query: str = ""
    """Already encoded (the exact string that was signed)."""
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Retry-After in seconds (RFC 9110 delay-seconds; an HTTP date is not used by venues)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class RestClient:
    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        limiter: RateLimiter | None = None,
        timeout_s: float = 10.0,
        on_headers: Callable[[int, Mapping[str, str]], None] | None = None,
        max_429_wait_s: float = 30.0,
        ban_default_s: float = 120.0,
        get_retries: int = 2,
        backoff: Backoff | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.limiter = limiter or RateLimiter()
        self.timeout_s = timeout_s
        self.on_headers = on_headers
        self.max_429_wait_s = max_429_wait_s
        self.ban_default_s = ban_default_s
        self.get_retries = get_retries
        self._backoff = backoff or Backoff(0.1, 2.0)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.rate_limited = 0
        """429s received (for tests and health)."""
        self.errors = 0
        """Requests that got no answer (connection refused or lost, timeout), a 5xx or a ban."""
        self.last_answer: float | None = None
        """When the venue last answered (``time.monotonic()``; any status below 500)."""
        self.last_error: str | None = None
        """The last failure (None once the venue answers again)."""
        self.last_error_at = 0.0
        """When it happened (``time.monotonic()``)."""

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        prepare: Callable[[], Prepared],
        *,
        costs: Mapping[str, int] | None = None,
        priority: Priority = Priority.BACKGROUND,
        mutating: bool = False,
    ) -> RestResponse:
        waited_429 = 0.0
        failures = 0
        while True:
            if self.limiter.banned:
                raise VenueUnavailable(
                    f"{self.name}: banned by the venue for {self.limiter.banned_for:.0f} s more"
                )
            try:
                await self.limiter.acquire(costs or {}, priority,
                                           max_wait_s=self.max_429_wait_s - waited_429)
            except RateLimited as exc:
                if waited_429:
                    raise VenueRejected(RejectReason.RATE_LIMIT,
                                        f"{self.name} kept answering 429") from None
                raise VenueUnavailable(f"{self.name}: {exc}") from None
            req = prepare()
            url = self.base_url + req.path + (f"?{req.query}" if req.query else "")
            self.requests += 1
            started = time.monotonic()
            try:
                async with self.session.request(
                    req.method, url, data=req.body, headers=dict(req.headers)
                ) as resp:
                    body = await resp.read()
                    status, headers = resp.status, resp.headers
            except aiohttp.ClientConnectorError as exc:
                self._error(f"cannot connect: {exc}")
                raise VenueUnavailable(f"{self.name}: cannot connect: {exc}") from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                self._error(f"{type(exc).__name__} {exc}".strip())
                failures = await self._failed(
                    f"{req.method} {req.path}: {type(exc).__name__} {exc}", mutating, failures)
                continue
            if status < 500:
                self.last_answer, self.last_error = time.monotonic(), None
            if self.on_headers is not None:
                self.on_headers(status, headers)
            if status == 429:
                self.rate_limited += 1
                wait = retry_after(headers, 1.0)
                self.limiter.block_for(wait)
                log.warning("%s: 429 on %s %s, retrying after %.1f s", self.name, req.method,
                            req.path, wait)
                if waited_429 + wait > self.max_429_wait_s:
                    raise VenueRejected(RejectReason.RATE_LIMIT,
                                        f"{self.name} answered 429 for {waited_429:.0f} s")
                waited_429 += max(wait, time.monotonic() - started)
                continue
            if status == 418:
                ban = retry_after(headers, self.ban_default_s)
                self._error(f"banned for {ban:.0f} s (418)")
                self.limiter.ban_for(ban)
                log.error("%s: the venue BANNED this key/IP for %.0f s (418); nothing is sent "
                          "until then", self.name, ban)
                raise VenueUnavailable(f"{self.name}: banned by the venue for {ban:.0f} s")
            if status >= 500:
                self._error(f"HTTP {status}")
                failures = await self._failed(f"{req.method} {req.path}: HTTP {status} "
                                              f"{body[:200]!r}", mutating, failures)
                continue
            self._backoff.reset()
            return RestResponse(status, headers, body)

    def _error(self, what: str) -> None:
        self.errors += 1
        # (a signed request's query carries its signature: never kept, never shown)
        self.last_error = re.sub(r"\?\S*", "?...", what)
        self.last_error_at = time.monotonic()

    def failing(self, now: float | None = None) -> str | None:
        """The last failure while it says how the venue is: the venue has not answered since
        and it is recent (within a request's timeout); else None. One 5xx or timeout of a
        venue nothing is sent to afterwards does not leave it failing for good (a ban is
        the rate limiter's, for as long as it runs)."""
        if self.last_error is None:
            return None
        if (time.monotonic() if now is None else now) - self.last_error_at > self.timeout_s:
            return None
        return self.last_error

    async def _failed(self, what: str, mutating: bool, failures: int) -> int:
        """A timeout, a lost connection or a 5xx: the request may have been executed, so one
        that changes state is ambiguous; a query is retried after a backoff, ``get_retries``
        times at most. Returns the failures counted so far."""
        what = f"{self.name}: {what}"
        if mutating:
            raise VenueAmbiguous(what) from None
        failures += 1
        if failures > self.get_retries:
            raise VenueUnavailable(what) from None
        await asyncio.sleep(self._backoff.next())
        return failures

"""How a native connector is configured (built by the gateway from a ``[[venue]]`` entry, or by
a test pointing it at an emulator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.common.credentials import Credentials


@dataclass(frozen=True, slots=True)
class VenueSettings:
    name: str
    credentials: Credentials
    testnet: bool = False
    """The venue's testnet (demo) endpoints instead of production."""
    urls: Mapping[str, str] = field(default_factory=dict)
    """Overrides of the venue's endpoints by the connector's own keys (``rest``,
    ``ws_private``, ``ws_api``, ...); an emulator's ``urls`` property gives them."""
    markets: frozenset[str] = frozenset({"spot"})
    """Which of the venue's markets to load: ``spot`` and/or ``perpetual``."""
    symbols: tuple[str, ...] | None = None
    """Canonical symbols to trade (None: every instrument of the markets loaded)."""
    dead_man_s: float | None = 60.0
    """The venue-side dead-man switch (cancel-all-after) timeout, refreshed while the gateway
    runs; None disables it. Ignored where the venue has none for the markets traded."""
    recv_window_ms: int = 5000
    request_timeout_s: float = 10.0
    max_429_wait_s: float = 30.0
    """How long requests keep retrying through 429s before the order is refused."""
    stream_idle_timeout_s: float = 60.0
    """No message at all (not even a pong) for this long: the stream is reconnected."""
    reconnect_base_s: float = 0.2
    reconnect_cap_s: float = 30.0
    book_refresh_s: float = 600.0
    """A public book is resynchronised from a new snapshot this often even without a gap:
    levels no diff touched would otherwise stay as the first snapshot had them."""
    book_depth: int = 1000
    """Levels a side asked of a venue's REST book snapshot."""

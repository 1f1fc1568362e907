"""The synthetic market of one instrument: a mid price and a market maker quoting around it.

The mid follows a seeded random walk in whole ticks (the random draw is the only float; the mid
is ``Decimal`` on the tick grid), or replays a recorded path of ``(ts_ns, mid)`` points. The
market maker keeps ``levels`` price levels per side, ``level_size`` each, the best
``half_spread_ticks`` away from the mid and ``level_step_ticks`` apart. Its orders live in the
venue's :class:`~connectors.paper.book.OrderBook` like anyone's (owner ``None``): when a quote
lands on our resting orders they trade, at our price, and our order is the maker.

The market maker is not an account: its side of a trade produces no event and no balance.

Synthetic trade flow (off by default): each tick, a Poisson number of outside takers with mean
``trade_rate`` (:meth:`SyntheticMarket.draw_trades`), each a market order buying or selling with
even odds, of an exponentially distributed size with mean ``trade_size`` (on the lot grid, at
least one lot). They cross the book like anyone's order: the market maker's quotes, and our
resting orders when they are the best. The draws come from a generator of their own (seeded
with the venue's seed and the symbol), so turning the flow on does not change the mid's path.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Generic

from connectors.base import Instrument, InstrumentKind, Side
from connectors.paper.book import BookOrder, CapCallback, FillCallback, O, OrderBook


def round_to_tick(value: Decimal, tick: Decimal, rounding: str = ROUND_FLOOR) -> Decimal:
    """``value`` on the ``tick`` grid (rounded down unless told otherwise)."""
    return (value / tick).to_integral_value(rounding=rounding) * tick


def round_up_to_tick(value: Decimal, tick: Decimal) -> Decimal:
    return round_to_tick(value, tick, ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class MarketConfig:
    instrument: Instrument
    mid: Decimal
    """Starting mid (rounded to the tick)."""
    levels: int = 10
    """Market-maker levels per side; 0 leaves the book to our own orders."""
    level_size: Decimal = Decimal("1")
    half_spread_ticks: int = 1
    level_step_ticks: int = 1
    volatility: Decimal = Decimal("0.00002")
    """Standard deviation of one tick's relative mid move (0: the mid stays put)."""
    path: Sequence[tuple[int, Decimal]] | None = None
    """A recorded market: ``(ts_ns, mid)`` points, ascending; replaces the random walk. The mid
    at time ``t`` is that of the last point at or before ``t`` (the first point before it)."""
    trade_rate: Decimal = Decimal(0)
    """Synthetic trades: their mean number per tick (0: none; module docstring)."""
    trade_size: Decimal | None = None
    """The mean size of a synthetic trade (None: a tenth of ``level_size``)."""


def _spot(base: str, quote: str, tick: str, lot: str, min_notional: str) -> Instrument:
    return Instrument(
        symbol=f"{base}/{quote}",
        venue_symbol=f"{base}-{quote}",
        base=base,
        quote=quote,
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        min_qty=Decimal(lot),
        min_notional=Decimal(min_notional),
    )


BTC_USDT = _spot("BTC", "USDT", "0.01", "0.00001", "5")
ETH_USDT = _spot("ETH", "USDT", "0.01", "0.0001", "5")
SOL_USDT = _spot("SOL", "USDT", "0.01", "0.001", "5")
BTC_USDT_PERP = Instrument(
    symbol="BTC/USDT:USDT",
    venue_symbol="BTC-USDT-PERP",
    base="BTC",
    quote="USDT",
    kind=InstrumentKind.PERPETUAL,
    settle="USDT",
    tick_size=Decimal("0.1"),
    lot_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    min_notional=Decimal("5"),
)


def default_markets() -> tuple[MarketConfig, ...]:
    """BTC, ETH and SOL spot against USDT and the BTC linear perpetual, near late-2026 prices."""
    return (
        MarketConfig(BTC_USDT, Decimal("97000"), level_size=Decimal("0.5")),
        MarketConfig(ETH_USDT, Decimal("3400"), level_size=Decimal("5")),
        MarketConfig(SOL_USDT, Decimal("180"), level_size=Decimal("50")),
        MarketConfig(BTC_USDT_PERP, Decimal("97000"), level_size=Decimal("1")),
    )


def read_recorded(lines: Iterable[str], start_ns: int) -> list[tuple[int, Decimal]]:
    """A recorded market from CSV lines ``timestamp,mid`` (:func:`read_points`), shifted so
    that its first point is at ``start_ns`` (it replays at the recorded pace from there)."""
    points = read_points(lines, "mid")
    shift = start_ns - points[0][0]
    return [(ts + shift, mid) for ts, mid in points]


def read_points(lines: Iterable[str], value: str) -> list[tuple[int, Decimal]]:
    """Recorded market data: CSV lines ``timestamp,<value>`` (a mid: positive; a volume: not
    negative), in time order.

    A timestamp is integer nanoseconds since the epoch or an ISO 8601 time with its offset
    (``2026-11-20T10:00:00.250Z``); a first line that is not a point is a header; blank lines
    and ``#`` comments are skipped. Raises ValueError naming the line at fault.
    """
    positive = value == "mid"
    points: list[tuple[int, Decimal]] = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        cells = [c.strip() for c in text.split(",")]
        try:
            if len(cells) != 2:
                raise ValueError(f"expected two cells: timestamp,{value}")
            ts = _timestamp_ns(cells[0])
            v = Decimal(cells[1])
            if not v.is_finite() or v < 0 or (positive and v == 0):
                kind = "a positive number" if positive else "a number, not negative"
                raise ValueError(f"{value} must be {kind}, not {cells[1]!r}")
        except (ValueError, ArithmeticError) as exc:
            if not points and n == 1:
                continue  # a header
            raise ValueError(f"line {n}: {exc}") from None
        if points and ts < points[-1][0]:
            raise ValueError(f"line {n}: timestamps must not go back in time")
        points.append((ts, v))
    if not points:
        raise ValueError("no points")
    return points


def _timestamp_ns(cell: str) -> int:
    if cell.isdigit():
        return int(cell)
    when = datetime.fromisoformat(cell.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"a timestamp needs its UTC offset: {cell!r}")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


class SyntheticMarket(Generic[O]):
    """Mid price and market-maker quotes of one instrument."""

    def __init__(self, config: MarketConfig, seed: int) -> None:
        inst = config.instrument
        if config.levels < 0 or config.half_spread_ticks < 1 or config.level_step_ticks < 1:
            raise ValueError("levels >= 0, half_spread_ticks >= 1 and level_step_ticks >= 1")
        if config.path is not None:
            if not config.path:
                raise ValueError("a recorded path needs at least one point")
            if any(a[0] > b[0] for a, b in zip(config.path, config.path[1:], strict=False)):
                raise ValueError("a recorded path must be in time order")
        self.config = config
        self.tick_size = inst.tick_size
        self.size = round_to_tick(config.level_size, inst.lot_size)
        if config.levels and self.size <= 0:
            raise ValueError("level_size rounds to zero lots")
        if config.trade_rate < 0 or (config.trade_size is not None and config.trade_size <= 0):
            raise ValueError("trade_rate >= 0 and trade_size > 0")
        self._rng = random.Random(f"{seed}/{inst.symbol}")  # noqa: S311 - simulation, not crypto
        self._flow = random.Random(f"{seed}/{inst.symbol}/trades")  # noqa: S311 - simulation
        self._trade_rate = float(config.trade_rate)
        mean = config.trade_size if config.trade_size is not None else config.level_size / 10
        self._lot = inst.lot_size
        self._mean_lots = float(mean / inst.lot_size) if inst.lot_size > 0 else float(mean)
        self._path_ts = [ts for ts, _ in config.path] if config.path else []
        start = config.path[0][1] if config.path else config.mid
        self._floor = (
            config.half_spread_ticks + config.levels * config.level_step_ticks + 1
        ) * self.tick_size
        self.mid = max(round_to_tick(start, self.tick_size), self._floor)
        # sigma of one step, in ticks (a float only feeds the random draw)
        self._sigma_ticks = float(config.volatility * self.mid / self.tick_size)
        self.quotes: dict[tuple[Side, Decimal], BookOrder[O]] = {}

    # ---- the mid -------------------------------------------------------------------------------

    def advance(self, now_ns: int) -> Decimal:
        """Move the mid to time ``now_ns`` and return it."""
        path = self.config.path
        if path:
            i = bisect_right(self._path_ts, now_ns) - 1
            mid = path[max(i, 0)][1]
        elif self._sigma_ticks > 0:
            step = round(self._rng.gauss(0.0, self._sigma_ticks))
            mid = self.mid + step * self.tick_size
        else:
            return self.mid
        self.mid = max(round_to_tick(mid, self.tick_size), self._floor)
        return self.mid

    def draw_trades(self) -> list[tuple[Side, Decimal]]:
        """This tick's synthetic takers (module docstring): (side, quantity) each."""
        rate = self._trade_rate
        if rate <= 0:
            return []
        out: list[tuple[Side, Decimal]] = []
        rng = self._flow
        at = rng.expovariate(rate)  # arrivals within the tick (a Poisson count)
        while at < 1.0:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            lots = max(1, round(rng.expovariate(1.0) * self._mean_lots))
            out.append((side, lots * self._lot if self._lot > 0 else Decimal(lots)))
            at += rng.expovariate(rate)
        return out

    def targets(self) -> list[tuple[Side, Decimal]]:
        """The market maker's quote prices around the current mid, best first per side."""
        cfg, tick = self.config, self.tick_size
        out: list[tuple[Side, Decimal]] = []
        for i in range(cfg.levels):
            off = (cfg.half_spread_ticks + i * cfg.level_step_ticks) * tick
            out.append((Side.BUY, self.mid - off))
            out.append((Side.SELL, self.mid + off))
        return out

    # ---- the market maker ----------------------------------------------------------------------

    def requote(
        self, book: OrderBook[O], on_fill: FillCallback[O], cap: CapCallback[O] | None = None
    ) -> list[BookOrder[O]]:
        """Quote around the current mid: withdraw quotes that are off it, top up the rest, add
        the missing ones (which trade first with whatever of ours they cross). Returns the
        reduce-only orders of ours the book dropped meanwhile (see :meth:`OrderBook.match`)."""
        targets = self.targets()
        wanted = set(targets)
        for key in [k for k in self.quotes if k not in wanted]:
            order = self.quotes.pop(key)
            book.remove(order)
        dropped: list[BookOrder[O]] = []
        for key in targets:
            self._refill(book, key, on_fill, cap, dropped)
        return dropped

    def replenish(
        self,
        book: OrderBook[O],
        taken: Iterable[BookOrder[O]],
        on_fill: FillCallback[O],
        cap: CapCallback[O] | None = None,
    ) -> list[BookOrder[O]]:
        """Restore quotes that were taken (one pass); returns dropped orders like requote."""
        dropped: list[BookOrder[O]] = []
        for order in taken:
            key = (order.side, order.price)
            if self.quotes.get(key) is order:
                self._refill(book, key, on_fill, cap, dropped)
        return dropped

    def _refill(
        self,
        book: OrderBook[O],
        key: tuple[Side, Decimal],
        on_fill: FillCallback[O],
        cap: CapCallback[O] | None,
        dropped: list[BookOrder[O]],
    ) -> None:
        existing = self.quotes.get(key)
        if existing is not None and existing.live:
            if existing.remaining >= self.size:
                return
            if book.is_last_in_level(existing):  # nobody behind: topping up loses no one's place
                existing.remaining = self.size
                return
            book.remove(existing)
        side, price = key
        order: BookOrder[O] = BookOrder(side, price, self.size)
        dropped += book.match(order, price, on_fill, cap).dropped
        if order.remaining > 0:
            book.rest(order)
        self.quotes[key] = order

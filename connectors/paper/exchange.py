"""The paper exchange's core: one account, its orders, matching, settlement and events.

Synchronous and free of I/O: every operation takes the time (UTC ns) as an argument and appends
what happened to an event list the caller drains (:meth:`PaperExchange.drain_events`). The
asyncio face, faults and the event stream are :class:`connectors.paper.venue.PaperConnector`.

Every trade at the book is a public trade (:meth:`PaperExchange.drain_prints`): ours (with the
trade id of our fill) and those between an outside taker and the market maker (ids ``M1``,
``M2``...), with the taker's side as the aggressor. Outside takers are the synthetic trade flow
of :meth:`PaperExchange.tick` (``MarketConfig.trade_rate``) and
:meth:`PaperExchange.trade_against`.

Accounting (all ``Decimal``, exact for spot):

* spot buy: locks ``remaining x limit`` of the quote asset (a market buy's limit is its
  protection price), spot sell: locks ``remaining`` of the base asset; a fill releases its share
  of the lock, pays ``qty x price`` and delivers the other asset less the fee: the fee is taken
  from the asset received, the base on a buy (``qty x rate``) and the quote on a sell
  (``qty x price x rate``), as Binance (its commission FAQ: "the received amount"), Bybit (Spot
  Fee Currency Instruction, positive fee rates) and OKX (``feeCcy``) charge spot fills; closing
  the order releases what is left;
* perpetual: locks ``remaining x price x (1 / leverage + max fee rate)`` of the settle asset
  (reduce-only orders lock nothing); a fill moves the margin of what it opens into the position
  (isolated), realises the PnL of what it closes, and pays its fee. There is no liquidation
  engine: a loss beyond what the account holds is absorbed (counted in :attr:`absorbed`) rather
  than driving a balance negative.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from operator import attrgetter
from typing import Final

from connectors.base import (
    AmendRequest,
    Balance,
    ClientOrderIdRules,
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    PublicTrade,
    RejectReason,
    Side,
    TimeInForce,
    VenueEvent,
    VenueRejected,
    VenueStatus,
)
from connectors.paper.book import BookOrder, OrderBook, StopBook
from connectors.paper.config import PaperConfig
from connectors.paper.market import SyntheticMarket, round_up_to_tick

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_PERPETUAL: Final = InstrumentKind.PERPETUAL
_MAKER: Final = Liquidity.MAKER
_TAKER: Final = Liquidity.TAKER
_LIMIT: Final = OrderType.LIMIT
_MARKET: Final = OrderType.MARKET
_STOP: Final = OrderType.STOP
_STOP_LIMIT: Final = OrderType.STOP_LIMIT
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_DAY: Final = TimeInForce.DAY
_FOK: Final = TimeInForce.FOK
_GTD: Final = TimeInForce.GTD
_IOC: Final = TimeInForce.IOC
_CANCELED: Final = VenueStatus.CANCELED
_EXPIRED: Final = VenueStatus.EXPIRED
_FILLED: Final = VenueStatus.FILLED
_NEW: Final = VenueStatus.NEW
_PARTIALLY_FILLED: Final = VenueStatus.PARTIALLY_FILLED
_PENDING: Final = VenueStatus.PENDING

ZERO = Decimal(0)
ONE = Decimal(1)
DAY_NS = 86_400 * 1_000_000_000
CLIENT_ORDER_ID_RULES = ClientOrderIdRules(36, r"^[A-Za-z0-9_-]+$")
PRINTS_KEPT = 100_000
"""Public trades kept until drained (the oldest go beyond: nobody may be reading them)."""

_MARKET_LIKE = (OrderType.MARKET, OrderType.STOP)


@dataclass(slots=True, eq=False)
class PaperOrder:
    """One of our orders as the paper venue keeps it (open ones, and the last
    ``PaperConfig.history`` closed ones)."""

    seq: int
    venue_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    """The limit price (None for market and stop orders)."""
    stop_price: Decimal | None
    limit: Decimal
    """What the order matches against: its price, or a market order's protection price."""
    post_only: bool
    reduce_only: bool
    status: VenueStatus
    lock_asset: str | None
    lock_per_unit: Decimal
    locked: Decimal
    expire_ns: int | None
    updated_ns: int
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    entry: BookOrder[PaperOrder] | None = None
    former_ids: tuple[str, ...] = ()
    """Client order ids it had before an amend gave it a new one."""

    # (written, to be compiled: dataclasses' own __init__ would run interpreted)
    def __init__(
        self, seq: int, venue_order_id: str, client_order_id: str, symbol: str, side: Side,
        type: OrderType, time_in_force: TimeInForce, quantity: Decimal, price: Decimal | None,
        stop_price: Decimal | None, limit: Decimal, post_only: bool, reduce_only: bool,
        status: VenueStatus, lock_asset: str | None, lock_per_unit: Decimal, locked: Decimal,
        expire_ns: int | None, updated_ns: int, filled: Decimal = ZERO, notional: Decimal = ZERO,
        entry: BookOrder[PaperOrder] | None = None, former_ids: tuple[str, ...] = (),
    ) -> None:
        self.seq = seq
        self.venue_order_id = venue_order_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.type = type
        self.time_in_force = time_in_force
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.limit = limit
        self.post_only = post_only
        self.reduce_only = reduce_only
        self.status = status
        self.lock_asset = lock_asset
        self.lock_per_unit = lock_per_unit
        self.locked = locked
        self.expire_ns = expire_ns
        self.updated_ns = updated_ns
        self.filled = filled
        self.notional = notional
        self.entry = entry
        self.former_ids = former_ids

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    def state(self) -> OrderState:
        return OrderState(
            client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id,
            symbol=self.symbol,
            side=self.side,
            status=self.status,
            quantity=self.quantity,
            filled_quantity=self.filled,
            average_price=self.notional / self.filled if self.filled else None,
            price=self.price,
            updated_ns=self.updated_ns,
        )


@dataclass(slots=True)
class _Asset:
    free: Decimal
    locked: Decimal = ZERO


@dataclass(slots=True)
class _Position:
    quantity: Decimal = ZERO
    entry: Decimal | None = None
    margin: Decimal = ZERO


@dataclass(slots=True, eq=False)
class _Market:
    instrument: Instrument
    book: OrderBook[PaperOrder]
    stops: StopBook[PaperOrder]
    market: SyntheticMarket[PaperOrder]
    last: Decimal
    perp: bool
    reduce_only: set[PaperOrder] = field(default_factory=set)


_MARGIN_QUANTUM = Decimal("1e-12")


def _cents(value: Decimal) -> Decimal:
    """Perpetual margin and PnL amounts, cut to a fixed precision so sums stay exact."""
    return value.quantize(_MARGIN_QUANTUM, rounding=ROUND_DOWN)


def _on_grid(value: Decimal, step: Decimal) -> bool:
    try:
        return value % step == 0
    except InvalidOperation:  # too many steps to count: far out of any sane range
        return False


def _is_pending(order: PaperOrder) -> bool:
    return order.status is _PENDING


def _reject(reason: RejectReason, text: str) -> VenueRejected:
    return VenueRejected(reason, text)


class PaperExchange:
    """An in-process venue holding one account."""

    def __init__(self, config: PaperConfig | None = None) -> None:
        self.config = config = config or PaperConfig()
        self.rules = CLIENT_ORDER_ID_RULES
        self._cid_re = re.compile(self.rules.pattern)
        self._maker_fee = config.maker_fee
        self._taker_fee = config.taker_fee
        self._fee_reserve = max(config.maker_fee, config.taker_fee)
        self._margin_rate = ONE / config.leverage
        self._protect_up = ONE + config.market_protection
        self._protect_down = ONE - config.market_protection
        self._assets: dict[str, _Asset] = {
            a: _Asset(Decimal(v)) for a, v in config.balances.items()
        }
        self._positions: dict[str, _Position] = {}
        self._markets: dict[str, _Market] = {}
        self._orders: dict[str, PaperOrder] = {}  # by every client order id an order has had
        self._open: dict[str, PaperOrder] = {}  # by venue order id, in arrival order
        self._fills: collections.deque[OrderFilled] = collections.deque()
        self._closed: collections.deque[PaperOrder] = collections.deque()
        self._fills_made = 0
        self._events: list[VenueEvent] = []
        self._prints: collections.deque[PublicTrade] = collections.deque(maxlen=PRINTS_KEPT)
        self._market_trades = 0
        self._expiries: list[tuple[int, int, PaperOrder]] = []
        self._taken: list[BookOrder[PaperOrder]] = []
        self._order_seq = 0
        self._trade_seq = 0
        self._now = 0
        self._perp_filled = False
        self.absorbed = ZERO
        """Perpetual losses and fees the account could not pay (no liquidation engine)."""
        for mc in config.markets:
            inst = mc.instrument
            perp = inst.kind is _PERPETUAL
            for asset in (inst.base, inst.quote) if not perp else (inst.settle or inst.quote,):
                self._assets.setdefault(asset, _Asset(ZERO))
            if perp:
                self._positions[inst.symbol] = _Position()
            market: SyntheticMarket[PaperOrder] = SyntheticMarket(mc, config.seed)
            mk = _Market(inst, OrderBook(), StopBook(), market, market.mid, perp)
            self._markets[inst.symbol] = mk
            self._cur = mk
            market.requote(mk.book, self._on_fill)

    # ---- reading -------------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        return [mk.instrument for mk in self._markets.values()]

    def book(self, symbol: str) -> OrderBook[PaperOrder]:
        return self._markets[symbol].book

    def market(self, symbol: str) -> SyntheticMarket[PaperOrder]:
        return self._markets[symbol].market

    def last_price(self, symbol: str) -> Decimal:
        return self._markets[symbol].last

    def query_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        order = self._orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            return None
        return order.state()

    def order(self, client_order_id: str) -> PaperOrder | None:
        """The order that has (or had) this client order id, whatever its symbol."""
        return self._orders.get(client_order_id)

    def order_state(self, client_order_id: str) -> OrderState | None:
        order = self._orders.get(client_order_id)
        return order.state() if order is not None else None

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return [o.state() for o in self._open.values() if symbol is None or o.symbol == symbol]

    def fills_since(self, since_ns: int) -> list[OrderFilled]:
        return [f for f in self._fills if f.ts_ns >= since_ns]

    def balances(self) -> list[Balance]:
        return [Balance(a, v.free, v.locked) for a, v in sorted(self._assets.items())]

    def balances_changed(self, told: dict[str, Balance]) -> list[Balance]:
        """The balances that differ from ``told`` (by asset; one not there differs), in asset
        order: :meth:`balances` compared, without making every one (called after each change
        the venue publishes)."""
        out = [Balance(a, v.free, v.locked) for a, v in self._assets.items()
               if (b := told.get(a)) is None or b.free != v.free or b.locked != v.locked]
        if len(out) > 1:
            out.sort(key=attrgetter("asset"))
        return out

    def positions(self) -> list[Position]:
        return [
            Position(symbol, p.quantity, p.entry)
            for symbol, p in sorted(self._positions.items())
            if p.quantity
        ]

    def drain_events(self) -> list[VenueEvent]:
        """What happened since the last drain, in order."""
        out, self._events = self._events, []
        return out

    def drain_prints(self) -> list[PublicTrade]:
        """The public trades since the last drain (module docstring), in order."""
        out = list(self._prints)
        self._prints.clear()
        return out

    # ---- placing -------------------------------------------------------------------------------

    def place(self, req: OrderRequest, now_ns: int) -> OrderAccepted:
        """Validate, lock, accept, match; raises VenueRejected (and then nothing happened)."""
        self._now = now_ns
        mk = self._markets.get(req.symbol)
        if mk is None:
            raise _reject(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {req.symbol!r}")
        inst = mk.instrument
        cid = req.client_order_id
        self._check_client_order_id(cid)
        if cid in self._orders:  # first: a retry of an accepted order must learn it exists
            raise _reject(RejectReason.DUPLICATE_ORDER, f"client order id {cid!r} already used")
        otype, side, qty = req.type, req.side, req.quantity
        self._check_quantity(inst, qty)
        if otype in (_LIMIT, _STOP_LIMIT):
            self._check_price(inst, req.price, "price")
        if otype in (_STOP, _STOP_LIMIT):
            self._check_price(inst, req.stop_price, "stop price")
        tif = req.time_in_force
        if req.post_only and (
            otype is not _LIMIT or tif in (_IOC, _FOK)
        ):
            raise _reject(RejectReason.UNSUPPORTED, "post-only needs a GTC, DAY or GTD limit order")
        if req.reduce_only and not mk.perp:
            raise _reject(RejectReason.UNSUPPORTED, "reduce-only is for perpetuals")
        expire_ns: int | None = None
        if tif is _GTD:
            if req.expire_time_ns is None or req.expire_time_ns <= now_ns:
                raise _reject(RejectReason.OTHER, "GTD needs an expire time in the future")
            expire_ns = req.expire_time_ns
        elif tif is _DAY:
            expire_ns = (now_ns // DAY_NS + 1) * DAY_NS  # the next UTC midnight

        book = mk.book
        if otype is _MARKET:
            best = book.best_ask() if side is _BUY else book.best_bid()
            if best is None:
                raise _reject(RejectReason.OTHER, "no liquidity for a market order")
            ref, limit = best, self._protection(inst, side, best)
        elif otype is _STOP:
            assert req.stop_price is not None
            ref, limit = req.stop_price, self._protection(inst, side, req.stop_price)
        else:
            assert req.price is not None
            ref = limit = req.price
        if qty * ref < inst.min_notional:
            raise _reject(RejectReason.MIN_NOTIONAL, f"notional {qty * ref} < {inst.min_notional}")
        if req.post_only and book.crosses(side, limit):
            raise _reject(RejectReason.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity")
        if req.reduce_only and self._reducible(inst.symbol, side) <= 0:
            raise _reject(RejectReason.OTHER, "reduce-only order would not reduce the position")

        asset, per_unit = self._lock_terms(mk, side, req.reduce_only, limit, ref)
        need = qty * per_unit
        free = self._lock(asset, need)
        if free is not None:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, f"needs {need} {asset}, {free} free")

        self._order_seq += 1
        seq = self._order_seq
        stop = otype in (_STOP, _STOP_LIMIT)
        order = PaperOrder(
            seq=seq,
            venue_order_id=f"P{seq}",
            client_order_id=cid,
            symbol=inst.symbol,
            side=side,
            type=otype,
            time_in_force=tif,
            quantity=qty,
            price=req.price if otype in (_LIMIT, _STOP_LIMIT) else None,
            stop_price=req.stop_price if stop else None,
            limit=limit,
            post_only=req.post_only,
            reduce_only=req.reduce_only,
            status=_PENDING if stop else _NEW,
            lock_asset=asset,
            lock_per_unit=per_unit,
            locked=need if asset is not None else ZERO,
            expire_ns=expire_ns,
            updated_ns=now_ns,
        )
        self._orders[cid] = order
        self._open[order.venue_order_id] = order
        if req.reduce_only:
            mk.reduce_only.add(order)
        if expire_ns is not None:
            heapq.heappush(self._expiries, (expire_ns, seq, order))
        accepted = OrderAccepted(cid, order.venue_order_id, now_ns)
        self._events.append(accepted)
        self._cur = mk
        if stop:
            assert req.stop_price is not None
            mk.stops.add(side, req.stop_price, order)
        else:
            self._execute(mk, order)
        self._settle_knock_on(mk)
        return accepted

    def _check_client_order_id(self, cid: str) -> None:
        if len(cid) > self.rules.max_length or not self._cid_re.match(cid):
            raise _reject(RejectReason.OTHER, f"client order id {cid!r} breaks {self.rules}")

    @staticmethod
    def _check_quantity(inst: Instrument, qty: Decimal) -> None:
        if not qty.is_finite() or qty <= 0 or not _on_grid(qty, inst.lot_size):
            raise _reject(
                RejectReason.LOT_FILTER, f"quantity {qty} is not a multiple of {inst.lot_size}"
            )
        if qty < inst.min_qty or (inst.max_qty is not None and qty > inst.max_qty):
            raise _reject(
                RejectReason.LOT_FILTER, f"quantity {qty} outside [{inst.min_qty}, {inst.max_qty}]"
            )

    @staticmethod
    def _check_price(inst: Instrument, price: Decimal | None, what: str) -> None:
        if price is None:
            raise _reject(RejectReason.PRICE_FILTER, f"{what} required")
        if not price.is_finite() or price <= 0 or not _on_grid(price, inst.tick_size):
            raise _reject(
                RejectReason.PRICE_FILTER, f"{what} {price} is not a multiple of {inst.tick_size}"
            )

    def _protection(self, inst: Instrument, side: Side, ref: Decimal) -> Decimal:
        if side is _BUY:
            return round_up_to_tick(ref * self._protect_up, inst.tick_size)
        return max(round_up_to_tick(ref * self._protect_down, inst.tick_size), inst.tick_size)

    def _lock_terms(
        self, mk: _Market, side: Side, reduce_only: bool, limit: Decimal, ref: Decimal
    ) -> tuple[str | None, Decimal]:
        """Which asset an order locks, and how much per unit of its quantity."""
        inst = mk.instrument
        if mk.perp:
            if reduce_only:
                return None, ZERO
            price = limit if side is _BUY else ref
            return inst.settle or inst.quote, price * (self._margin_rate + self._fee_reserve)
        if side is _BUY:  # the fee comes out of the base asset received
            return inst.quote, limit
        return inst.base, ONE

    def _lock(self, asset: str | None, amount: Decimal) -> Decimal | None:
        """Move ``amount`` of ``asset`` from free to locked (a negative amount releases); when
        not that much is free, change nothing and return what is free. No asset: nothing to do."""
        if asset is None:
            return None
        acct = self._assets[asset]
        if amount > acct.free:
            return acct.free
        acct.free -= amount
        acct.locked += amount
        return None

    def _reducible(self, symbol: str, side: Side) -> Decimal:
        """How much an order on ``side`` can reduce the position of ``symbol``."""
        pos = self._positions[symbol].quantity
        if side is _SELL:
            return pos if pos > 0 else ZERO
        return -pos if pos < 0 else ZERO

    def _cap(self, entry: BookOrder[PaperOrder]) -> Decimal:
        owner = entry.owner
        return ZERO if owner is None else self._reducible(owner.symbol, owner.side)

    # ---- matching and settlement ---------------------------------------------------------------

    def _execute(self, mk: _Market, order: PaperOrder) -> None:
        """``order`` arrives at the book: take what it can, then rest, or cancel the rest."""
        entry: BookOrder[PaperOrder] = BookOrder(
            order.side, order.limit, order.remaining, order, order.reduce_only
        )
        order.entry = entry
        book = mk.book
        tif = order.time_in_force
        if tif is _FOK and not book.fillable(order.side, entry.remaining, order.limit):
            self._cancel(order, "fok: cannot be filled completely")
            return
        if order.reduce_only and self._reducible(order.symbol, order.side) <= 0:
            self._cancel(order, "reduce-only: no position to reduce")
            return
        result = book.match(entry, order.limit, self._on_fill, self._cap if mk.perp else None)
        self._drop(result.dropped)
        if not order.status.is_open:
            return
        if result.capped:
            self._cancel(order, "reduce-only: no position to reduce")
        elif order.type in _MARKET_LIKE:
            self._cancel(order, "market: no more liquidity within the protection band")
        elif tif in (_IOC, _FOK):
            self._cancel(order, "ioc: not filled immediately")
        else:
            book.rest(entry)

    def _drop(self, dropped: list[BookOrder[PaperOrder]]) -> None:
        """Cancel reduce-only orders the book took out because they had nothing to reduce."""
        for entry in dropped:
            if entry.owner is not None and entry.owner.status.is_open:
                self._cancel(entry.owner, "reduce-only: no position to reduce")

    def _on_fill(
        self,
        resting: BookOrder[PaperOrder],
        taker: BookOrder[PaperOrder],
        qty: Decimal,
        price: Decimal,
    ) -> None:
        mk = self._cur
        mk.last = price
        mine = resting.owner
        if mine is None:
            self._taken.append(resting)
        else:
            self._fill(mine, qty, price, _MAKER)
        if taker.owner is not None:
            self._fill(taker.owner, qty, price, _TAKER)
        if mine is None and taker.owner is None:
            self._market_trades += 1
            trade_id = f"M{self._market_trades}"
        else:
            trade_id = f"T{self._trade_seq}"  # (our fill's, the taker's when both are ours)
        self._prints.append(PublicTrade(mk.instrument.symbol, price, qty, taker.side, trade_id,
                                        self._now))

    def _fill(self, order: PaperOrder, qty: Decimal, price: Decimal, liquidity: Liquidity) -> None:
        mk = self._cur
        inst = mk.instrument
        notional = qty * price
        rate = self._maker_fee if liquidity is _MAKER else self._taker_fee
        fee = notional * rate
        order.filled += qty
        order.notional += notional
        done = order.filled == order.quantity
        order.status = _FILLED if done else _PARTIALLY_FILLED
        order.updated_ns = self._now
        if mk.perp:
            self._settle_perp(mk, order, qty, price, fee)
            fee_asset = inst.settle or inst.quote
        else:  # the fee is taken from the asset received: base on a buy, quote on a sell
            quote = self._assets[inst.quote]
            if order.side is _BUY:
                fee, fee_asset = qty * rate, inst.base
                release = qty * order.lock_per_unit
                order.locked -= release
                quote.locked -= release
                quote.free += release - notional
                self._assets[inst.base].free += qty - fee
            else:
                fee_asset = inst.quote
                base = self._assets[inst.base]
                order.locked -= qty
                base.locked -= qty
                quote.free += notional - fee
        self._trade_seq += 1
        event = OrderFilled(
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            trade_id=f"T{self._trade_seq}",
            quantity=qty,
            price=price,
            fee=fee,
            fee_currency=fee_asset,
            liquidity=liquidity,
            ts_ns=self._now,
        )
        self._fills.append(event)
        self._fills_made += 1
        self._events.append(event)
        if done:
            self._close(order)

    def _settle_perp(
        self, mk: _Market, order: PaperOrder, qty: Decimal, price: Decimal, fee: Decimal
    ) -> None:
        self._perp_filled = True
        acct = self._assets[mk.instrument.settle or mk.instrument.quote]
        pos = self._positions[mk.instrument.symbol]
        if order.lock_asset is not None:
            release = qty * order.lock_per_unit
            order.locked -= release
            acct.locked -= release
            acct.free += release
        buy = order.side is _BUY
        closing = ZERO
        if pos.quantity and (pos.quantity > 0) != buy:
            assert pos.entry is not None
            size = abs(pos.quantity)
            closing = min(qty, size)
            pnl = (
                (price - pos.entry) * closing if pos.quantity > 0 else (pos.entry - price) * closing
            )
            margin = pos.margin if closing == size else _cents(pos.margin * closing / size)
            pos.margin -= margin
            acct.locked -= margin
            acct.free += margin
            pos.quantity += closing if buy else -closing
            if not pos.quantity:
                pos.entry = None
            self._credit(acct, _cents(pnl))
        opening = qty - closing
        if opening:
            margin = min(_cents(opening * price * self._margin_rate), acct.free)
            acct.free -= margin
            acct.locked += margin
            pos.margin += margin
            size = abs(pos.quantity)
            old_entry = pos.entry if pos.entry is not None else price
            pos.entry = (old_entry * size + price * opening) / (size + opening)
            pos.quantity += opening if buy else -opening
        self._credit(acct, -fee)

    def _credit(self, acct: _Asset, amount: Decimal) -> None:
        acct.free += amount
        if acct.free < 0:
            self.absorbed -= acct.free
            acct.free = ZERO

    def _settle_knock_on(self, mk: _Market) -> None:
        """After a change at the book: the market maker restores what was taken, stops the last
        price reached trigger, reduce-only orders left with nothing to reduce are cancelled."""
        self._cur = mk
        while True:
            if self._taken:
                taken, self._taken = self._taken, []
                cap = self._cap if mk.perp else None
                self._drop(mk.market.replenish(mk.book, taken, self._on_fill, cap))
            triggered = mk.stops.triggered(mk.last, _is_pending)
            for order in triggered:
                order.status = _NEW
                order.updated_ns = self._now
                if order.type is _STOP and not self._arm_stop_market(mk, order):
                    continue
                self._execute(mk, order)
            if not triggered and not self._taken:
                break
        if self._perp_filled:
            self._perp_filled = False
            for order in sorted(mk.reduce_only, key=lambda o: o.seq):
                if (
                    order.status is not _PENDING
                    and self._reducible(order.symbol, order.side) <= 0
                ):
                    self._cancel(order, "reduce-only: no position to reduce")

    def _arm_stop_market(self, mk: _Market, order: PaperOrder) -> bool:
        """A triggered stop becomes a market order: protection band and lock from the best
        price now (not the stop price); False when it cannot (then it is cancelled)."""
        best = mk.book.best_ask() if order.side is _BUY else mk.book.best_bid()
        if best is None:
            self._cancel(order, "stop triggered: no liquidity")
            return False
        limit = self._protection(mk.instrument, order.side, best)
        asset, per_unit = self._lock_terms(mk, order.side, order.reduce_only, limit, best)
        locked = order.remaining * per_unit
        delta = locked - order.locked
        if self._lock(asset, delta) is not None:
            self._cancel(order, f"stop triggered: needs {delta} more {asset}")
            return False
        order.limit, order.lock_per_unit, order.locked = limit, per_unit, locked
        return True

    # ---- closing -------------------------------------------------------------------------------

    def _close(self, order: PaperOrder) -> None:
        """Release what the order still locks and forget it as open (status already set)."""
        if order.locked and order.lock_asset is not None:
            acct = self._assets[order.lock_asset]
            acct.locked -= order.locked
            acct.free += order.locked
            order.locked = ZERO
        self._open.pop(order.venue_order_id, None)
        if order.reduce_only:
            self._markets[order.symbol].reduce_only.discard(order)
        self._closed.append(order)
        if len(self._closed) > self.config.history:
            self._prune()
        if len(self._expiries) > 2 * len(self._open) + 1024:
            # closed orders still waiting for their expiry time: dropped in one pass
            self._expiries = [e for e in self._expiries if e[2].venue_order_id in self._open]
            heapq.heapify(self._expiries)

    def _prune(self) -> None:
        """Forget the oldest closed orders beyond the history a venue keeps, and the fills
        before the oldest order still known (a venue's order and trade history is finite
        too; memory stays flat however long it runs)."""
        while len(self._closed) > self.config.history:
            old = self._closed.popleft()
            for cid in (*old.former_ids, old.client_order_id):
                if self._orders.get(cid) is old:
                    del self._orders[cid]
        fills = self._fills
        while fills and fills[0].client_order_id not in self._orders:
            fills.popleft()

    def _end(self, order: PaperOrder, status: VenueStatus) -> None:
        entry = order.entry
        if entry is not None and entry.live:
            self._markets[order.symbol].book.remove(entry)
        order.status = status
        order.updated_ns = self._now
        self._close(order)

    def _cancel(self, order: PaperOrder, reason: str) -> None:
        self._end(order, _CANCELED)
        self._events.append(
            OrderCanceled(order.client_order_id, order.venue_order_id, self._now, reason,
                          filled_quantity=order.filled)
        )

    def _open_order(self, symbol: str, client_order_id: str) -> PaperOrder:
        order = self._orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            raise _reject(RejectReason.UNKNOWN_ORDER, f"no order {client_order_id!r} on {symbol}")
        if not order.status.is_open:
            raise _reject(
                RejectReason.TOO_LATE, f"order {client_order_id!r} is {order.status.value}"
            )
        return order

    def cancel(self, symbol: str, client_order_id: str, now_ns: int) -> None:
        self._now = now_ns
        self._cancel(self._open_order(symbol, client_order_id), "")

    def cancel_all(self, symbol: str | None, now_ns: int) -> int:
        self._now = now_ns
        if symbol is not None and symbol not in self._markets:
            raise _reject(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        doomed = [o for o in self._open.values() if symbol is None or o.symbol == symbol]
        for order in doomed:
            self._cancel(order, "cancel_all")
        return len(doomed)

    # ---- amending ------------------------------------------------------------------------------

    def amend(self, req: AmendRequest, now_ns: int) -> None:
        """Change quantity (total) and/or price. Quantity down at the same price keeps the
        order's place in the queue; a price change or more quantity sends it to the back (and
        it may trade at once)."""
        self._now = now_ns
        order = self._open_order(req.symbol, req.client_order_id)
        mk = self._markets[order.symbol]
        inst = mk.instrument
        qty = order.quantity if req.quantity is None else req.quantity
        if req.quantity is not None:
            self._check_quantity(inst, qty)
        if qty <= order.filled:
            raise _reject(RejectReason.OTHER, f"quantity {qty} not above the filled {order.filled}")
        price = order.price
        if req.price is not None:
            if order.type in _MARKET_LIKE:
                raise _reject(RejectReason.UNSUPPORTED, f"a {order.type.value} order has no price")
            self._check_price(inst, req.price, "price")
            price = req.price
        new_cid = req.new_client_order_id
        if new_cid is not None and new_cid != order.client_order_id:
            self._check_client_order_id(new_cid)
            if new_cid in self._orders:
                raise _reject(
                    RejectReason.DUPLICATE_ORDER, f"client order id {new_cid!r} already used"
                )
        limit = price if price is not None else order.limit
        ref = price if price is not None else (order.stop_price or order.limit)
        if qty * ref < inst.min_notional:
            raise _reject(RejectReason.MIN_NOTIONAL, f"notional {qty * ref} < {inst.min_notional}")
        repriced = price != order.price
        waiting = order.status is _PENDING
        if order.post_only and repriced and not waiting and mk.book.crosses(order.side, limit):
            raise _reject(RejectReason.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity")
        asset, per_unit = self._lock_terms(mk, order.side, order.reduce_only, limit, ref)
        locked = (qty - order.filled) * per_unit
        delta = locked - order.locked
        free = self._lock(asset, delta)
        if free is not None:
            raise _reject(
                RejectReason.INSUFFICIENT_BALANCE, f"needs {delta} more {asset}, {free} free"
            )
        loses_place = repriced or qty > order.quantity
        old_cid = order.client_order_id
        order.quantity, order.price, order.limit = qty, price, limit
        order.lock_per_unit, order.locked = per_unit, locked
        order.updated_ns = now_ns
        if new_cid is not None and new_cid != old_cid:
            order.former_ids += (old_cid,)
            order.client_order_id = new_cid
            self._orders[new_cid] = order
        self._events.append(
            OrderAmended(old_cid, order.venue_order_id, qty, price, now_ns, new_cid)
        )
        entry = order.entry
        if waiting or entry is None or not entry.live:
            return
        self._cur = mk
        if loses_place:
            mk.book.remove(entry)
            self._execute(mk, order)
            self._settle_knock_on(mk)
        else:
            entry.remaining = order.remaining

    # ---- time ----------------------------------------------------------------------------------

    def trade_against(
        self, symbol: str, side: Side, quantity: Decimal, price: Decimal | None, now_ns: int
    ) -> tuple[Decimal, Decimal]:
        """A taker order of an outside counterparty (the market maker: no account, events or
        balance) crosses the book on ``side`` for ``quantity``, best price first, no further
        than ``price`` (default: the market-protection band). The account's resting orders fill
        at their price as makers. Returns (quantity traded, of which the account's orders)."""
        mk = self._markets.get(symbol)
        if mk is None:
            raise VenueRejected(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        if not quantity.is_finite() or quantity <= 0:
            raise VenueRejected(RejectReason.LOT_FILTER, f"quantity {quantity} must be positive")
        self._now = now_ns
        return self._take(mk, side, quantity, price)

    def _take(self, mk: _Market, side: Side, quantity: Decimal, price: Decimal | None
              ) -> tuple[Decimal, Decimal]:
        """An outside taker (:meth:`trade_against`) at ``mk``, at ``self._now``."""
        book = mk.book
        if price is None:
            best = book.best_bid() if side is _SELL else book.best_ask()
            if best is None:
                return Decimal(0), Decimal(0)
            price = self._protection(mk.instrument, side, best)
        self._cur = mk
        fills_before = self._fills_made
        taker: BookOrder[PaperOrder] = BookOrder(side, price, quantity)  # owner None: not ours
        result = book.match(taker, price, self._on_fill, self._cap if mk.perp else None)
        self._drop(result.dropped)
        self._settle_knock_on(mk)
        # the account's fills this made, as makers (the knock-on may add more of its own)
        made = self._fills_made - fills_before
        ours = sum((f.quantity for f in itertools.islice(reversed(self._fills), made)),
                   Decimal(0))
        return result.filled, ours

    def tick(self, now_ns: int) -> None:
        """Advance to ``now_ns``: expire GTD/DAY orders that are due, move every market's mid
        (a synthetic print at the mid is the new last price), let the market maker requote,
        trigger stops; then the market's synthetic takers trade (``MarketConfig.trade_rate``),
        filling our resting orders when they are the best."""
        self._now = now_ns
        expiries = self._expiries
        while expiries and expiries[0][0] <= now_ns:
            _, _, order = heapq.heappop(expiries)
            if order.status.is_open:
                self._end(order, _EXPIRED)
                self._events.append(
                    OrderExpired(order.client_order_id, order.venue_order_id, now_ns,
                                 filled_quantity=order.filled)
                )
        for mk in self._markets.values():
            self._cur = mk
            mk.last = mk.market.advance(now_ns)
            self._drop(mk.market.requote(mk.book, self._on_fill, self._cap if mk.perp else None))
            self._taken.clear()  # requote restored everything it quotes
            self._settle_knock_on(mk)
            for side, quantity in mk.market.draw_trades():
                self._take(mk, side, quantity, None)

    # ---- inspection for tests ------------------------------------------------------------------

    def orders(self) -> Iterable[PaperOrder]:
        """Every order ever accepted (each once)."""
        seen: set[int] = set()
        for order in self._orders.values():
            if order.seq not in seen:
                seen.add(order.seq)
                yield order

    def fills(self) -> Sequence[OrderFilled]:
        return list(self._fills)

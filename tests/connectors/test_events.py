"""The connector contract's values (connectors/events.py) behave as frozen dataclasses whether
they run compiled (connectors.native.EVENTS) or as Python: copied, deep-copied and pickled
equal to themselves, and not assignable. (Compiled, a class without ``__reduce__`` was rebuilt
through its ``__init__`` with no arguments, or through the frozen ``__setattr__``: both fail.)"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from decimal import Decimal
from typing import Any

import pytest

import connectors.events as events
from connectors.events import (
    AmendRequest,
    Balance,
    BalanceUpdate,
    BookSnapshot,
    BookUpdate,
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    PublicTrade,
    RejectReason,
    Side,
    TimeInForce,
    VenueStatus,
)

D = Decimal
VALUES: list[Any] = [
    Instrument("BTC/USDT:USDT", "BTCUSDT", "BTC", "USDT", InstrumentKind.PERPETUAL, "USDT",
               max_qty=D("100")),
    OrderRequest("c1", "BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.5"), D("97000.1"),
                 time_in_force=TimeInForce.GTD, expire_time_ns=5, post_only=True, account="a"),
    AmendRequest("c1", "BTC/USDT", D("0.4"), None, "c2"),
    OrderState("c1", "v1", "BTC/USDT", Side.SELL, VenueStatus.PARTIALLY_FILLED, D("1"),
               D("0.25"), D("97000")),
    OrderAccepted("c1", "v1", 7),
    OrderRejected("c1", RejectReason.PRICE_FILTER, "tick", 8),
    OrderFilled("c1", "v1", "t1", D("0.1"), D("97000"), D("0.01"), "USDT", Liquidity.TAKER, 9),
    OrderCanceled("c1", "v1", 10, "user", D("0.1")),
    OrderExpired("c1", "v1", 11),
    OrderAmended("c1", "v1", D("0.4"), D("96000"), 12, "c2"),
    BalanceUpdate("USDT", D("1000"), D("5"), 13),
    Balance("BTC", D("1"), D("0")),
    Position("BTC/USDT:USDT", D("-0.5"), D("97000")),
    BookSnapshot("BTC/USDT", ((D("97000"), D("1")),), ((D("97001"), D("2")),), 14),
    BookUpdate("BTC/USDT", ((D("97000"), D("0")),), (), 15),
    PublicTrade("BTC/USDT", D("97000"), D("0.1"), Side.BUY, "t2", 16),
]


def test_every_value_of_the_contract_is_here() -> None:
    classes = {v for v in vars(events).values()
               if isinstance(v, type) and dataclasses.is_dataclass(v)
               and v.__module__ == events.__name__}
    assert classes == {type(v) for v in VALUES}


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_value_copies_deep_copies_and_pickles_as_itself(value: Any) -> None:
    for twin in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert type(twin) is type(value)
        assert twin == value
        assert hash(twin) == hash(value)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_value_is_frozen(value: Any) -> None:
    name = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, getattr(value, name))

"""fixgw's own fields: where the FIX version has no standard tag for something the gateway
tells, a field of its own, in the range 20000-20099 (user-defined tags start at 5000; this
range is fixgw's), written into the dictionaries it ships (``scripts/gen_specs.py``) so that a
QuickFIX client loading them validates what it receives. FIX 5.0's MinPriceIncrement (969) is
added to the FIX 4.4 dictionary where a FIX 4.4 client is told an instrument's tick size.
Values of our own are added to standard enumerations the same way (:data:`VALUES`): the FIX
standard leaves TargetStrategy (847) values of 1000 and above to the parties. DropCopyFlag
(9406) is outside our range on purpose: it is the tag the drop copies of crypto venues
(Coinbase's, Binance's) already mark their copies with, so a client written for those reads
ours.
The README lists them ("Custom tags")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CustomField:
    tag: int
    name: str
    type: str
    meaning: str
    places: tuple[tuple[str, str, str], ...]
    """(dictionary file, component or message name, the group inside it or "" for the
    component or message itself): where the field is appended (not required)."""


FIELDS: tuple[CustomField, ...] = (
    CustomField(969, "MinPriceIncrement", "FLOAT",
                "the instrument's tick size (standard from FIX 5.0; added to FIX 4.4)",
                (("FIX44.xml", "SecListGrp", "NoRelatedSym"),)),
    CustomField(20001, "MinNotional", "AMT",
                "the smallest price x quantity of an order the venue accepts",
                (("FIX44.xml", "SecListGrp", "NoRelatedSym"),
                 ("FIX50.xml", "SecListGrp", "NoRelatedSym"),
                 ("FIX50SP2.xml", "SecListGrp", "NoRelatedSym"))),
    CustomField(20010, "AvailableBalance", "AMT",
                "of a CollateralReport: what the account may use now in Currency (15)",
                (("FIX44.xml", "CollateralReport", ""), ("FIX50.xml", "CollateralReport", ""),
                 ("FIX50SP2.xml", "CollateralReport", ""))),
    CustomField(20011, "LockedBalance", "AMT",
                "of a CollateralReport: what open orders hold in Currency (15)",
                (("FIX44.xml", "CollateralReport", ""), ("FIX50.xml", "CollateralReport", ""),
                 ("FIX50SP2.xml", "CollateralReport", ""))),
    CustomField(9406, "DropCopyFlag", "BOOLEAN",
                "Y on an ExecutionReport sent to a drop copy session: a copy of a report of "
                "another session (gateway.orders.dropcopy)",
                (("FIX44.xml", "ExecutionReport", ""), ("FIX50.xml", "ExecutionReport", ""),
                 ("FIX50SP2.xml", "ExecutionReport", ""))),
)

MIN_NOTIONAL = 20001
AVAILABLE_BALANCE = 20010
LOCKED_BALANCE = 20011
DROP_COPY_FLAG = 9406


@dataclass(frozen=True, slots=True)
class CustomValue:
    """A value of our own in a standard field's enumeration."""

    tag: int
    value: str
    description: str
    meaning: str
    files: tuple[str, ...]


TWAP = "1000"
"""TargetStrategy (847) 1000: TWAP (:mod:`gateway.orders.twap`)."""

ICEBERG = "iceberg"
"""The internal strategy name of an iceberg (:mod:`gateway.orders.iceberg`): chosen by MaxFloor
(111), never by a TargetStrategy (847) -- a client's 847 of this value is refused."""

SOR = "SOR"
"""ExDestination (100) ``SOR``, and the internal strategy name of an order routed by the smart
order router (:mod:`gateway.orders.sor`): it chooses the venues. Also what a routed parent's
venue is (it has no venue of its own)."""

VALUES: tuple[CustomValue, ...] = (
    CustomValue(847, TWAP, "TWAP",
                "TargetStrategy: time-weighted average price, worked from EffectiveTime (168) "
                "to ExpireTime (126) in slices",
                ("FIX44.xml", "FIX50.xml", "FIX50SP2.xml")),
)

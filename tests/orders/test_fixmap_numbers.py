"""Decimals as ExecutionReports write them (``fixmap._d``): plain notation, no trailing zeros,
the same text for equal values whatever was written before."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.orders.fixmap import _d


@pytest.mark.parametrize(("value", "text"), [
    ("1.50", b"1.5"), ("1.5", b"1.5"), ("100", b"100"), ("1E+2", b"100"), ("0.00010", b"0.0001"),
    ("97000.01", b"97000.01"), ("-2.500", b"-2.5"), ("1E-8", b"0.00000001"), ("0", b"0"),
    ("0.000", b"0"), ("-0", b"-0"),
])
def test_plain_notation(value: str, text: bytes) -> None:
    assert _d(Decimal(value)) == text
    assert _d(Decimal(value)) == text  # and again, from what was kept


def test_equal_values_written_before_do_not_change_the_text() -> None:
    assert _d(Decimal("-0")) == b"-0"
    assert _d(Decimal("0")) == b"0"  # zero's sign is part of its text: never taken from -0
    assert _d(Decimal("2.000")) == b"2"
    assert _d(Decimal("2")) == b"2"
    assert _d(Decimal("2.0")) == b"2"

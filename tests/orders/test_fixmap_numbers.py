"""Decimals as ExecutionReports write them (``fixmap._d``): plain notation, no trailing zeros,
the same text for equal values, every digit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.orders.fixmap import _d


@pytest.mark.parametrize(("value", "text"), [
    ("1.50", b"1.5"), ("1.5", b"1.5"), ("100", b"100"), ("1E+2", b"100"), ("0.00010", b"0.0001"),
    ("97000.01", b"97000.01"), ("-2.500", b"-2.5"), ("1E-8", b"0.00000001"), ("0", b"0"),
    ("0.000", b"0"), ("-0", b"-0"), ("-0.00", b"-0"), ("0E-8", b"0"), ("0E+2", b"0"),
    ("1.0E-7", b"0.0000001"), ("0.10E+2", b"10"), ("1.5E+3", b"1500"), ("NaN", b"NaN"),
    ("-Infinity", b"-Infinity"),
    # more digits than a context's 28: written whole, with or without trailing zeros
    ("1.000000000000000000000000000001", b"1.000000000000000000000000000001"),
    ("1.0000000000000000000000000000010", b"1.000000000000000000000000000001"),
])
def test_plain_notation(value: str, text: bytes) -> None:
    assert _d(Decimal(value)) == text


def test_equal_values_written_before_do_not_change_the_text() -> None:
    assert _d(Decimal("-0")) == b"-0"
    assert _d(Decimal("0")) == b"0"  # zero's sign is part of its text: never taken from -0
    assert _d(Decimal("2.000")) == b"2"
    assert _d(Decimal("2")) == b"2"
    assert _d(Decimal("2.0")) == b"2"

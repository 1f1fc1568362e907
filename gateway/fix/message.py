"""Parsed FIX messages: header, body and trailer field maps with repeating groups, and typed
accessors. Values stay bytes until an accessor decodes them (Decimal for prices and quantities).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from .codec import _DIGITS, SOH
from .fixtime import parse_utc_timestamp


class FieldValueError(ValueError):
    """A field is absent or its value does not decode as the requested type."""

    def __init__(self, tag: int, message: str) -> None:
        super().__init__(message)
        self.tag = tag


class FieldMap:
    """Fields in wire order plus the repeating groups found under their count tags."""

    __slots__ = ("fields", "groups", "_index")

    def __init__(self, fields: list[tuple[int, bytes]] | None = None) -> None:
        self.fields: list[tuple[int, bytes]] = fields if fields is not None else []
        self.groups: dict[int, list[FieldMap]] = {}
        self._index: dict[int, bytes] | None = None

    def add(self, tag: int, value: bytes) -> None:
        self.fields.append((tag, value))
        if self._index is not None and tag not in self._index:
            self._index[tag] = value

    def _idx(self) -> dict[int, bytes]:
        idx = self._index
        if idx is None:
            idx = {}
            for t, v in self.fields:
                if t not in idx:
                    idx[t] = v
            self._index = idx
        return idx

    def __contains__(self, tag: int) -> bool:
        idx = self._index  # hot path: the index is built once, then read directly
        return tag in (idx if idx is not None else self._idx())

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def get(self, tag: int, default: bytes | None = None) -> bytes | None:
        idx = self._index
        return (idx if idx is not None else self._idx()).get(tag, default)

    def require(self, tag: int) -> bytes:
        v = self._idx().get(tag)
        if v is None:
            raise FieldValueError(tag, f"required field {tag} is missing")
        return v

    def group(self, count_tag: int) -> list[FieldMap]:
        return self.groups.get(count_tag, [])

    # typed accessors -------------------------------------------------------------------------
    def get_str(self, tag: int, default: str | None = None) -> str | None:
        v = self.get(tag)
        return default if v is None else v.decode("utf-8", "replace")

    def get_int(self, tag: int, default: int | None = None) -> int | None:
        v = self.get(tag)
        if v is None:
            return default
        if not _DIGITS.match(v):
            raise FieldValueError(tag, f"field {tag} is not an integer: {v[:32]!r}")
        return int(v)

    def get_decimal(self, tag: int, default: Decimal | None = None) -> Decimal | None:
        v = self.get(tag)
        if v is None:
            return default
        if not is_fix_float(v):
            raise FieldValueError(tag, f"field {tag} is not a decimal: {v[:32]!r}")
        try:
            return Decimal(v.decode())
        except InvalidOperation as exc:  # pragma: no cover - guarded by is_fix_float
            raise FieldValueError(tag, f"field {tag} is not a decimal") from exc

    def get_bool(self, tag: int, default: bool | None = None) -> bool | None:
        v = self.get(tag)
        if v is None:
            return default
        if v == b"Y":
            return True
        if v == b"N":
            return False
        raise FieldValueError(tag, f"field {tag} is not Y or N: {v[:8]!r}")

    def get_char(self, tag: int, default: str | None = None) -> str | None:
        v = self.get(tag)
        if v is None:
            return default
        if len(v) != 1:
            raise FieldValueError(tag, f"field {tag} is not a single character")
        return chr(v[0])

    def get_time_ns(self, tag: int, default: int | None = None) -> int | None:
        """UTCTimestamp as nanoseconds since the epoch (seconds to nanoseconds precision)."""
        v = self.get(tag)
        if v is None:
            return default
        try:
            return parse_utc_timestamp(v)
        except ValueError as exc:
            raise FieldValueError(tag, str(exc)) from None

    def get_multi(self, tag: int) -> list[str]:
        """MultipleValueString / MultipleCharValue: space-separated values."""
        v = self.get(tag)
        return [] if v is None else v.decode("utf-8", "replace").split()


class Message(FieldMap):
    """The body of a message, with its header and trailer."""

    __slots__ = ("header", "trailer", "raw", "out_of_order_tag")

    def __init__(self) -> None:
        super().__init__()
        self.header = FieldMap()
        self.trailer = FieldMap()
        self.raw = b""
        self.out_of_order_tag = 0
        """First tag found out of the header-body-trailer order (0 when in order)."""

    @property
    def msg_type(self) -> bytes:
        return self.header.get(35, b"") or b""

    @property
    def seq_num(self) -> int | None:
        v = self.header.get(34)
        return int(v) if v is not None and v.isdigit() else None

    def all_fields(self) -> list[tuple[int, bytes]]:
        return [*self.header.fields, *self.fields, *self.trailer.fields]

    def __repr__(self) -> str:
        shown = self.raw.replace(SOH, b"|")
        return f"Message({shown!r})"


def is_fix_float(v: bytes) -> bool:
    """QuickFIX's float syntax: optional '-', digits with at most one '.', at least one digit."""
    if v[:1] == b"-":
        v = v[1:]
    if not v:
        return False
    int_part, dot, frac = v.partition(b".")
    if not int_part and not frac:
        return False
    return (not int_part or int_part.isdigit()) and (not frac or frac.isdigit())


def fix_decimal(v: Decimal) -> bytes:
    """A Decimal as FIX writes it: plain notation, no exponent, no trailing zeros."""
    return format(v.normalize(), "f").encode()

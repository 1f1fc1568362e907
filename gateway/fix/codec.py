"""FIX tag=value codec: a streaming frame parser and an encoder. No I/O.

Framing follows the FIX Session Layer (FIXT 1.1 / FIX 4.4 Vol. 2, "Message Format"):
``8=BeginString<SOH>9=BodyLength<SOH>35=MsgType<SOH>...10=CheckSum<SOH>``. BodyLength counts the
bytes from the first byte after the BodyLength field's SOH up to and including the SOH before
``10=``; CheckSum is the sum of every byte before ``10=`` modulo 256, written as three digits.

The parser is fed arbitrary chunks and returns complete frames. Like QuickFIX, it looks for the
CheckSum field from the position BodyLength points at, so a message whose BodyLength is wrong is
still delimited and then reported as garbled (and ignored by the session) rather than wrecking
the rest of the stream. A stream that cannot be framed at all (no BodyLength, a message larger
than the configured maximum) raises nothing: it yields a :class:`StreamError` event and the
caller disconnects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from zlib import adler32

from gateway.native import dataclass_init_when_interpreted

SOH = b"\x01"
_CHECKSUM_MARK = b"\x0110="
_BEGIN_MARK = b"8=FIX"

# Length-prefixed data fields of the standard dictionaries (length tag -> data tag). Values of
# the data tag may contain SOH and are read by length, not by delimiter.
STANDARD_DATA_FIELDS: dict[int, int] = {
    90: 91,  # SecureDataLen -> SecureData
    93: 89,  # SignatureLength -> Signature
    95: 96,  # RawDataLength -> RawData
    212: 213,  # XmlDataLen -> XmlData
    348: 349,  # EncodedIssuerLen
    350: 351,  # EncodedSecurityDescLen
    352: 353,  # EncodedListExecInstLen
    354: 355,  # EncodedTextLen
    356: 357,  # EncodedSubjectLen
    358: 359,  # EncodedHeadlineLen
    360: 361,  # EncodedAllocTextLen
    362: 363,  # EncodedUnderlyingIssuerLen
    364: 365,  # EncodedUnderlyingSecurityDescLen
    445: 446,  # EncodedListStatusTextLen
    618: 619,  # EncodedLegIssuerLen
    621: 622,  # EncodedLegSecurityDescLen
    1184: 1185,  # SecurityXMLLen -> SecurityXML
    1277: 1278,  # DerivativeEncodedIssuerLen
    1280: 1281,  # DerivativeEncodedSecurityDescLen
    1282: 1283,  # DerivativeSecurityXMLLen
    1401: 1402,  # EncryptedPasswordLen
    1403: 1404,  # EncryptedNewPasswordLen
    1397: 1398,  # EncodedMktSegmDescLen
}

_DIGITS = re.compile(rb"-?[0-9]+\Z")
_MAX_TAG_TEXT = 16
"""Longest tag text read as a number (a sign, zeros and ten digits fit)."""
_MAX_LENGTH_DIGITS = 9
"""A length field's value beyond this many digits is no length (nor is the message that
long: the framer caps BodyLength at nine digits)."""


def _length(value: bytes) -> int | None:
    """A length field's value as a number; None when it is not one."""
    if value.isdigit() and len(value) <= _MAX_LENGTH_DIGITS:
        return int(value)
    return None

# bytes tag -> int; filled on first sight of each valid tag, so the hot path is one dict lookup.
_TAG_CACHE: dict[bytes, int] = {}
_PREFIX_CACHE: dict[int, bytes] = {}


def tag_prefix(tag: int) -> bytes:
    """``b"<tag>="``, cached."""
    p = _PREFIX_CACHE.get(tag)
    if p is None:
        p = _PREFIX_CACHE[tag] = b"%d=" % tag
    return p


def parse_tag(raw: bytes) -> int | None:
    """Tag number of ``raw`` or None when it is not an integer (QuickFIX accepts a sign)."""
    t = _TAG_CACHE.get(raw)
    if t is not None:
        return t
    if not _DIGITS.match(raw) or len(raw) > _MAX_TAG_TEXT:
        return None  # (past 4,300 digits int() itself refuses)
    t = int(raw)
    if len(_TAG_CACHE) < 100_000:
        _TAG_CACHE[raw] = t
    return t


_ADLER_RUN = 256
"""Bytes whose sum Adler-32 gives exactly: its low half is 1 + the sum of the bytes modulo
65521, and 1 + 255 * 256 is below the modulus."""


def checksum(data: bytes | bytearray | memoryview) -> int:
    """CheckSum (10): the sum of the bytes modulo 256. Summed in C, 256 bytes at a time, by
    zlib's Adler-32 (``sum()`` makes an int of every byte: a fifth of the cost)."""
    n = len(data)
    if n <= _ADLER_RUN:
        return ((adler32(data) & 0xFFFF) - 1) & 0xFF
    view = memoryview(data)
    total = 0
    for start in range(0, n, _ADLER_RUN):
        total += (adler32(view[start:start + _ADLER_RUN]) & 0xFFFF) - 1
    return total & 0xFF


class GarbledMessage(ValueError):
    """A frame that cannot be a FIX message (bad checksum, BodyLength, tag syntax, ...)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One delimited message as it came off the wire."""

    data: bytes

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, data: bytes) -> None:
        self.data = data  # type: ignore[misc]


dataclass_init_when_interpreted(Frame)


@dataclass(frozen=True, slots=True)
class Garbled:
    """A delimited frame that failed integrity checks. The session ignores it (FIX: "garbled")."""

    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream cannot be framed any more; the connection must be dropped."""

    reason: str


ParserEvent = Frame | Garbled | StreamError


class FrameParser:
    """Streaming framer. ``feed`` chunks, then iterate ``frames()``.

    The buffer is consumed by offset and compacted only when the consumed part is large, so a
    chunk holding many messages is not copied once per message.
    """

    __slots__ = ("_buf", "_pos", "max_size", "_failed")

    def __init__(self, max_size: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_size = max_size
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def frames(self) -> list[ParserEvent]:
        out: list[ParserEvent] = []
        if self._failed:
            return out
        buf = self._buf
        while True:
            start = buf.find(_BEGIN_MARK, self._pos)
            if start < 0:
                # keep a possible partial "8=FIX" at the end
                keep = max(self._pos, len(buf) - (len(_BEGIN_MARK) - 1))
                self._pos = keep
                if len(buf) - self._pos > self.max_size:
                    self._fail(out, "no BeginString in the stream")
                return out
            self._pos = start
            soh1 = buf.find(SOH, start)
            if soh1 < 0:
                if len(buf) - start > 64:
                    self._fail(out, "BeginString not terminated")
                return out
            if buf[soh1 + 1 : soh1 + 3] != b"9=":
                if len(buf) - soh1 < 3:
                    return out
                # not a message start: skip it and look for the next BeginString
                reason = "BodyLength (9) is not the second field"
                out.append(Garbled(bytes(buf[start : soh1 + 1]), reason))
                self._pos = soh1 + 1
                continue
            soh2 = buf.find(SOH, soh1 + 3)
            if soh2 < 0:
                if len(buf) - soh1 > 16:
                    self._fail(out, "BodyLength not terminated")
                return out
            length_raw = bytes(buf[soh1 + 3 : soh2])
            if not length_raw.isdigit() or len(length_raw) > 9:
                out.append(Garbled(bytes(buf[start : soh2 + 1]), "BodyLength (9) is not a number"))
                self._pos = soh2 + 1
                continue
            length = int(length_raw)
            if length > self.max_size:
                self._fail(out, f"message of {length} bytes exceeds the maximum of {self.max_size}")
                return out
            body_end = soh2 + 1 + length
            if len(buf) < body_end:
                return out
            cs = buf.find(_CHECKSUM_MARK, body_end - 1)
            if cs < 0:
                if len(buf) - start > self.max_size + 64:
                    self._fail(out, "CheckSum (10) not found within the maximum message size")
                return out
            end = buf.find(SOH, cs + 4)
            if end < 0:
                return out
            end += 1
            frame = bytes(buf[start:end])
            self._pos = end
            out.append(Frame(frame))

    def _fail(self, out: list[ParserEvent], reason: str) -> None:
        self._failed = True
        out.append(StreamError(reason))


def verify_frame(data: bytes) -> str | None:
    """Integrity of one framed message: None when sound, else the reason it is garbled."""
    cs = data.rfind(_CHECKSUM_MARK)
    if cs < 0:
        return "CheckSum (10) missing"
    soh1 = data.find(SOH)
    soh2 = data.find(SOH, soh1 + 1)
    if soh2 < 0 or data[soh1 + 1 : soh1 + 3] != b"9=":
        return "BodyLength (9) missing"
    try:
        length = int(data[soh1 + 3 : soh2])
    except ValueError:
        return "BodyLength (9) is not a number"
    if soh2 + 1 + length != cs + 1:
        return f"BodyLength (9) is {length}, actual {cs + 1 - soh2 - 1}"
    value = data[cs + 4 : -1]
    if len(value) != 3 or not value.isdigit():
        return "CheckSum (10) is not three digits"
    if int(value) != checksum(data[: cs + 1]):
        return f"CheckSum (10) is {int(value)}, computed {checksum(data[: cs + 1])}"
    return None


def split_fields(
    data: bytes, data_fields: dict[int, int] | None = None
) -> list[tuple[int, bytes]]:
    """Split a framed message into (tag, value) pairs in wire order.

    Raises :class:`GarbledMessage` when a field has no ``=`` or a tag that is not a number.
    Length-prefixed data fields (``data_fields``: length tag -> data tag) are read by length.
    """
    lengths = STANDARD_DATA_FIELDS if data_fields is None else data_fields
    parts = data.split(SOH)
    if parts[-1] != b"":
        raise GarbledMessage("message does not end with SOH")
    parts.pop()
    fields: list[tuple[int, bytes]] = []
    append = fields.append
    cache = _TAG_CACHE
    has_length = False
    for part in parts:
        k, sep, v = part.partition(b"=")
        t = cache.get(k)
        if t is None or not sep:
            if t is None and sep:
                t = parse_tag(k)
            if t is None or not sep:
                if has_length:  # a data value holding SOH: read it by its length instead
                    return _split_with_data(data, lengths)
                if not sep:
                    raise GarbledMessage(f"field without '=': {part[:20]!r}")
                raise GarbledMessage(f"tag is not a number: {k[:20]!r}")
        if t in lengths:
            has_length = True
        append((t, v))
    if has_length:
        return _split_with_data(data, lengths)
    return fields


def _split_with_data(data: bytes, lengths: dict[int, int]) -> list[tuple[int, bytes]]:
    """Slow path: a scanner that honours length-prefixed data fields."""
    fields: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    pending_len: tuple[int, int] | None = None  # (data tag, length)
    while pos < n:
        eq = data.find(b"=", pos)
        if eq < 0:
            raise GarbledMessage("field without '='")
        raw_tag = data[pos:eq]
        if SOH in raw_tag:
            raise GarbledMessage("field without '='")
        t = parse_tag(raw_tag)
        if t is None:
            raise GarbledMessage(f"tag is not a number: {raw_tag[:20]!r}")
        if pending_len is not None and pending_len[0] == t:
            end = eq + 1 + pending_len[1]
            if end >= n or data[end : end + 1] != SOH:
                raise GarbledMessage(f"data field {t} does not match its length")
        else:
            end = data.find(SOH, eq + 1)
            if end < 0:
                raise GarbledMessage("message does not end with SOH")
        value = data[eq + 1 : end]
        fields.append((t, value))
        pending_len = None
        count = _length(value) if t in lengths else None
        if count is not None:
            pending_len = (lengths[t], count)
        pos = end + 1
    return fields


def padded_tag(data: bytes, data_fields: dict[int, int] | None = None) -> int | None:
    """The first tag of ``data`` written with leading zeros (``0554=``), as its number; None
    when there is none. The standard writes tags without them; a lenient parser (QuickFIX's,
    ours) reads ``0554`` as 554, so a padded tag could pass for another. Values of
    length-prefixed data fields are skipped by length (they may hold ``<SOH>0``)."""
    if b"\x010" not in data and not data.startswith(b"0"):
        return None
    lengths = STANDARD_DATA_FIELDS if data_fields is None else data_fields
    pos, n = 0, len(data)
    pending: tuple[int, int] | None = None
    while pos < n:
        eq = data.find(b"=", pos)
        if eq < 0:
            return None
        raw = data[pos:eq]
        t = parse_tag(raw)
        if t is None:
            return None
        if len(raw) > 1 and raw.lstrip(b"-")[:1] == b"0":
            return t
        end = -1
        if pending is not None and pending[0] == t:
            end = eq + 1 + pending[1]
            if end >= n or data[end] != SOH[0]:
                end = -1
        if end < 0:
            end = data.find(SOH, eq + 1)
            if end < 0:
                return None
        value = data[eq + 1 : end]
        count = _length(value) if t in lengths else None
        pending = (lengths[t], count) if count is not None else None
        pos = end + 1
    return None


def encode(
    begin_string: bytes,
    fields: Iterable[tuple[int, bytes]],
) -> bytes:
    """Encode a message: ``fields`` start with MsgType (35) and hold no 8, 9 or 10.

    Writes BeginString, the exact BodyLength and the CheckSum. A value never carries SOH out of
    its field, whoever wrote it (a Text (58) from a venue's or an operator's words): only a
    length-prefixed data field's may hold one; in any other, an SOH is written as a space.
    """
    # (each field as its tag's "tag=" made once, the value and SOH: a quarter of what
    # formatting "%d=%s\x01" costs a field)
    parts: list[bytes] = []
    for tag, value in fields:
        prefix = _PREFIXES.get(tag)
        if prefix is None:
            prefix = _prefix(tag)
        parts.append(prefix)
        parts.append(value)
        parts.append(SOH)
    body = b"".join(parts)
    if body.count(SOH) != len(parts) // 3:  # (one count in C: the usual message pays no more)
        body = b"".join(_no_soh_in_text(b"".join(parts[i:i + 3]))
                        for i in range(0, len(parts), 3))
    head = b"8=" + begin_string + b"\x019=%d\x01" % len(body)
    msg = head + body
    return msg + b"10=%03d\x01" % checksum(msg)


_DATA_TAGS = frozenset(b"%d" % t for t in STANDARD_DATA_FIELDS.values())

_PREFIXES: dict[int, bytes] = {}
"""Tag -> ``b"<tag>="``, for the tags messages have been written with."""
_PREFIXES_MAX = 4096


def _prefix(tag: int) -> bytes:
    prefix = b"%d=" % tag
    if len(_PREFIXES) < _PREFIXES_MAX:  # (the tags a process writes are a few hundred)
        _PREFIXES[tag] = prefix
    return prefix


def _no_soh_in_text(part: bytes) -> bytes:
    """An encoded field ``tag=value<SOH>`` whose value holds no SOH unless it is a data field's
    (read by its length)."""
    tag, _, value = part[:-1].partition(b"=")
    if SOH not in value or tag in _DATA_TAGS:
        return part
    return tag + b"=" + value.replace(SOH, b" ") + SOH

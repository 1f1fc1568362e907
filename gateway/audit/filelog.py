"""FIX log files in QuickFIX's ``FileLog`` format, with secrets masked.

One :class:`FileLog` per session writes two files in ``directory``, named as QuickFIX names them
(``FileLog::generatePrefix``: BeginString-SenderCompID-TargetCompID[-Qualifier])::

    FIX.4.4-ISLD-TW44.messages.current.log    both directions, one message per line
    FIX.4.4-ISLD-TW44.event.current.log       session events

Each line is ``YYYYMMDD-HH:MM:SS.ffffff : <text>`` (UTC) and a newline; messages keep their SOH
separators. (QuickFIX writes 9 fractional digits; we write 6 and read 0 to 9.)

Invariant 6 (docs/architecture.md): secrets are masked in the written text by :func:`mask_secrets`.

Invariant 7: the ``incoming``/``outgoing``/``event`` calls only append to an in-memory buffer;
one background thread shared by all logs formats, masks and writes the buffers at least every
:data:`FLUSH_INTERVAL` seconds. :meth:`FileLog.close` writes what is left (in the caller's
thread: at most one interval's worth of lines) and closes the files. Lines are handed to the
operating system, not fsync'ed, as QuickFIX does.

:func:`read_messages` parses such a file back, for audit replay.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, TypeAlias

logger = logging.getLogger(__name__)

SOH = b"\x01"
MASK = b"********"
FLUSH_INTERVAL = 0.1
"""Seconds between background flushes."""

PLAIN_SECRET_TAGS = frozenset({554, 925})
"""Password (554), NewPassword (925): the value up to the next SOH is masked."""

DATA_SECRET_TAGS = frozenset({89, 91, 96, 1402, 1404})
"""Length-prefixed (type DATA) secrets: Signature (89, length in SignatureLength 93),
SecureData (91, SecureDataLen 90), RawData (96, RawDataLength 95), EncryptedPassword (1402,
EncryptedPasswordLen 1401), EncryptedNewPassword (1404, EncryptedNewPasswordLen 1403)."""

LENGTH_TO_DATA: dict[int, int] = {
    90: 91, 93: 89, 95: 96, 212: 213, 348: 349, 350: 351, 352: 353, 354: 355, 356: 357,
    358: 359, 360: 361, 362: 363, 364: 365, 445: 446, 618: 619, 621: 622, 1184: 1185,
    1277: 1278, 1280: 1281, 1282: 1283, 1397: 1398, 1401: 1402, 1403: 1404, 1468: 1469,
    1525: 1527, 1578: 1579, 1620: 1621, 1664: 1665, 1678: 1697, 1733: 1734, 1871: 1872,
    1874: 1875, 2072: 2073, 2074: 2075, 2111: 2112, 2179: 2180, 2287: 2288, 2351: 2352,
    2372: 2371, 2481: 2482, 2494: 2493, 2522: 2521, 2637: 2638, 2651: 2652, 2665: 2666,
    2715: 2716, 2718: 2719, 2721: 2722, 2797: 2798, 2802: 2801, 2809: 2808, 2815: 2814,
    40004: 40005, 40008: 40009, 40978: 40979, 40980: 40981, 40982: 40983, 40984: 40985,
    40986: 40987, 40988: 40989, 41083: 41084, 41101: 41102, 41107: 41108, 41256: 41257,
    41320: 41321, 41324: 41325, 41458: 41459, 41476: 41477, 41482: 41483, 41653: 41654,
    41710: 41711, 41806: 41807, 41811: 41812, 41873: 41874, 41969: 41970, 42025: 42026,
    42171: 42172, 42451: 42452, 42652: 42653, 42947: 42948, 43109: 42684, 43110: 42486,
    43111: 42982,
}  # fmt: skip
"""Every LENGTH field and the DATA/XMLDATA field whose byte count it gives, from the FIX 4.4,
FIXT 1.1 and FIX 5.0 SP2 data dictionaries (QuickFIX ``spec/*.xml``). A DATA value may contain
SOH, so the masker must skip it by length rather than by separator."""

_SECRET_ALTERNATIVES = b"|".join(b"%d" % t for t in sorted(PLAIN_SECRET_TAGS | DATA_SECRET_TAGS))
_SECRET_PROBE = re.compile(b"\x010*(?:" + _SECRET_ALTERNATIVES + b")=")
_SECRET_FIRST = re.compile(b"0*(?:" + _SECRET_ALTERNATIVES + b")=")
"""Two C-level scans tell whether a message can hold a secret at all (the common case: no);
a ``^`` alternative in one pattern would make the scan ~8x slower."""
_MAX_TAG_DIGITS = 9


def _tag_number(text: bytes) -> int:
    """The tag number ``text`` spells, leading zeros and all (``0000000000554`` is 554 to a
    lenient parser, so it is to the masker); -1 when it is not one."""
    if not (text.isdigit() and text.isascii()):
        return -1
    digits = text.lstrip(b"0")
    if len(digits) > _MAX_TAG_DIGITS:
        return -1
    return int(digits) if digits else 0


def mask_secrets(message: bytes) -> bytes:
    """``message`` with the values of Password (554), NewPassword (925), Signature (89),
    SecureData (91), RawData (96), EncryptedPassword (1402) and EncryptedNewPassword (1404)
    replaced by ``********``. Tags are kept.

    Fields are parsed one by one (a tag is the digits between a SOH, or the start, and ``=``), so
    the secret may be anywhere, first field included, and tags such as 1554 or 5540 are left
    alone. DATA fields are skipped by their length field (their value may contain SOH or
    ``554=``). When a length-prefixed secret is masked, its length field (e.g. RawDataLength 95)
    is rewritten to ``8`` so the masked message still parses; BodyLength (9) and CheckSum (10)
    are NOT re-computed, so a masked message fails integrity checks -- it is for reading, not
    for re-sending. Malformed input never raises: it is masked as far as it can be parsed.
    """
    if _SECRET_PROBE.search(message) is None and _SECRET_FIRST.match(message) is None:
        return message
    out: list[bytes] = []
    changed = False
    n = len(message)
    pos = 0
    # (data tag, byte count, index in `out` of the length field's value) from the last field
    expect: tuple[int, int, int] | None = None
    while pos < n:
        eq = message.find(b"=", pos)
        soh = message.find(SOH, pos, eq if eq >= 0 else n)
        if eq < 0 or soh >= 0:  # a field without '=': copy it through
            end = soh if soh >= 0 else n
            out.append(message[pos : end + 1])
            pos = end + 1
            expect = None
            continue
        tag = _tag_number(message[pos:eq])
        start = eq + 1
        end = -1
        if expect is not None and tag == expect[0]:
            length_end = start + expect[1]
            if length_end == n or (length_end < n and message[length_end] == SOH[0]):
                end = length_end
        if end < 0:
            end = message.find(SOH, start)
            if end < 0:
                end = n
        out.append(message[pos:start])
        if tag in PLAIN_SECRET_TAGS or tag in DATA_SECRET_TAGS:
            out.append(MASK)
            changed = True
            if expect is not None and tag == expect[0]:
                out[expect[2]] = str(len(MASK)).encode()
        else:
            out.append(message[start:end])
        expect = None
        if tag in LENGTH_TO_DATA:
            value = message[start:end]
            if value.isdigit() and value.isascii() and len(value) <= _MAX_TAG_DIGITS:
                expect = (LENGTH_TO_DATA[tag], int(value), len(out) - 1)
        out.append(message[end : end + 1])
        pos = end + 1
    return b"".join(out) if changed else message


_SESSION_ID = re.compile(r"^(?P<begin>[^:]+):(?P<sender>.+?)->(?P<target>[^:]+)(?::(?P<qual>.+))?$")


def filename_prefix(session_id: str) -> str:
    """QuickFIX's log file prefix for a session id.

    ``FIX.4.4:ISLD->TW44`` (QuickFIX ``SessionID::toString``) becomes ``FIX.4.4-ISLD-TW44``;
    a string without ``->`` is taken to be a prefix already and returned unchanged.
    """
    match = _SESSION_ID.match(session_id)
    if match is None:
        prefix = session_id
    else:
        parts = [match["begin"], match["sender"], match["target"]]
        if match["qual"]:
            parts.append(match["qual"])
        prefix = "-".join(parts)
    if not prefix or prefix in (".", "..") or any(c in prefix for c in "/\\\x00"):
        raise ValueError(f"session id {session_id!r} cannot name a log file")
    return prefix


_Kind: TypeAlias = Literal["in", "out", "event"]


class FileLog:
    """QuickFIX-format message and event log of one session (see the module docstring).

    ``session_id_for_filename`` is the file prefix (``FIX.4.4-ISLD-TW44``) or a session id
    (``FIX.4.4:ISLD->TW44``), see :func:`filename_prefix`. Files are opened for appending.
    Timestamps must be timezone-aware; they are written in UTC.
    """

    def __init__(self, directory: Path, session_id_for_filename: str) -> None:
        prefix = filename_prefix(session_id_for_filename)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.messages_path = directory / f"{prefix}.messages.current.log"
        self.event_path = directory / f"{prefix}.event.current.log"
        self._buffer: list[tuple[_Kind, datetime, bytes | str]] = []
        self._buffer_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._messages: BinaryIO | None = open(self.messages_path, "ab")  # noqa: SIM115
        try:
            self._events: BinaryIO | None = open(self.event_path, "ab")  # noqa: SIM115
        except BaseException:
            self._messages.close()
            raise
        self._closed = False
        _flusher.register(self)

    def incoming(self, data: bytes, when: datetime) -> None:
        """Log a message received from the counterparty."""
        self._append("in", when, bytes(data))

    def outgoing(self, data: bytes, when: datetime) -> None:
        """Log a message sent to the counterparty."""
        self._append("out", when, bytes(data))

    def event(self, text: str, when: datetime) -> None:
        """Log a session event (newlines in ``text`` are written as ``\\n``)."""
        self._append("event", when, text)

    def flush(self) -> None:
        """Write the buffered lines now, in the calling thread."""
        # The I/O lock is held from the swap to the write, so two flushes (the background one
        # and close) never reorder or drop lines.
        with self._io_lock:
            with self._buffer_lock:
                pending, self._buffer = self._buffer, []
            if pending:
                self._write(pending)

    def _write(self, pending: list[tuple[_Kind, datetime, bytes | str]]) -> None:
        messages: list[bytes] = []
        events: list[bytes] = []
        for kind, when, payload in pending:
            # (QuickFIX's "%Y%m%d-%H:%M:%S.%f", by bytes formatting: a third of strftime's cost,
            # on a thread that holds the GIL the event loop needs)
            stamp = b"%04d%02d%02d-%02d:%02d:%02d.%06d" % (
                when.year, when.month, when.day, when.hour, when.minute, when.second,
                when.microsecond)
            if kind == "event":
                assert isinstance(payload, str)
                text = payload.replace("\r", "\\r").replace("\n", "\\n").encode()
                events.append(b"%s : %s\n" % (stamp, text))
            else:
                assert isinstance(payload, bytes)
                messages.append(b"%s : %s\n" % (stamp, mask_secrets(payload)))
        if self._messages is None or self._events is None:
            logger.error("%d log lines dropped: %s is closed", len(pending), self.messages_path)
            return
        if messages:
            self._messages.write(b"".join(messages))
            self._messages.flush()
        if events:
            self._events.write(b"".join(events))
            self._events.flush()

    def close(self) -> None:
        """Write what is buffered and close both files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _flusher.unregister(self)
        try:
            self.flush()
        finally:
            with self._io_lock:
                for handle in (self._messages, self._events):
                    if handle is not None:
                        handle.close()
                self._messages = self._events = None

    def __enter__(self) -> FileLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _append(self, kind: _Kind, when: datetime, payload: bytes | str) -> None:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"naive datetime {when!r}: pass a UTC (aware) datetime")
        if self._closed:
            raise ValueError(f"{self.messages_path.name}: log is closed")
        entry = (kind, when.astimezone(UTC), payload)
        with self._buffer_lock:
            self._buffer.append(entry)


class _Flusher:
    """One daemon thread flushing every open :class:`FileLog` each :data:`FLUSH_INTERVAL`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: set[FileLog] = set()
        self._thread: threading.Thread | None = None

    def register(self, log: FileLog) -> None:
        with self._lock:
            self._logs.add(log)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fixgw-filelog", daemon=True)
                self._thread.start()

    def unregister(self, log: FileLog) -> None:
        with self._lock:
            self._logs.discard(log)

    def flush_all(self) -> None:
        with self._lock:
            logs = list(self._logs)
        for log in logs:
            try:
                log.flush()
            except Exception:
                logger.exception(
                    "flushing %s failed; its buffered lines are lost", log.messages_path
                )

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL)
            self.flush_all()
            with self._lock:
                if not self._logs:  # nothing to do: let the thread end, register restarts it
                    self._thread = None
                    return


_flusher = _Flusher()
atexit.register(_flusher.flush_all)


# --- reader -----------------------------------------------------------------------------------

_LINE_START = re.compile(rb"^(\d{8})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? : ")


def _parse_stamp(match: re.Match[bytes]) -> datetime:
    date, hh, mm, ss, frac = match.groups()
    micro = int((frac or b"0")[:6].ljust(6, b"0"))
    return datetime(
        int(date[:4]), int(date[4:6]), int(date[6:8]), int(hh), int(mm), int(ss), micro, tzinfo=UTC
    )


def read_messages(path: Path | str) -> Iterator[tuple[datetime, bytes]]:
    """Parse a QuickFIX-format log file back into ``(UTC time, raw message)`` pairs.

    Streams the file. A line that does not start with a timestamp continues the previous
    message (a DATA field holding a newline; the format's one ambiguity, shared with QuickFIX,
    is a DATA value with a newline followed by text shaped like a timestamp, which is read as a
    new record). Accepts 0 to 9 fractional digits and CRLF line ends. Raises
    :class:`ValueError` if the file does not start with a timestamped line. Also reads event
    files (the text as bytes).
    """
    when: datetime | None = None
    parts: list[bytes] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            match = _LINE_START.match(line)
            if match is None:
                if when is None:
                    raise ValueError(f"{path}:{number}: not a FIX log line: {line[:40]!r}")
                parts.append(line)
                continue
            if when is not None:
                yield when, _strip_line_end(b"".join(parts))
            when = _parse_stamp(match)
            parts = [line[match.end() :]]
    if when is not None:
        yield when, _strip_line_end(b"".join(parts))


def read_events(path: Path | str) -> Iterator[tuple[datetime, str]]:
    """Parse an event log file into ``(UTC time, text)`` pairs."""
    for when, text in read_messages(path):
        yield when, text.decode("utf-8", errors="replace")


def _strip_line_end(record: bytes) -> bytes:
    if record.endswith(b"\r\n"):
        return record[:-2]
    if record.endswith(b"\n"):
        return record[:-1]
    return record

"""Where the audit reads messages from: FIX log files of any engine, captures, the store.

Every input becomes a stream of records ``(stamp, raw, line, origin)``:

* ``stamp`` -- when the message was logged, as ``YYYYMMDD-HH:MM:SS[.fraction]`` bytes (UTC).
  Stamps of any precision compare correctly as bytes, so time filters and the merge of several
  inputs never build a datetime; b"" when the input gives no time.
* ``raw`` -- the message, SOH-delimited.
* ``line`` -- where it starts in its input (1-based; the row id for the store), for findings.
* ``origin`` -- the :class:`Origin` it came from: the input's name and, where the input says,
  the session it belongs to (a log file's QuickFIX prefix ``FIX.4.4-GATEWAY-CLIENT1``, the
  store's session id), which tells which side is "us".

Formats, recognised by their first non-empty line:

* **file logs** -- ``<timestamp> : <message>`` lines, written by fixgw (:mod:`.filelog`),
  QuickFIX's ``FileLog`` and engines that copy it; a line that does not start with a timestamp
  continues the message before it (a DATA value holding a newline).
* **captures** -- any text holding ``8=FIX...10=nnn`` messages, delimited by SOH or ``|``, one
  or more a line, with other text around them (application logs, ``tshark`` output); the time
  is a timestamp at the start of the line (``2026-01-02 03:04:05.678``, ``20260102-03:04:05``),
  else the message's SendingTime (52).

Either may be gzip'ed (recognised by its magic bytes, not its name). A directory stands for its
``*.messages.*`` files (fixgw's and QuickFIX's message logs; event logs are not messages).
Reading streams: a few megabytes in memory at a time, whatever the file's size.
"""

from __future__ import annotations

import gzip
import itertools
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from .errors import InputError
from .filelog import filename_prefix
from .scan import CSCAN

if TYPE_CHECKING:
    from ._cscan import Batch

SOH = b"\x01"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(eq=False, slots=True)
class Origin:
    """An input (or, for the store, one session's rows in it)."""

    name: str
    prefix: str | None = None
    """QuickFIX's log file prefix of the session (``FIX.4.4-GATEWAY-CLIENT1``): its first
    CompID is "us". None: the input does not say."""
    sessions: dict[tuple[bytes, bytes], object] = field(default_factory=dict)
    """The auditor's cache: (SenderCompID, TargetCompID) -> its session (of this origin)."""


Record = tuple[bytes, bytes, int, Origin]


class MessageLogRows(Protocol):
    """The store's ``message_log`` as the audit reads it (``gateway.store.auditview``): rows
    ``(session id, direction, logged at, message)`` in the order they were logged."""

    def message_log(
        self, session_ids: Sequence[str] | None, since: datetime | None, until: datetime | None
    ) -> Iterator[tuple[str, str, datetime, bytes]]: ...


# --- time stamps ---------------------------------------------------------------------------------

_STAMP_OK = re.compile(rb"\d{8}-\d\d:\d\d:\d\d(?:\.\d{1,9})?\Z")
_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d{1,9}))?")
_COMPACT = re.compile(rb"(\d{8}-\d\d:\d\d:\d\d(?:\.\d{1,9})?)")
_SENDING_TIME = re.compile(rb"(?:^|\x01)52=(\d{8}-\d\d:\d\d:\d\d(?:\.\d{1,9})?)\x01")


def stamp_of(when: datetime) -> bytes:
    """A datetime as a stamp (UTC, microseconds)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: pass a UTC (aware) one")
    return when.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S.%f").encode()


def parse_time(text: str) -> bytes:
    """A time given on the command line as a stamp: ``20260102-03:04:05[.f]``, ISO 8601
    (``2026-01-02T03:04:05[.f][Z|+hh:mm]``, a space for the T), or a date (midnight). Times
    without a zone are UTC. ValueError when it is none of these."""
    t = text.strip()
    if _STAMP_OK.match(t.encode()):
        return t.encode()
    try:
        when = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 2026-01-02T03:04:05, 20260102-03:04:05 "
                         "or 2026-01-02; UTC unless a zone is given)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return stamp_of(when)


CLOCK_MINUTES = 1024
"""Minutes :class:`Clock` remembers at most (a cache: it starts again when full)."""


class Clock:
    """Stamps to seconds since the epoch (float), for deadlines; the datetime work is done
    once a minute of log time."""

    def __init__(self) -> None:
        self._minutes: dict[bytes, float] = {}

    @property
    def size(self) -> int:
        return len(self._minutes)

    def seconds(self, stamp: bytes) -> float | None:
        if len(stamp) < 17:
            return None
        base = self._minutes.get(stamp[:14])
        if base is None:
            try:
                base = datetime(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]),
                                int(stamp[9:11]), int(stamp[12:14]), tzinfo=UTC).timestamp()
            except ValueError:
                return None
            if len(self._minutes) >= CLOCK_MINUTES:
                self._minutes.clear()
            self._minutes[stamp[:14]] = base
        try:
            return base + float(stamp[15:])
        except ValueError:
            return None


def format_stamp(stamp: bytes) -> str:
    """A stamp as people read it: ``2026-01-02 03:04:05.678``."""
    s = stamp.decode("ascii", "replace")
    if len(s) < 17:
        return s or "?"
    return f"{s[:4]}-{s[4:6]}-{s[6:8]} {s[9:]}"


# --- opening inputs ------------------------------------------------------------------------------


def expand(paths: Iterable[str]) -> list[Path]:
    """The files ``paths`` name: a directory stands for its message logs, sorted by name.
    InputError for a path that does not exist or a directory without message logs."""
    out: list[Path] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and ".messages." in f.name)
            if not found:
                raise InputError(text, None, "a directory without FIX message logs "
                                 "(*.messages.*)")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise InputError(text, None, "no such file or directory")
    return out


def _prefix_of(path: Path) -> str | None:
    name = path.name
    i = name.find(".messages")
    return name[:i] if i > 0 else None


def _open(path: Path) -> BinaryIO:
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError(str(path), None, exc.strerror or str(exc)) from None
    try:
        head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
    except OSError as exc:
        handle.close()
        raise InputError(str(path), None, exc.strerror or str(exc)) from None
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


def is_log_line(line: bytes) -> int:
    """Where the message starts in a file-log line (after ``<timestamp> : ``); -1 when the line
    does not start with a timestamp."""
    sep = line.find(b" : ", 17, 40)
    if sep < 0 or line[8:9] != b"-" or line[11:12] != b":" or not line[:8].isdigit():
        return -1
    return sep + 3


def _strip_eol(b: bytes) -> bytes:
    if b.endswith(b"\n"):
        return b[:-2] if b.endswith(b"\r\n") else b[:-1]
    return b


class FileSource:
    """One file: a file log or a capture (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.origin = Origin(self.name, _prefix_of(path))
        self.is_event_log = ".event." in path.name

    def records(self) -> Iterator[Record]:
        """Every message of the file, in file order. InputError when it is not a FIX log or
        cannot be read to its end."""
        with _open(self.path) as handle:
            lines = _Lines(handle, self.name)
            kind = _sniff(lines, self.name)
            if kind == "filelog":
                if CSCAN is not None:
                    yield from _filelog_chunks(handle, lines, self.origin)
                else:
                    yield from _filelog_fast(handle, lines, self.origin)
            elif kind == "capture":
                yield from _capture_records(lines, self.origin)

    def items(self) -> Iterator[Record | Batch]:
        """:meth:`records`, with a file log's messages in batches (``_cscan.Batch``, one a
        chunk read) where ``_cscan`` is built: what the compiled audit reads
        (:meth:`Auditor.feed_batches <gateway.audit.checker.Auditor.feed_batches>`)."""
        with _open(self.path) as handle:
            lines = _Lines(handle, self.name)
            kind = _sniff(lines, self.name)
            if kind == "filelog":
                if CSCAN is not None:
                    yield from _filelog_batches(handle, lines, self.origin)
                else:
                    yield from _filelog_fast(handle, lines, self.origin)
            elif kind == "capture":
                yield from _capture_records(lines, self.origin)

    def follow(self, stopped: Callable[[], bool], poll: float = 0.1) -> Iterator[Record | None]:
        """Like :meth:`records`, then keeps reading what is appended (``tail -F``): yields None
        whenever it has waited ``poll`` seconds for more, until ``stopped()`` is true. A file
        truncated or replaced is read again from its start."""
        with open(self.path, "rb") as first:
            if first.read(2) == GZIP_MAGIC:
                raise InputError(self.name, None, "--follow reads plain files, not gzip")
        lines = _FollowLines(self.path, stopped, poll)
        kind = _sniff(lines, self.name)
        if kind == "filelog":
            yield from _filelog_records(lines, self.origin, follow=True)
        elif kind == "capture":
            yield from _capture_records(lines, self.origin, follow=True)


class _Lines:
    """A binary file's lines with their numbers; a broken gzip stream is an InputError."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self._handle = handle
        self._name = name
        self.number = 0
        self._peeked: bytes | None = None

    def peek(self) -> bytes | None:
        """The next line without consuming it (None at the end)."""
        if self._peeked is None:
            self._peeked = self._read()
        return self._peeked or None

    def _read(self) -> bytes:
        try:
            return self._handle.readline()
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(self._name, self.number + 1, f"unreadable: {exc}") from None

    def __iter__(self) -> Iterator[bytes | None]:
        if self._peeked is not None:
            line, self._peeked = self._peeked, None
            if not line:
                return
            self.number += 1
            yield line
        handle, name = self._handle, self._name
        number = self.number
        try:
            for line in handle:
                number += 1
                self.number = number
                yield line
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(name, number + 1, f"unreadable: {exc}") from None


class _FollowLines(_Lines):
    """The lines of a growing file: a line is handed on once its newline is written; None is
    handed on after each idle ``poll``."""

    def __init__(self, path: Path, stopped: Callable[[], bool], poll: float) -> None:
        self._path = path
        self._stopped = stopped
        self._poll = poll
        super().__init__(open(path, "rb"), str(path))  # noqa: SIM115 - closed in __iter__
        self._partial = b""

    def _read(self) -> bytes:
        for line in self._lines():
            if line is not None:
                return line
        return b""

    def _lines(self) -> Iterator[bytes | None]:
        while True:
            chunk = self._handle.readline()
            if chunk:
                line = self._partial + chunk
                if line.endswith(b"\n"):
                    self._partial = b""
                    yield line
                else:
                    self._partial = line
                continue
            if self._stopped():
                if self._partial:
                    line, self._partial = self._partial, b""
                    yield line
                return
            try:
                size = self._path.stat().st_size
            except OSError:
                size = -1
            if 0 <= size < self._handle.tell():  # truncated (or replaced by a shorter file)
                self._handle.close()
                self._handle = open(self._path, "rb")  # noqa: SIM115
                self._partial = b""
            yield None
            time.sleep(self._poll)

    def __iter__(self) -> Iterator[bytes | None]:
        try:
            if self._peeked is not None:
                line, self._peeked = self._peeked, None
                if line:
                    self.number += 1
                    yield line
            for more in self._lines():
                if more is not None:
                    self.number += 1
                yield more
        finally:
            self._handle.close()


def _sniff(lines: _Lines, name: str) -> str | None:
    """"filelog", "capture", or None for an empty input; InputError when the first line with
    text is neither."""
    while True:
        line = lines.peek()
        if line is None:
            return None
        if line.strip():
            break
        next(iter(lines))  # a blank line: skip it
    if is_log_line(line) >= 0:
        return "filelog"
    if b"8=FIX" in line:
        return "capture"
    raise InputError(name, lines.number + 1, f"not a FIX log: {line[:60]!r}")


def _filelog_records(lines: _Lines, origin: Origin, follow: bool = False) -> Iterator[Record]:
    """``<timestamp> : <message>`` lines; continuation lines are joined to their message (a
    message is complete when the next timestamped line, the end, or -- following -- a pause
    comes). Yields None (following only) when idle."""
    stamp = b""
    text = b""
    extra: list[bytes] | None = None
    start = 0
    number = lines.number
    for line in lines:
        if line is None:  # following, and idle: what we hold is complete
            if stamp:
                yield (stamp, _join(text, extra), start, origin)
                stamp = b""
            yield None  # type: ignore[misc]
            continue
        number += 1
        sep = line.find(b" : ", 17, 40)
        if sep > 0 and line[8:9] == b"-" and line[11:12] == b":" and line[:8].isdigit():
            if stamp:
                yield (stamp, _join(text, extra), start, origin)
            stamp = line[:sep]
            text = line[sep + 3:]
            extra = None
            start = number
        elif not stamp:
            if line.strip():
                raise InputError(origin.name, number, f"not a FIX log line: {line[:60]!r}")
        elif extra is None:
            extra = [line]
        else:
            extra.append(line)
    if stamp:
        yield (stamp, _join(text, extra), start, origin)


def _filelog_fast(handle: BinaryIO, lines: _Lines, origin: Origin) -> Iterator[Record]:
    """:func:`_filelog_records` for a whole file: the same, with the file read directly (one
    generator, not two: this is the loop a million-line log goes through)."""
    stamp = b""
    text = b""
    extra: list[bytes] | None = None
    start = 0
    number = lines.number  # the blank lines before the first are counted
    first = lines.peek()
    try:
        for line in itertools.chain((first,) if first else (), handle):
            number += 1
            sep = line.find(b" : ", 17, 40)
            if sep > 0 and line[8:9] == b"-" and line[11:12] == b":":
                if stamp:
                    if extra is None:
                        yield (stamp, text[:-2] if text[-2:] == b"\r\n" else text[:-1]
                               if text[-1:] == b"\n" else text, start, origin)
                    else:
                        yield (stamp, _join(text, extra), start, origin)
                stamp = line[:sep]
                text = line[sep + 3:]
                extra = None
                start = number
            elif not stamp:
                if line.strip():
                    raise InputError(origin.name, number, f"not a FIX log line: {line[:60]!r}")
            elif extra is None:
                extra = [line]
            else:
                extra.append(line)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(origin.name, number + 1, f"unreadable: {exc}") from None
    if stamp:
        yield (stamp, _join(text, extra), start, origin)


CHUNK = 1 << 22
"""Bytes read at a time by :func:`_filelog_chunks`."""


def _filelog_chunks(handle: BinaryIO, lines: _Lines, origin: Origin,
                    chunk: int = CHUNK) -> Iterator[Record]:
    """:func:`_filelog_fast` in C: the records of :func:`_filelog_batches`."""
    for batch in _filelog_batches(handle, lines, origin, chunk):
        yield from batch.records()


def _filelog_batches(handle: BinaryIO, lines: _Lines, origin: Origin,
                     chunk: int = CHUNK) -> Iterator[Batch]:
    """The file read ``chunk`` bytes at a time into one buffer, each chunk's lines split into
    one batch of messages in C (``_cscan.filelog_batch``).

    The buffer is used again for the next chunk (the unfinished message moved to its start):
    a batch holds until the next one is read (what reads it is done with it by then), and the
    read costs no fresh memory per chunk (fresh pages cost a third of the audit's system
    time)."""
    assert CSCAN is not None
    split = CSCAN.filelog_batch
    name = origin.name
    number = lines.number
    first = lines.peek() or b""
    buf = bytearray(max(2 * chunk, len(first) + chunk))
    buf[:len(first)] = first
    filled = len(first)
    while True:
        if len(buf) - filled < chunk:  # a message longer than the buffer: it grows
            buf.extend(bytes(filled + chunk - len(buf)))
        error: Exception | None = None
        try:
            with memoryview(buf) as view:
                got = handle.readinto(view[filled:filled + chunk])  # type: ignore[attr-defined]
        except (OSError, EOFError, zlib.error) as exc:
            error, got = exc, 0
        eof = not got and error is None
        filled += got or 0
        batch, consumed, number, bad = split(buf, filled, eof, number, origin)
        if len(batch):
            yield batch
        if bad:
            end = buf.find(b"\n", consumed, filled)
            line = bytes(buf[consumed:end + 1 if end >= 0 else filled])
            raise InputError(name, bad, f"not a FIX log line: {line[:60]!r}")
        if error is not None:
            raise InputError(name, number + 1, f"unreadable: {error}") from None
        if eof:
            return
        rest = filled - consumed
        buf[:rest] = buf[consumed:filled]
        filled = rest


def _join(text: bytes, extra: list[bytes] | None) -> bytes:
    if extra is None:
        if text[-1:] == b"\n":
            return text[:-2] if text[-2:-1] == b"\r" else text[:-1]
        return text
    return _strip_eol(text + b"".join(extra))


_CAPTURE_START = re.compile(rb"8=FIX[A-Za-z0-9.]*([\x01|])9=")


def _capture_records(lines: _Lines, origin: Origin, follow: bool = False) -> Iterator[Record]:
    """Messages anywhere in text lines (see the module docstring)."""
    number = lines.number
    for line in lines:
        if line is None:
            yield None  # type: ignore[misc]
            continue
        number += 1
        pos = 0
        line_stamp = b""
        stamped = False
        while True:
            m = _CAPTURE_START.search(line, pos)
            if m is None:
                break
            delim = m.group(1)
            end_mark = delim + b"10="
            end = line.find(end_mark, m.end())
            if end < 0:
                break
            stop = end + len(end_mark)
            while stop < len(line) and line[stop:stop + 1].isdigit():
                stop += 1
            raw = line[m.start():stop]
            if delim == b"|":
                raw = raw.replace(b"|", SOH)
            raw += SOH
            if not stamped:
                line_stamp, stamped = _line_stamp(line[:m.start()]), True
            stamp = line_stamp
            if not stamp:
                st = _SENDING_TIME.search(raw)
                stamp = st.group(1) if st else b""
            yield (stamp, raw, number, origin)
            pos = stop


def _line_stamp(prefix: bytes) -> bytes:
    m = _ISO.search(prefix)
    if m is not None:
        y, mo, d, hms, frac = m.groups()
        return y + mo + d + b"-" + hms + (b"." + frac if frac else b"")
    c = _COMPACT.search(prefix)
    return c.group(1) if c is not None else b""


class StoreSource:
    """The store's ``message_log`` (both directions of every session, in the order logged)."""

    def __init__(self, rows: MessageLogRows, name: str,
                 session_ids: Sequence[str] | None = None,
                 since: datetime | None = None, until: datetime | None = None) -> None:
        self.rows = rows
        self.name = name
        self.session_ids = session_ids
        self.since = since
        self.until = until

    def records(self) -> Iterator[Record]:
        origins: dict[str, Origin] = {}
        for number, (session_id, _direction, when, data) in enumerate(
                self.rows.message_log(self.session_ids, self.since, self.until), 1):
            origin = origins.get(session_id)
            if origin is None:
                try:
                    prefix: str | None = filename_prefix(session_id)
                except ValueError:
                    prefix = None
                origin = origins[session_id] = Origin(f"{self.name} {session_id}", prefix)
            yield (stamp_of(when), bytes(data), number, origin)

"""Parsing of QuickFIX acceptance scripts (``.def`` files) and comparison of messages.

Pure code: no I/O except :func:`load_script` / :func:`load_patterns` reading a file.

A script is a list of :class:`Step`. ``I`` and ``E`` steps keep their message as a *template*:
``<TIME>`` placeholders are only replaced, and BodyLength / CheckSum only computed, when the step
is played (:func:`render`), so that times are those of the moment the message is sent.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

SOH = b"\x01"

Field = tuple[str, str]


class ScriptSyntaxError(ValueError):
    """A line of a ``.def`` file that is not understood."""


class StepKind(enum.Enum):
    CONNECT = "iCONNECT"
    DISCONNECT = "iDISCONNECT"
    SEND = "I"
    EXPECT = "E"
    EXPECT_DISCONNECT = "eDISCONNECT"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    connection: int
    line_no: int
    template: bytes = b""
    """The message as written (SOH-terminated fields, placeholders not yet replaced)."""


@dataclass(frozen=True)
class Script:
    name: str
    steps: tuple[Step, ...]


_PREFIX = re.compile(rb"^([IEie])(?:(\d),)?(.*)$", re.DOTALL)


def parse_script(data: bytes, name: str) -> Script:
    """Parse the bytes of a ``.def`` file. Raises :class:`ScriptSyntaxError`."""
    steps: list[Step] = []
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip() or line.startswith(b"#"):
            continue
        m = _PREFIX.match(line)
        if m is None:
            raise ScriptSyntaxError(f"{name}:{line_no}: cannot parse line {_show(line)}")
        command, digit, rest = m.group(1), m.group(2), m.group(3)
        connection = int(digit) if digit is not None else 1
        if command == b"i":
            if rest == b"CONNECT":
                steps.append(Step(StepKind.CONNECT, connection, line_no))
            elif rest == b"DISCONNECT":
                steps.append(Step(StepKind.DISCONNECT, connection, line_no))
            else:
                raise ScriptSyntaxError(f"{name}:{line_no}: unknown command {_show(line)}")
        elif command == b"e":
            if rest == b"DISCONNECT":
                steps.append(Step(StepKind.EXPECT_DISCONNECT, connection, line_no))
            else:
                raise ScriptSyntaxError(f"{name}:{line_no}: unknown command {_show(line)}")
        else:
            if not rest:
                raise ScriptSyntaxError(f"{name}:{line_no}: empty message")
            if not rest.endswith(SOH):
                rest += SOH
            kind = StepKind.SEND if command == b"I" else StepKind.EXPECT
            steps.append(Step(kind, connection, line_no, rest))
    return Script(name, tuple(steps))


def load_script(path: Path, name: str | None = None) -> Script:
    return parse_script(path.read_bytes(), name if name is not None else path.name)


# --------------------------------------------------------------------------- rendering

_TIME = re.compile(rb"<TIME(?:([+-])(\d+))?>")
TIME_FORMAT = "%Y%m%d-%H:%M:%S"


def substitute_times(template: bytes, now: datetime) -> bytes:
    """Replace ``<TIME>``, ``<TIME+n>``, ``<TIME-n>`` by ``now`` (+/- n seconds), formatted
    ``YYYYMMDD-HH:MM:SS``. ``now`` is expected to be in UTC."""

    def repl(m: re.Match[bytes]) -> bytes:
        shift = 0
        if m.group(1) is not None:
            shift = int(m.group(2))
            if m.group(1) == b"-":
                shift = -shift
        return (now + timedelta(seconds=shift)).strftime(TIME_FORMAT).encode("ascii")

    return _TIME.sub(repl, template)


def checksum(data: bytes) -> bytes:
    return b"%03d" % (sum(data) % 256)


def _tag(field: bytes) -> bytes:
    return field.split(b"=", 1)[0]


def fixify(message: bytes) -> bytes:
    """Insert BodyLength (9) after BeginString and append CheckSum (10) when absent.

    ``message`` is a sequence of SOH-terminated fields. A message whose first field is not
    BeginString is returned unchanged (it is meant to be sent as written); so are written 9 and
    10 fields. BodyLength counts the bytes after the 9 field up to the 10 field (or the end);
    CheckSum is the sum of all bytes before the 10 field, modulo 256.
    """
    if not message.startswith(b"8="):
        return message
    fields = [f + SOH for f in message.split(SOH)[:-1]]
    tags = [_tag(f) for f in fields]
    has_length = b"9" in tags
    trailer_at = tags.index(b"10") if b"10" in tags else len(fields)
    if not has_length:
        body = b"".join(fields[1:trailer_at])
        fields.insert(1, b"9=%d" % len(body) + SOH)
        trailer_at += 1
    if trailer_at == len(fields):
        fields.append(b"10=" + checksum(b"".join(fields)) + SOH)
    return b"".join(fields)


def render(template: bytes, now: datetime) -> bytes:
    """The bytes of an ``I`` or ``E`` step, as sent / as expected, at time ``now`` (UTC)."""
    return fixify(substitute_times(template, now))


# --------------------------------------------------------------------------- comparison


def split_fields(message: bytes) -> list[Field]:
    """``b"8=FIX.4.4\\x019=5\\x01..."`` -> ``[("8", "FIX.4.4"), ("9", "5"), ...]``."""
    out: list[Field] = []
    for raw in message.split(SOH):
        if not raw:
            continue
        tag, _, value = raw.decode("latin-1").partition("=")
        out.append((tag, value))
    return out


def show(message: bytes) -> str:
    """Printable form of a message: SOH shown as ``|``."""
    return message.decode("latin-1").replace("\x01", "|")


def _show(line: bytes) -> str:
    return repr(show(line))


def load_patterns(path: Path) -> dict[str, re.Pattern[str]]:
    """Read ``fields.fmt``: one ``tag=regex`` a line."""
    patterns: dict[str, re.Pattern[str]] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        tag, sep, regex = line.partition("=")
        if not sep or not tag.isdigit():
            raise ValueError(f"{path}: bad line {line!r}")
        patterns[tag] = re.compile(regex)
    return patterns


class Mode(enum.Enum):
    STRICT = "strict"
    LENIENT = "lenient"


@dataclass(frozen=True)
class Comparator:
    """Compare an expected message (rendered ``E`` line) with a received one.

    Tags in ``patterns`` are matched with :func:`re.match` (anchored at the start of the value,
    not at its end), other values must be equal.

    * strict: same tags in the same order, same number of fields (BodyLength is an ordinary
      field, so its value must be equal too);
    * lenient: same multiset of ``tag=value`` pairs, leaving out 9, 10 and pattern tags.
    """

    patterns: Mapping[str, re.Pattern[str]]
    mode: Mode = Mode.STRICT

    def compare(self, expected: bytes, received: bytes) -> str | None:
        """``None`` when they match, else the reason why not."""
        exp = split_fields(expected)
        got = split_fields(received)
        if self.mode is Mode.STRICT:
            return self._strict(exp, got)
        return self._lenient(exp, got)

    def _value_ok(self, tag: str, expected: str, received: str) -> bool:
        pattern = self.patterns.get(tag)
        if pattern is None:
            return expected == received
        return pattern.match(received) is not None

    def _strict(self, exp: Sequence[Field], got: Sequence[Field]) -> str | None:
        for index, (e, g) in enumerate(zip(exp, got, strict=False)):
            if e[0] != g[0]:
                return f"field #{index + 1}: expected tag {e[0]} but found tag {g[0]}"
            if not self._value_ok(e[0], e[1], g[1]):
                pattern = self.patterns.get(e[0])
                if pattern is not None:
                    return (
                        f"field #{index + 1}: {g[0]}={g[1]!r} does not match "
                        f"pattern {pattern.pattern!r}"
                    )
                return f"field #{index + 1}: {e[0]} should be {e[1]!r} but was {g[1]!r}"
        if len(exp) != len(got):
            if len(exp) > len(got):
                missing = "|".join(f"{t}={v}" for t, v in exp[len(got) :])
                return f"received {len(got)} fields, expected {len(exp)}: missing {missing}"
            extra = "|".join(f"{t}={v}" for t, v in got[len(exp) :])
            return f"received {len(got)} fields, expected {len(exp)}: extra {extra}"
        return None

    def _lenient(self, exp: Sequence[Field], got: Sequence[Field]) -> str | None:
        skip = {"9", "10", *self.patterns}
        e = Counter(f for f in exp if f[0] not in skip)
        g = Counter(f for f in got if f[0] not in skip)
        if e == g:
            return None
        missing = "|".join(f"{t}={v}" for t, v in sorted((e - g).elements()))
        extra = "|".join(f"{t}={v}" for t, v in sorted((g - e).elements()))
        return f"fields differ (ignoring order, 9, 10, {', '.join(sorted(self.patterns))}): " + (
            f"missing {missing or '-'}; unexpected {extra or '-'}"
        )

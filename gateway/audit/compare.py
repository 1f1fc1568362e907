"""What came back from a replay against what the log says was sent the first time
(``fixgw replay``), field by field.

Messages are paired by what they answer: each original outbound application message with the
replayed one of the same MsgType and ClOrdID (11) -- or BusinessRejectRefID (379) -- in the
same order. Fields that legitimately differ are not compared: the header's times and numbers
(SendingTime 52, MsgSeqNum 34, PossDupFlag 43, ...), TransactTime (60), and the trailer. Ids the
gateway makes up -- OrderID (37), ExecID (17), ExecRefID (19), SecondaryOrderID (198),
SecondaryExecID (527), TrdMatchID (880) -- must map consistently: the first time an original id
is met it is paired with the replayed one, and from then on the same original id must come back
as the same replayed id (and no two original ids as one).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .decode import field_name, message_name

IGNORED = frozenset({8, 9, 10, 34, 43, 49, 50, 52, 56, 57, 60, 89, 93, 97, 115, 122, 128,
                     369, 1128})
"""Not compared: they differ between any two runs."""
MAPPED: dict[int, str] = {37: "order", 17: "exec", 19: "exec", 198: "secondary", 527: "exec",
                          880: "match"}
"""Ids made up by the gateway (or its venue): compared through a consistent mapping; tags of
one family share it (ExecRefID names an ExecID)."""


@dataclass(frozen=True)
class Sent:
    """An application message as read from the log or off the wire."""

    fields: list[tuple[int, bytes]]
    where: str = ""

    def get(self, tag: int) -> bytes | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    @property
    def msg_type(self) -> bytes:
        return self.get(35) or b"?"

    @property
    def key(self) -> tuple[bytes, bytes]:
        return (self.msg_type, self.get(11) or self.get(379) or b"")


@dataclass(frozen=True)
class Difference:
    text: str
    where: str = ""


def _s(v: bytes | None) -> str:
    return "(absent)" if v is None else v.decode("utf-8", "replace")


class Comparison:
    """Pairs and compares (see the module docstring)."""

    def __init__(self, begin: str = "FIX.4.4", appl_ver: str | None = None) -> None:
        self.begin = begin
        self.appl_ver = appl_ver
        self.forward: dict[tuple[str, bytes], bytes] = {}
        self.backward: dict[tuple[str, bytes], bytes] = {}
        self.differences: list[Difference] = []
        self.compared = 0

    def _name(self, tag: int) -> str:
        return f"{field_name(tag, self.begin, self.appl_ver)} ({tag})"

    def run(self, originals: list[Sent], replayed: list[Sent]) -> list[Difference]:
        got: dict[tuple[bytes, bytes], list[Sent]] = defaultdict(list)
        for m in replayed:
            got[m.key].append(m)
        used: dict[tuple[bytes, bytes], int] = defaultdict(int)
        for original in originals:
            key = original.key
            i = used[key]
            label = (f"{message_name(key[0], self.begin, self.appl_ver)} #{i + 1} for "
                     f"ClOrdID {_s(key[1] or None)}")
            if i >= len(got[key]):
                self.differences.append(Difference(f"{label}: not sent back in the replay",
                                                   original.where))
                continue
            used[key] = i + 1
            self.compared += 1
            self._compare(label, original, got[key][i])
        for key, messages in got.items():
            for m in messages[used[key]:]:
                self.differences.append(Difference(
                    f"{message_name(key[0], self.begin, self.appl_ver)} for ClOrdID "
                    f"{_s(key[1] or None)}: sent in the replay, not in the log: "
                    + " ".join(f"{t}={_s(v)}" for t, v in m.fields if t not in IGNORED)))
        return self.differences

    def _compare(self, label: str, original: Sent, replayed: Sent) -> None:
        a = {t: v for t, v in reversed(original.fields) if t not in IGNORED}
        b = {t: v for t, v in reversed(replayed.fields) if t not in IGNORED}
        for tag in sorted(a.keys() | b.keys()):
            va, vb = a.get(tag), b.get(tag)
            family = MAPPED.get(tag)
            if family is not None and va is not None and vb is not None:
                known = self.forward.get((family, va))
                if known is None and (family, vb) not in self.backward:
                    self.forward[(family, va)] = vb
                    self.backward[(family, vb)] = va
                    continue
                if known == vb:
                    continue
                self.differences.append(Difference(
                    f"{label}: {self._name(tag)} {_s(va)} came back as {_s(vb)}, but it was "
                    f"{_s(known) if known is not None else 'another id'} before",
                    original.where))
                continue
            if va != vb:
                self.differences.append(Difference(
                    f"{label}: {self._name(tag)} was {_s(va)}, replayed {_s(vb)}",
                    original.where))

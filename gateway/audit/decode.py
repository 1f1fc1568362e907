"""Messages decoded for people: each field with its name and, for enumerated values, what the
value means, from the data dictionaries fixgw ships (``gateway/fix/specs``).

FIX 4.0 to 4.3 messages are named with the FIX 4.4 dictionary (the fields they share have the
same names; a few 4.2 names differ, such as LastShares for LastQty 32). FIXT 1.1 sessions take
the header and session messages from FIXT 1.1 and the rest from the session's application
version (ApplVerID 1128 of the message, else the Logon's DefaultApplVerID 1137, else 5.0 SP2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from gateway.fix.dictionary import APPL_VER_IDS, DataDictionary, DictionaryError, standard

from .scan import all_fields


@dataclass(frozen=True, slots=True)
class Field:
    tag: int
    name: str
    value: str
    meaning: str


@cache
def _dictionary(version: str) -> DataDictionary | None:
    try:
        return standard(version)
    except (DictionaryError, OSError):
        return None


def dictionaries(begin: str, appl_ver: str | None = None) -> tuple[DataDictionary | None, ...]:
    """The dictionaries to name a message's fields with, the first one that knows a tag wins."""
    if begin.startswith("FIXT"):
        app = {"FIX.5.0SP1": "FIX.5.0SP2", "FIX.4.4": "FIX.4.4", "FIX.5.0": "FIX.5.0"}.get(
            appl_ver or "", "FIX.5.0SP2")
        return (_dictionary("FIXT.1.1"), _dictionary(app))
    if begin.startswith("FIX.5"):
        return (_dictionary("FIXT.1.1"), _dictionary("FIX.5.0SP2"))
    return (_dictionary("FIX.4.4"),)


def decode(raw: bytes, begin: str = "FIX.4.4", appl_ver: str | None = None) -> list[Field]:
    """Every field of ``raw``, named."""
    pairs = all_fields(raw)
    for tag, value in pairs:
        if tag == 1128:
            appl_ver = APPL_VER_IDS.get(value, appl_ver)
            break
    dds = dictionaries(begin, appl_ver)
    out: list[Field] = []
    for tag, value in pairs:
        name, meaning = f"tag {tag}", ""
        for dd in dds:
            fd = dd.fields.get(tag) if dd is not None else None
            if fd is not None:
                name = fd.name
                if fd.labels:
                    label = fd.labels.get(value)
                    if label is None and tag == 35:
                        message = dd.messages.get(value) if dd is not None else None
                        label = message.name if message is not None else None
                    meaning = (label or "").replace("_", " ").lower()
                break
        if tag == 35 and not meaning:
            meaning = message_name(value, begin, appl_ver)
        out.append(Field(tag, name, value.decode("utf-8", "replace"), meaning))
    return out


def message_name(msg_type: bytes | None, begin: str = "FIX.4.4",
                 appl_ver: str | None = None) -> str:
    """``ExecutionReport`` for ``b"8"``; the code itself when no dictionary knows it."""
    if msg_type is None:
        return "?"
    for dd in dictionaries(begin, appl_ver):
        if dd is not None:
            m = dd.messages.get(msg_type)
            if m is not None:
                return m.name
    return msg_type.decode("utf-8", "replace")


def field_name(tag: int, begin: str = "FIX.4.4", appl_ver: str | None = None) -> str:
    for dd in dictionaries(begin, appl_ver):
        if dd is not None:
            fd = dd.fields.get(tag)
            if fd is not None:
                return fd.name
    return f"tag {tag}"


def value_meaning(tag: int, value: bytes, begin: str = "FIX.4.4",
                  appl_ver: str | None = None) -> str:
    for dd in dictionaries(begin, appl_ver):
        if dd is not None:
            fd = dd.fields.get(tag)
            if fd is not None and fd.labels:
                return (fd.labels.get(value) or "").replace("_", " ").lower()
    return ""

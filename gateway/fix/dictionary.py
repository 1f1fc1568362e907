"""Data dictionaries in QuickFIX's XML format (FIX44.xml, FIXT11.xml, FIX50SP2.xml, ...).

A dictionary says which fields exist (number, name, type, enumerated values), which fields
belong to the header, the trailer and each message type, which are required, and how repeating
groups are laid out (count field, delimiter field, member fields, nested groups). Components are
flattened into the messages and groups that use them, as QuickFIX does: a component's required
fields are required only where the component itself is required.

Counterparties customise dictionaries (user-defined fields 5000+, extra messages): a user
dictionary in the same format is loaded with :func:`load_dictionary`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - dictionaries are local configuration files
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

SPEC_DIR = resources.files("gateway.fix") / "specs"
"""The standard dictionaries, shipped in the package (produced by scripts/gen_specs.py). Found
by the package's name: compiled by mypyc (gateway/native.py), this module's ``__file__`` is
not its path while it is imported (mypyc joins the whole module path to the directory of the
group's library: ``gateway/gateway/fix/...``)."""

INT_TYPES = frozenset(
    {"INT", "LENGTH", "NUMINGROUP", "SEQNUM", "TAGNUM", "DAYOFMONTH"}
)
FLOAT_TYPES = frozenset({"FLOAT", "PRICE", "QTY", "PRICEOFFSET", "AMT", "PERCENTAGE"})
MULTI_TYPES = frozenset({"MULTIPLEVALUESTRING", "MULTIPLESTRINGVALUE", "MULTIPLECHARVALUE"})

# Header and trailer fields every FIX version knows (QuickFIX Message::isHeaderField), used when
# a dictionary is absent or does not list them.
STANDARD_HEADER = frozenset(
    {8, 9, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129, 145, 43, 97, 52,
     122, 212, 213, 347, 369, 627, 628, 629, 630, 1128, 1129, 1156}
)
STANDARD_TRAILER = frozenset({93, 89, 10})


@dataclass(frozen=True, slots=True)
class FieldDef:
    number: int
    name: str
    type: str
    enums: frozenset[bytes] | None
    labels: dict[bytes, str] | None = field(default=None, compare=False, repr=False)
    """Enumerated value -> its description in the dictionary (``b"2"`` -> ``FILLED``), for
    showing messages to people (``fixgw audit``)."""

    @property
    def is_multi(self) -> bool:
        return self.type in MULTI_TYPES


@dataclass(slots=True)
class Layout:
    """The fields of a message, header, trailer or group entry.

    ``order`` is the dictionary order (a group entry is written in it, delimiter first);
    ``required`` is sorted by tag, the order QuickFIX checks it in.
    """

    fields: set[int] = field(default_factory=set)
    order: list[int] = field(default_factory=list)
    required: list[int] = field(default_factory=list)
    groups: dict[int, Group] = field(default_factory=dict)

    def add(self, tag: int, required: bool) -> None:
        if tag not in self.fields:
            self.fields.add(tag)
            self.order.append(tag)
        if required and tag not in self.required:
            self.required.append(tag)

    def finish(self) -> None:
        self.required.sort()
        for g in self.groups.values():
            g.layout.finish()


@dataclass(slots=True)
class Group:
    count_tag: int
    delimiter: int
    layout: Layout


@dataclass(slots=True)
class MessageDef:
    msg_type: bytes
    name: str
    admin: bool
    layout: Layout


@dataclass(slots=True)
class DataDictionary:
    begin_string: str
    """FIX.4.4, FIXT.1.1, FIX.5.0, FIX.5.0SP2 (the version the file describes)."""
    fields: dict[int, FieldDef]
    names: dict[str, int]
    header: Layout
    trailer: Layout
    messages: dict[bytes, MessageDef]
    data_fields: dict[int, int]
    """length tag -> data tag, for values that may contain SOH."""
    sections: dict[int, int] = field(default_factory=dict)
    """tag -> 0 (header) or 2 (trailer); body tags are absent. Filled by __post_init__."""
    value_checks: dict[int, Callable[[bytes], int] | None] = field(
        default_factory=dict, repr=False, compare=False
    )
    """tag -> its value check (format and enumeration), built by
    :mod:`gateway.fix.validation` on first use; None: nothing to check."""

    def __post_init__(self) -> None:
        self.sections = {
            **dict.fromkeys(STANDARD_HEADER, 0), **dict.fromkeys(self.header.fields, 0),
            **dict.fromkeys(STANDARD_TRAILER, 2), **dict.fromkeys(self.trailer.fields, 2),
        }

    def is_header(self, tag: int) -> bool:
        return tag in self.header.fields or tag in STANDARD_HEADER

    def is_trailer(self, tag: int) -> bool:
        return tag in self.trailer.fields or tag in STANDARD_TRAILER

    def tag(self, name: str) -> int:
        return self.names[name]


class DictionaryError(ValueError):
    """The dictionary file is malformed."""


def _version(root: ET.Element) -> str:
    kind = root.get("type", "FIX")
    major, minor = root.get("major", "4"), root.get("minor", "4")
    sp = root.get("servicepack", "0")
    version = f"{kind}.{major}.{minor}"
    if sp not in ("", "0"):
        version += f"SP{sp}"
    return version


def parse_dictionary(text: str | bytes) -> DataDictionary:
    root = ET.fromstring(text)  # noqa: S314 - trusted local file
    if root.tag != "fix":
        raise DictionaryError("root element must be <fix>")
    names: dict[str, int] = {}
    fields: dict[int, FieldDef] = {}
    fields_el = root.find("fields")
    for f in fields_el if fields_el is not None else []:
        try:
            num = int(f.get("number", ""))
        except ValueError as exc:
            raise DictionaryError(f"field {f.get('name')!r} has no valid number") from exc
        name = f.get("name") or ""
        ftype = (f.get("type") or "STRING").upper()
        values = [v.get("enum", "").encode() for v in f.findall("value")]
        labels = {v.get("enum", "").encode(): v.get("description", "")
                  for v in f.findall("value")}
        fields[num] = FieldDef(num, name, ftype, frozenset(values) if values else None,
                               labels or None)
        names[name] = num
    components = {c.get("name", ""): c for c in (root.find("components") or [])}

    def tag_of(name: str) -> int:
        try:
            return names[name]
        except KeyError:
            raise DictionaryError(f"unknown field {name!r}") from None

    def first_field(el: ET.Element) -> int:
        for child in el:
            if child.tag in ("field", "group"):
                return tag_of(child.get("name", ""))
            if child.tag == "component":
                comp = components.get(child.get("name", ""))
                if comp is not None:
                    return first_field(comp)
        raise DictionaryError(f"group {el.get('name')!r} has no fields")

    def fill(layout: Layout, el: ET.Element, required_here: bool, seen: tuple[str, ...]) -> None:
        for child in el:
            req = required_here and child.get("required", "N").upper() == "Y"
            if child.tag == "field":
                layout.add(tag_of(child.get("name", "")), req)
            elif child.tag == "group":
                count = tag_of(child.get("name", ""))
                layout.add(count, req)
                sub = Layout()
                fill(sub, child, True, seen)
                layout.groups[count] = Group(count, first_field(child), sub)
            elif child.tag == "component":
                cname = child.get("name", "")
                comp = components.get(cname)
                if comp is None:
                    raise DictionaryError(f"unknown component {cname!r}")
                if cname in seen:
                    raise DictionaryError(f"component {cname!r} includes itself")
                fill(layout, comp, req, (*seen, cname))

    header, trailer = Layout(), Layout()
    h = root.find("header")
    if h is not None:
        fill(header, h, True, ())
    t = root.find("trailer")
    if t is not None:
        fill(trailer, t, True, ())
    messages: dict[bytes, MessageDef] = {}
    for m in root.find("messages") or []:
        layout = Layout()
        fill(layout, m, True, ())
        mt = m.get("msgtype", "").encode()
        messages[mt] = MessageDef(mt, m.get("name", ""), m.get("msgcat") == "admin", layout)
    header.finish()
    trailer.finish()
    for md in messages.values():
        md.layout.finish()
    data_fields: dict[int, int] = {}
    for num, fd in fields.items():
        if fd.type in ("DATA", "XMLDATA"):
            for suffix in ("Len", "Length"):
                ln = names.get(fd.name + suffix)
                if ln is not None:
                    data_fields[ln] = num
                    break
    return DataDictionary(_version(root), fields, names, header, trailer, messages, data_fields)


def load_dictionary(path: str | Path) -> DataDictionary:
    return parse_dictionary(Path(path).read_bytes())


@cache
def standard(version: str) -> DataDictionary:
    """The project's own copy of a standard dictionary: FIX.4.4, FIXT.1.1, FIX.5.0, FIX.5.0SP2."""
    files = {
        "FIX.4.4": "FIX44.xml",
        "FIXT.1.1": "FIXT11.xml",
        "FIX.5.0": "FIX50.xml",
        "FIX.5.0SP2": "FIX50SP2.xml",
    }
    try:
        name = files[version]
    except KeyError:
        raise DictionaryError(f"no standard dictionary for {version}") from None
    return parse_dictionary((SPEC_DIR / name).read_bytes())


# ApplVerID (1128/1137) values (FIX 5.0SP2 Vol. 1, ApplVerID code set).
APPL_VER_IDS: dict[bytes, str] = {
    b"2": "FIX.4.0",
    b"3": "FIX.4.1",
    b"4": "FIX.4.2",
    b"5": "FIX.4.3",
    b"6": "FIX.4.4",
    b"7": "FIX.5.0",
    b"8": "FIX.5.0SP1",
    b"9": "FIX.5.0SP2",
}
APPL_VER_BY_NAME = {v: k for k, v in APPL_VER_IDS.items()}

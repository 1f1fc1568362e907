"""Turning a frame into a structured :class:`Message` and validating it against dictionaries.

The checks and their precedence follow QuickFIX (``DataDictionary::validate``), the engine
counterparties measure us against: header, body and trailer order; message type known; required
fields present (lowest tag first); then, field by field in tag order: repeated tag, empty value,
data format, enumerated value, tag known, tag allowed in the message type, group count. A failure
is a :class:`SessionReject` carrying SessionRejectReason (373) and RefTagID (371).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

from .codec import GarbledMessage, padded_tag, split_fields, verify_frame
from .dictionary import (
    FLOAT_TYPES,
    INT_TYPES,
    STANDARD_HEADER,
    STANDARD_TRAILER,
    DataDictionary,
    FieldDef,
    Group,
    Layout,
)
from .fixtime import is_utc_date_only, is_utc_time_only, parse_utc_timestamp
from .message import FieldMap, Message, is_fix_float
from .tags import (
    INVALID_MSGTYPE,
    INVALID_TAG_NUMBER,
    REJECT_TEXT,
    REPEATING_GROUP_COUNT_MISMATCH,
    REQUIRED_TAG_MISSING,
    TAG_APPEARS_MORE_THAN_ONCE,
    TAG_NOT_DEFINED_FOR_MESSAGE,
    TAG_OUT_OF_ORDER,
    TAG_WITHOUT_VALUE,
    VALUE_INCORRECT,
    WRONG_DATA_FORMAT,
)
from .validation_settings import ValidationSettings as ValidationSettings

USER_MIN = 5000

ID_TAGS = frozenset({
    1,  # Account
    11, 41, 526, 583,  # ClOrdID, OrigClOrdID, SecondaryClOrdID, ClOrdLinkID
    17, 37, 198,  # ExecID, OrderID, SecondaryOrderID
    22, 48, 55, 65, 100, 207,  # SecurityIDSource, SecurityID, Symbol, SymbolSfx, ExDestination,
    # SecurityExchange
    66, 109, 262, 320, 584, 553,  # ListID, ClientID, MDReqID, SecurityReqID, MassStatusReqID,
    # Username
    49, 56, 50, 57, 115, 128, 116, 129,  # CompIDs, SubIDs, OnBehalfOf/DeliverTo
})
"""Identifiers: kept with orders, echoed in reports, used as keys; bounded by
:attr:`ValidationSettings.max_id_length`."""
_HEADER_FIRST = {8: -3, 9: -2, 35: -1}


class SessionReject(Exception):  # noqa: N818 - named after the FIX message it produces
    """The counterparty's message breaks the session rules: answer with Reject (35=3)."""

    def __init__(self, reason: int, tag: int = 0, text: str | None = None) -> None:
        self.reason = reason
        self.tag = tag
        self.text = text if text is not None else REJECT_TEXT.get(reason, "Rejected")
        super().__init__(f"{self.text} ({tag})" if tag else self.text)


def parse_message(
    data: bytes,
    session_dd: DataDictionary | None,
    app_dd: DataDictionary | None,
    *,
    verify: bool = True,
) -> Message:
    """Structure a framed message. Raises GarbledMessage when it is not a sound FIX message
    (wrong BodyLength or CheckSum, first three fields not 8, 9, 35, bad tag syntax)."""
    if verify:
        problem = verify_frame(data)
        if problem:
            raise GarbledMessage(problem)
    data_fields = None
    if app_dd is not None or session_dd is not None:
        data_fields = {**(session_dd.data_fields if session_dd else {}),
                       **(app_dd.data_fields if app_dd else {})}
        if not data_fields:
            data_fields = None
    fields = split_fields(data, data_fields)
    if len(fields) < 4 or fields[0][0] != 8 or fields[1][0] != 9 or fields[2][0] != 35:
        raise GarbledMessage("the first three fields are not BeginString, BodyLength, MsgType")
    msg = Message()
    msg.raw = data
    header, body, trailer = msg.header, msg, msg.trailer
    sdd = session_dd
    add_h, add_b, add_t = header.fields.append, body.fields.append, trailer.fields.append
    add_h(fields[0])
    add_h(fields[1])
    add_h(fields[2])
    msg_type = fields[2][1]
    body_groups: dict[int, Group] = {}
    header_groups: dict[int, Group] = sdd.header.groups if sdd is not None else {}
    if app_dd is not None:
        mdef = app_dd.messages.get(msg_type)
        if mdef is not None:
            body_groups = mdef.layout.groups
    where = sdd.sections if sdd is not None else _STD_SECTIONS
    section = 0  # 0 header, 1 body, 2 trailer
    i, n = 3, len(fields)
    while i < n:
        f = fields[i]
        tag = f[0]
        i += 1
        s = where.get(tag, 1)
        if s == 1:
            if section == 2 and not msg.out_of_order_tag:
                msg.out_of_order_tag = tag
            section = 1 if section == 0 else section
            add_b(f)
            if body_groups:
                g = body_groups.get(tag)
                if g is not None:
                    i = _read_group(fields, i, g, body)
        elif s == 0:
            if section != 0 and not msg.out_of_order_tag:
                msg.out_of_order_tag = tag
            add_h(f)
            if header_groups:
                g = header_groups.get(tag)
                if g is not None:
                    i = _read_group(fields, i, g, header)
        else:
            section = 2
            add_t(f)
    return msg


_STD_SECTIONS = {**dict.fromkeys(STANDARD_HEADER, 0), **dict.fromkeys(STANDARD_TRAILER, 2)}


def _read_group(fields: list[tuple[int, bytes]], i: int, group: Group, parent: FieldMap) -> int:
    """Read the entries of ``group`` starting at ``fields[i]`` into ``parent.groups``.

    An entry starts at the delimiter, or at a member field seen again; a field that is not a
    member ends the group (QuickFIX ``Message::setGroup``).
    """
    layout = group.layout
    members = layout.fields
    entries = parent.groups.setdefault(group.count_tag, [])
    current: FieldMap | None = None
    n = len(fields)
    while i < n:
        tag, value = fields[i]
        if tag == group.delimiter or (tag in members and (current is None or tag in current)):
            if current is not None:
                entries.append(current)
            current = FieldMap()
        elif tag not in members:
            break
        assert current is not None
        current.add(tag, value)
        i += 1
        sub = layout.groups.get(tag)
        if sub is not None:
            i = _read_group(fields, i, sub, current)
    if current is not None:
        entries.append(current)
    return i


def _is_int(value: bytes) -> bool:
    if value[:1] == b"-":
        return value[1:].isdigit()
    return value.isdigit()


def _is_utc_timestamp(value: bytes) -> bool:
    try:
        parse_utc_timestamp(value)
    except ValueError:
        return False
    return True


def _format_check(ftype: str) -> Callable[[bytes], bool] | None:
    """The data-format check of one FIX type (FIX 4.4 Vol. 1 "Data Types"), as one function
    (None: any value is well formed)."""
    if ftype in INT_TYPES:
        return _is_int
    if ftype in FLOAT_TYPES:
        return is_fix_float
    if ftype == "CHAR":
        return lambda v: len(v) == 1
    if ftype == "BOOLEAN":
        return lambda v: v == b"Y" or v == b"N"
    if ftype == "UTCTIMESTAMP":
        return _is_utc_timestamp
    if ftype == "UTCTIMEONLY":
        return is_utc_time_only
    if ftype in ("UTCDATEONLY", "UTCDATE"):
        return is_utc_date_only
    return None


def value_check(fd: FieldDef) -> Callable[[bytes], int] | None:
    """The check of one field's values, in QuickFIX's order: its data format
    (SessionRejectReason 6), then its enumeration (5); it returns 0 when the value passes.
    None when the field's values need no check."""
    fmt = _format_check(fd.type)
    enums = fd.enums
    if enums is None:
        if fmt is None:
            return None
        return lambda v: 0 if fmt(v) else WRONG_DATA_FORMAT
    in_enums: Callable[[bytes], bool] = enums.__contains__
    if fd.is_multi:
        in_enums = lambda v: all(x in enums for x in v.split(b" "))  # noqa: E731
    if fmt is None:
        return lambda v: 0 if in_enums(v) else VALUE_INCORRECT
    return lambda v: (0 if in_enums(v) else VALUE_INCORRECT) if fmt(v) else WRONG_DATA_FORMAT


def validate(
    msg: Message,
    session_dd: DataDictionary,
    app_dd: DataDictionary,
    settings: ValidationSettings,
) -> None:
    """Raise :class:`SessionReject` for the first rule ``msg`` breaks, QuickFIX's order.

    Before those: a tag written with leading zeros (373=0, Invalid tag number), which no
    standard writes and which could pass for another tag (``0000554`` for Password)."""
    if b"\x010" in msg.raw:
        padded = padded_tag(msg.raw, {**session_dd.data_fields, **app_dd.data_fields})
        if padded is not None:
            raise SessionReject(INVALID_TAG_NUMBER, padded,
                                "Invalid tag number (written with leading zeros)")
    if settings.check_fields_out_of_order and msg.out_of_order_tag:
        raise SessionReject(TAG_OUT_OF_ORDER, msg.out_of_order_tag)
    msg_type = msg.msg_type
    mdef = app_dd.messages.get(msg_type)
    if mdef is None:
        raise SessionReject(INVALID_MSGTYPE)
    if settings.check_required:
        _check_required(msg.header, app_dd.header)
        _check_required(msg.trailer, app_dd.trailer)
        _check_required(msg, mdef.layout)
    _iterate(msg.header, session_dd, None, settings, header_order=True)
    _iterate(msg.trailer, session_dd, None, settings)
    _iterate(msg, app_dd, mdef.layout, settings)


def _check_required(fm: FieldMap, layout: Layout) -> None:
    for tag in layout.required:
        if tag not in fm:
            raise SessionReject(REQUIRED_TAG_MISSING, tag)
    for count_tag, entries in fm.groups.items():
        g = layout.groups.get(count_tag)
        if g is not None:
            for entry in entries:
                _check_required(entry, g.layout)


def _header_key(f: tuple[int, bytes]) -> int:
    return _HEADER_FIRST.get(f[0], f[0])


def _iterate(
    fm: FieldMap,
    dd: DataDictionary,
    layout: Layout | None,
    s: ValidationSettings,
    header_order: bool = False,
) -> None:
    fields = sorted(fm.fields, key=_header_key if header_order else itemgetter(0))
    last = None
    have_values, check_values = s.check_fields_have_values, s.check_values
    user_fields, unknown = s.check_user_defined_fields, s.reject_unknown_fields
    defs, checks, sections = dd.fields, dd.value_checks, dd.sections
    max_id, max_field = s.max_id_length, s.max_field_length
    for tag, value in fields:
        if tag == last:
            raise SessionReject(TAG_APPEARS_MORE_THAN_ONCE, tag)
        if have_values and not value:
            raise SessionReject(TAG_WITHOUT_VALUE, tag)
        fd = defs.get(tag)
        if len(value) > max_id:
            _check_length(tag, value, fd, max_id, max_field)
        if check_values and fd is not None:
            check = checks.get(tag, _UNBUILT)
            if check is _UNBUILT:
                check = checks[tag] = value_check(fd)
            if check is not None:
                reason = check(value)
                if reason:
                    raise SessionReject(reason, tag)
        if user_fields or tag < USER_MIN:
            if fd is None and unknown:
                raise SessionReject(INVALID_TAG_NUMBER, tag)
            if layout is not None and tag not in sections:  # a body field
                if fd is not None and tag not in layout.fields and s.reject_fields_not_in_message:
                    raise SessionReject(TAG_NOT_DEFINED_FOR_MESSAGE, tag)
                if tag in layout.groups and fd is not None:
                    if not value.isdigit() or len(fm.groups.get(tag, ())) != int(value):
                        raise SessionReject(REPEATING_GROUP_COUNT_MISMATCH, tag)
        last = tag
    if layout is not None:
        for count_tag, entries in fm.groups.items():
            g = layout.groups.get(count_tag)
            if g is not None:
                for entry in entries:
                    _iterate(entry, dd, g.layout, s)


def _check_length(
    tag: int, value: bytes, fd: FieldDef | None, max_id: int, max_field: int
) -> None:
    if fd is not None and fd.type in ("DATA", "XMLDATA"):
        return  # read by its length field, bounded by the message size
    limit = max_id if tag in ID_TAGS else max_field
    if len(value) > limit:
        raise SessionReject(VALUE_INCORRECT, tag,
                            f"Value is incorrect (longer than {limit} characters) for this tag")


_UNBUILT: Callable[[bytes], int] = lambda v: 0  # noqa: E731 - a sentinel
"""Marks a tag whose value check is not built yet (None is a built 'no check')."""


def ordered_fields(fm: FieldMap, layout: Layout | None) -> list[tuple[int, bytes]]:
    """QuickFIX's output order for a body: fields by tag number, each repeating group right
    after its count field with every entry in dictionary order (delimiter first)."""
    out: list[tuple[int, bytes]] = []
    for tag, value in sorted(fm.fields, key=itemgetter(0)):
        out.append((tag, value))
        if layout is not None and tag in fm.groups:
            g = layout.groups.get(tag)
            if g is not None:
                for entry in fm.groups[tag]:
                    out.extend(_entry_fields(entry, g.layout))
    return out


def _entry_fields(entry: FieldMap, layout: Layout) -> list[tuple[int, bytes]]:
    rank = {t: i for i, t in enumerate(layout.order)}
    big = len(rank)
    out: list[tuple[int, bytes]] = []
    for tag, value in sorted(entry.fields, key=lambda f: (rank.get(f[0], big), f[0])):
        out.append((tag, value))
        if tag in entry.groups:
            g = layout.groups.get(tag)
            if g is not None:
                for sub in entry.groups[tag]:
                    out.extend(_entry_fields(sub, g.layout))
    return out

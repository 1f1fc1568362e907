"""The bodies of the session layer's refusals, as QuickFIX writes them: Reject (35=3) and
BusinessMessageReject (35=j). Pure functions of the refused message; the session numbers and
sends them (:mod:`gateway.fix.session`)."""

from __future__ import annotations

from .message import Message
from .tags import BUSINESS_REJECT_TEXT, INVALID_TAG_NUMBER, REJECT_TEXT

_ROUTE_SWAP = ((115, 128), (116, 129), (128, 115), (129, 116))
_LOCATION_SWAP = ((144, 145), (145, 144))

Fields = list[tuple[int, bytes]]


def version_key(begin_string: bytes) -> tuple[int, int]:
    """FIX.4.2 -> (4, 2); FIXT.1.1 counts as newer than every FIX 4.x."""
    s = begin_string.decode("ascii", "replace")
    if s.startswith("FIXT"):
        return (5, 0)
    try:
        major, minor = s[4:].split(".")[:2]
        return int(major), int(minor[:1])
    except ValueError:
        return (0, 0)


def reverse_route(msg: Message) -> Fields:
    """The routing header of an answer to ``msg``: OnBehalfOf/DeliverTo (and from FIX 4.1 the
    locations) swapped, as QuickFIX's generateReject copies them."""
    hdr = msg.header
    out: Fields = []
    for src, dst in _ROUTE_SWAP:
        v = hdr.get(src)
        if v:
            out.append((dst, v))
    if version_key(hdr.get(8) or b"") >= (4, 1):
        for src, dst in _LOCATION_SWAP:
            v = hdr.get(src)
            if v:
                out.append((dst, v))
    return out


def reject_body(
    msg: Message, reason: int, begin_string: bytes, tag: int = 0, text: str | None = None
) -> tuple[Fields, str | None]:
    """Reject's body (RefSeqNum 45, Text 58, RefTagID 371, RefMsgType 372,
    SessionRejectReason 373, as the session's FIX version has them), sorted by tag, and the
    text it gives."""
    h = msg.header
    msg_type = msg.msg_type
    seq_raw = h.get(34)
    body: Fields = []
    if seq_raw:
        body.append((45, seq_raw))
    reason_text = text if text is not None else REJECT_TEXT.get(reason)
    version = version_key(begin_string)
    if reason_text:
        if tag or reason == INVALID_TAG_NUMBER:
            if version >= (4, 2):
                body.append((58, reason_text.encode()))
                body.append((371, b"%d" % tag))
            else:
                body.append((58, f"{reason_text} ({tag})".encode()))
        else:
            body.append((58, reason_text.encode()))
    if version >= (4, 2):
        if msg_type:
            body.append((372, msg_type))
        if version > (4, 2) or reason <= 11:
            body.append((373, b"%d" % reason))
    body.sort(key=lambda f: f[0])
    return body, reason_text


def business_reject_body(
    msg: Message, reason: int, tag: int = 0, text: str | None = None,
    ref_id: bytes | None = None, appl_ver_id: bytes | None = None,
) -> Fields:
    """BusinessMessageReject's body: RefSeqNum 45, Text 58, RefMsgType 372,
    BusinessRejectRefID 379, BusinessRejectReason 380 (and DefaultApplVerID 1137 when given,
    as QuickFIX writes it on FIXT sessions)."""
    body: Fields = []
    seq_raw = msg.header.get(34)
    if seq_raw:
        body.append((45, seq_raw))
    reason_text = text if text is not None else BUSINESS_REJECT_TEXT.get(reason, "Rejected")
    body.append((58, (f"{reason_text} ({tag})" if tag else reason_text).encode()))
    body.append((372, msg.msg_type))
    if ref_id is not None:
        body.append((379, ref_id))
    body.append((380, b"%d" % reason))
    if appl_ver_id is not None:
        body.append((1137, appl_ver_id))
    return body

"""Answering a ResendRequest (2): stored messages become their resend form, administrative ones
and missing numbers a SequenceReset-GapFill (FIX 4.4 Vol. 2 "Message Recovery"; QuickFIX's
``Session::nextResendRequest``). No I/O: the driver feeds what it read from its store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .codec import GarbledMessage, encode, split_fields
from .dictionary import DataDictionary
from .message import Message
from .tags import ADMIN_TYPES, SEQUENCE_RESET


class Resending(Protocol):
    """What the resender needs of the session it answers for (:class:`Session` is one)."""

    @property
    def next_sender(self) -> int: ...

    @property
    def session_dd(self) -> DataDictionary: ...

    def sending_time(self, now: float) -> bytes: ...

    def header_ids(self) -> tuple[bytes, bytes, bytes]: ...

    def sent_at(self, now: float) -> None: ...

    def note(self, text: str) -> None: ...

    def may_resend(self, probe: Message) -> bool: ...


class Resender:
    """Turns stored messages begin..end into what answers a ResendRequest.

    Application messages are resent with PossDupFlag=Y, OrigSendingTime = their SendingTime and
    a new SendingTime; administrative messages and missing numbers become SequenceReset-GapFill.
    Feed stored (seq, bytes) in ascending chunks (large ranges need not be held in memory),
    write what each call returns, then write what :meth:`finish` returns. What it needs of the
    session is :class:`Resending`.
    """

    def __init__(self, session: Resending, begin: int, end: int, now: float) -> None:
        self.s = session
        self.begin = begin
        self.end = end
        self.now = now
        self._cur = begin
        self._gap: int | None = None

    def add(self, stored: Iterable[tuple[int, bytes]]) -> list[bytes]:
        out: list[bytes] = []
        for seq, data in stored:
            if seq < self._cur or seq > self.end:
                continue
            if seq > self._cur and self._gap is None:
                self._gap = self._cur
            resent = self._rewrite(data)
            if resent is None:
                if self._gap is None:
                    self._gap = seq
            else:
                if self._gap is not None:
                    out.append(self._gap_fill(self._gap, seq))
                    self._gap = None
                out.append(resent)
                self.s.note(f"Resending Message: {seq}")
            self._cur = seq + 1
        return out

    def finish(self) -> list[bytes]:
        if self._gap is None and self._cur <= self.end:
            self._gap = self._cur
        if self._gap is None:
            return []
        new_seq = min(self.end + 1, self.s.next_sender)
        gap, self._gap = self._gap, None
        return [self._gap_fill(gap, new_seq)]

    def _gap_fill(self, begin: int, new_seq: int) -> bytes:
        s = self.s
        begin_string, sender, target = s.header_ids()
        sending = s.sending_time(self.now)
        hdr = [(34, b"%d" % begin), (43, b"Y"), (49, sender), (52, sending), (56, target),
               (122, sending)]
        s.sent_at(self.now)
        s.note(f"Sent SequenceReset TO: {new_seq}")
        return encode(begin_string, [(35, SEQUENCE_RESET), *hdr, (36, b"%d" % new_seq),
                                     (123, b"Y")])

    def _rewrite(self, data: bytes) -> bytes | None:
        """The resend form of a stored application message; None for admin (gap-filled)."""
        try:
            fields = split_fields(data)
        except GarbledMessage:
            return None
        if len(fields) < 3 or fields[2][0] != 35 or fields[2][1] in ADMIN_TYPES:
            return None
        s = self.s
        msg_type = fields[2][1]
        header: list[tuple[int, bytes]] = []
        rest: list[tuple[int, bytes]] = []
        orig = b""
        dd = s.session_dd
        in_header = True
        for t, v in fields[3:]:
            if t == 10:
                continue
            if in_header and dd.is_header(t):
                if t == 52:
                    orig = v
                elif t not in (43, 122):
                    header.append((t, v))
            else:
                in_header = False
                rest.append((t, v))
        probe = Message()
        probe.header.fields.extend([(35, msg_type), *header])
        probe.fields.extend(rest)
        if not s.may_resend(probe):
            return None
        header += [(43, b"Y"), (52, s.sending_time(self.now)), (122, orig)]
        header.sort(key=lambda f: f[0])
        s.sent_at(self.now)
        return encode(s.header_ids()[0], [(35, msg_type), *header, *rest])

"""CollateralInquiry (BB) -> CollateralReport (BA), one per venue account and currency, as the
venue reports them now: the currency (15), its total (TotalNetValue 900), what is available
and what open orders hold (fixgw's AvailableBalance 20010 and LockedBalance 20011), the venue
as a party (PartyRole 22, exchange). The venues are those the session may use, or the
one its Account (1) is routed to, or those named as exchange parties; never another
session's. What cannot be answered gets a CollateralInquiryAck (BG) rejecting it, with a
CollInquiryResult (946) and a text. The figures are the balance book's
(:class:`gateway.positions.balance_book.BalanceBook`): kept from the venues' account streams
where they have one, else asked over REST."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from connectors.base import Balance, VenueError
from gateway.fix.custom import AVAILABLE_BALANCE, LOCKED_BALANCE
from gateway.fix.message import Message, fix_decimal
from gateway.fix.session import Session
from gateway.positions.balance_book import BalanceBook, Held

EXCHANGE = b"22"  # PartyRole (452): Exchange (FIX 4.4 has no 73, Execution Venue)
PROPRIETARY = b"D"  # PartyIDSource (447)

# CollInquiryResult (946)
UNAUTHORIZED = b"9"
NOT_SUPPORTED = b"8"
OTHER = b"99"
REJECTED = b"4"  # CollInquiryStatus (945)
ACCEPTED = b"0"
SUCCESSFUL = b"0"  # CollInquiryResult (946)


@dataclass(frozen=True, slots=True)
class Access:
    """What a session may see: its venues, and its accounts' venues."""

    venues: frozenset[str]
    accounts: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Subscribed:
    session: Session
    venues: frozenset[str]
    account: str | None


class CollateralInquiries:
    """With SubscriptionRequestType 1 an inquiry stays: each change of a covered balance that
    a venue's stream pushes is sent as a CollateralReport with the inquiry's CollInquiryID,
    until 263=2 with the same id (acknowledged by a CollateralInquiryAck) or the logout."""

    def __init__(self, book: BalanceBook,
                 access_for: Callable[[Session], Access | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self.access_for = access_for
        self.clock = clock
        self._ids = itertools.count(1)
        self._subs: dict[str, dict[bytes, _Subscribed]] = {}
        book.listeners.append(self._changed)

    def on_logout(self, session: Session) -> None:
        self._subs.pop(str(session.sid), None)

    def _changed(self, venue: str, asset: str, held: Held) -> None:
        for sid_subs in self._subs.values():
            for inquiry, sub in sid_subs.items():
                if venue in sub.venues:
                    self._report(sub.session, inquiry, venue, asset, held.free, held.locked,
                                 sub.account, None)

    def on_inquiry(self, session: Session, msg: Message, now: float) -> Awaitable[bool]:
        return asyncio.get_running_loop().create_task(self._answer(session, msg))

    async def _answer(self, session: Session, msg: Message) -> bool:
        inquiry = msg.get(909) or b""
        access = self.access_for(session)
        if access is None:
            return self._refuse(session, inquiry, UNAUTHORIZED, "no balances for this session")
        kind = msg.get(263) or b"0"
        subs = self._subs.setdefault(str(session.sid), {})
        if kind == b"2":
            if subs.pop(inquiry, None) is None:
                return self._refuse(session, inquiry, OTHER, f"CollInquiryID "
                                    f"{inquiry.decode(errors='replace')} is not subscribed")
            return self._send(session, b"BG", [(909, inquiry), (945, ACCEPTED),
                                               (946, SUCCESSFUL)])
        if kind not in (b"0", b"1"):
            return self._refuse(session, inquiry, NOT_SUPPORTED,
                                f"SubscriptionRequestType {kind.decode(errors='replace')} is "
                                "not supported")
        if kind == b"1" and inquiry in subs:
            return self._refuse(session, inquiry, OTHER, f"CollInquiryID "
                                f"{inquiry.decode(errors='replace')} is already subscribed")
        venues = sorted(access.venues)
        account = msg.get_str(1)
        if account is not None:
            if account not in access.accounts:
                return self._refuse(session, inquiry, UNAUTHORIZED,
                                    f"Account {account} is not one of this session's")
            venues = [access.accounts[account]]
        named = [p.get_str(448) or "" for p in msg.group(453) if p.get(452) == EXCHANGE]
        if named:
            unknown = sorted(v for v in named if v not in access.venues)
            if unknown:
                return self._refuse(session, inquiry, UNAUTHORIZED,
                                    f"venue {', '.join(unknown)} is not one this session may "
                                    "use")
            venues = [v for v in venues if v in named]
        held: list[tuple[str, Balance]] = []
        for venue in venues:
            try:
                balances = await self.book.balances(venue)
            except VenueError as exc:
                return self._refuse(session, inquiry, OTHER,
                                    f"the balances of {venue} are unavailable: {exc}")
            held += [(venue, b) for b in balances]
        if not held and kind == b"0":
            return self._refuse(session, inquiry, OTHER, "no balance held")
        for n, (venue, b) in enumerate(held, 1):
            if not self._report(session, inquiry, venue, b.asset, b.free, b.locked, account,
                                (n, len(held))):
                return False
        if kind == b"1":
            subs[inquiry] = _Subscribed(session, frozenset(venues), account)
        return True

    def _report(self, session: Session, inquiry: bytes, venue: str, asset: str, free: Decimal,
                locked: Decimal, account: str | None, place: tuple[int, int] | None) -> bool:
        """One CollateralReport; ``place``: (n, of how many) in an answer to an inquiry."""
        body: list[tuple[int, bytes]] = [(908, b"%d" % next(self._ids)), (909, inquiry),
                                         (910, b"3")]
        if place is not None:
            body += [(911, b"%d" % place[1]), (912, b"Y" if place[0] == place[1] else b"N")]
        body += [(453, b"1"), (448, venue.encode()), (447, PROPRIETARY), (452, EXCHANGE)]
        if account is not None:
            body.append((1, account.encode()))
        body += [(15, asset.encode()), (900, fix_decimal(free + locked)),
                 (AVAILABLE_BALANCE, fix_decimal(free)), (LOCKED_BALANCE, fix_decimal(locked))]
        return self._send(session, b"BA", body)

    def _refuse(self, session: Session, inquiry: bytes, result: bytes, text: str) -> bool:
        return self._send(session, b"BG", [(909, inquiry), (945, REJECTED), (946, result),
                                           (58, text.encode())])

    def _send(self, session: Session, msg_type: bytes, body: list[tuple[int, bytes]]) -> bool:
        return session.send_if_logged_on(msg_type, body, self.clock())


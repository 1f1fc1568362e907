"""The order lifecycle as one table (STYLE 3): which event moves an order from which status to
which. A pair not in the table is refused (the event is stale or duplicated, and dropped).

Statuses are FIX OrdStatus (39) values; events are what the gateway learns or decides.
"""

from __future__ import annotations

from connectors.events import IdentityEnum  # (its defining module: mypyc subclasses it there)


class OrdStatus(IdentityEnum):
    """OrdStatus (39)."""

    PENDING_NEW = "A"
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    EXPIRED = "C"
    PENDING_REPLACE = "E"

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL


TERMINAL = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED})


class Ev(IdentityEnum):
    """What happens to an order."""

    ACCEPTED = "accepted"  # the venue acknowledged it
    REJECTED = "rejected"  # refused (by us or the venue) before it was live
    FILL = "fill"  # a partial fill
    FILL_FULL = "fill_full"  # the fill that completes it
    CANCEL_REQUESTED = "cancel_requested"
    CANCELED = "canceled"
    CANCEL_REFUSED = "cancel_refused"
    REPLACE_REQUESTED = "replace_requested"
    REPLACED = "replaced"
    REPLACE_REFUSED = "replace_refused"
    EXPIRED = "expired"


S = OrdStatus
_OPEN_LIVE = (S.NEW, S.PARTIALLY_FILLED)

# (status, event) -> status. "Pending" statuses fall back to the live status on refusal; the
# manager computes that target (NEW or PARTIALLY_FILLED from CumQty), marked here by None.
TRANSITIONS: dict[tuple[OrdStatus, Ev], OrdStatus | None] = {
    (S.PENDING_NEW, Ev.ACCEPTED): S.NEW,
    (S.PENDING_NEW, Ev.REJECTED): S.REJECTED,
    (S.PENDING_NEW, Ev.FILL): S.PARTIALLY_FILLED,  # the fill overtook the acknowledgement
    (S.PENDING_NEW, Ev.FILL_FULL): S.FILLED,
    (S.PENDING_NEW, Ev.CANCELED): S.CANCELED,
    (S.PENDING_NEW, Ev.EXPIRED): S.EXPIRED,
    (S.PENDING_NEW, Ev.CANCEL_REQUESTED): S.PENDING_CANCEL,
    **{(s, Ev.FILL): S.PARTIALLY_FILLED for s in _OPEN_LIVE},
    **{(s, Ev.FILL_FULL): S.FILLED for s in _OPEN_LIVE},
    **{(s, Ev.CANCEL_REQUESTED): S.PENDING_CANCEL for s in _OPEN_LIVE},
    **{(s, Ev.REPLACE_REQUESTED): S.PENDING_REPLACE for s in _OPEN_LIVE},
    **{(s, Ev.CANCELED): S.CANCELED for s in _OPEN_LIVE},
    **{(s, Ev.EXPIRED): S.EXPIRED for s in _OPEN_LIVE},
    **{(s, Ev.ACCEPTED): s for s in _OPEN_LIVE},  # a duplicate acknowledgement changes nothing
    (S.PENDING_CANCEL, Ev.CANCELED): S.CANCELED,
    (S.PENDING_CANCEL, Ev.CANCEL_REFUSED): None,
    (S.PENDING_CANCEL, Ev.FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, Ev.FILL_FULL): S.FILLED,
    (S.PENDING_CANCEL, Ev.EXPIRED): S.EXPIRED,
    (S.PENDING_CANCEL, Ev.ACCEPTED): S.PENDING_CANCEL,
    # cancel requested before the venue acknowledged, and the venue refused the order
    (S.PENDING_CANCEL, Ev.REJECTED): S.REJECTED,
    (S.PENDING_REPLACE, Ev.REPLACED): None,
    (S.PENDING_REPLACE, Ev.REPLACE_REFUSED): None,
    (S.PENDING_REPLACE, Ev.FILL): S.PENDING_REPLACE,
    (S.PENDING_REPLACE, Ev.FILL_FULL): S.FILLED,
    (S.PENDING_REPLACE, Ev.CANCELED): S.CANCELED,
    (S.PENDING_REPLACE, Ev.EXPIRED): S.EXPIRED,
    (S.PENDING_REPLACE, Ev.ACCEPTED): S.PENDING_REPLACE,
}


def transition(status: OrdStatus, event: Ev, live: OrdStatus) -> OrdStatus | None:
    """The status after ``event``; None when the pair is not in the table.

    ``live`` is the status the order would have without a pending request (NEW or
    PARTIALLY_FILLED), used where the table says "back to live".
    """
    if (status, event) not in TRANSITIONS:
        return None
    target = TRANSITIONS[(status, event)]
    return live if target is None else target

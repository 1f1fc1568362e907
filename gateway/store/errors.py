"""What the store raises when it cannot do what it was asked, as the gateway tells them apart.

:class:`StoreUnavailable` is an outage (the database went away, the disk is full): nothing was
committed, and nothing will be until the store answers again; the writer says when
(:meth:`SessionStore.add_availability_listener
<gateway.store.sessions.SessionStore.add_availability_listener>`). Anything else a store call
raises is about that request alone (a bug, a constraint).
"""

from __future__ import annotations


class StoreUnavailable(RuntimeError):  # noqa: N818 - a state, as in "503 Service Unavailable"
    """The store cannot commit now: the request was not applied (nothing of it committed)."""

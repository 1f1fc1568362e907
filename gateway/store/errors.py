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


class StoreClosedError(RuntimeError):
    """The store is not running (not started yet, closed, or its writer thread died)."""


class NodeFenced(RuntimeError):  # noqa: N818 - a state
    """Another process has taken this node's place: it must not write anything more."""

    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(f"node {node} was taken over by another process (its fencing token "
                         "changed): this process must stop")

"""The FIX core's own errors that derive from a built-in exception other than ``Exception`` or
``ValueError``: mypyc compiles :mod:`gateway.fix.session` and :mod:`gateway.fix.states` into
native classes and cannot derive one from ``RuntimeError``; here they stay Python classes."""

from __future__ import annotations


class SessionNotReady(RuntimeError):
    """Our own misuse: an application message sent on a session that is not logged on."""


class StepError(RuntimeError):
    """The session took a step its state does not allow (a bug of ours, not the peer's)."""

"""The order path's modules compiled from their own Python source by mypyc (:data:`ORDER_PATH`),
and the switch back to Python.

What a build is, where it lives, when it is stale and how ``FIXGW_PURE=1`` makes a present one
unused is :class:`connectors.native.NativeBuild`'s (a leaf of the venue side, so that the paper
venue can declare a build of its own without importing ``gateway``); the class is exported here
as before (the root of the sources is not: patching it here would change nothing).
``scripts/build_native.py`` (run by ``scripts/setup.sh``) builds every build.

Four builds: :data:`ORDER_PATH` (installed by the ``gateway`` package itself, before any of its
modules is imported), the audit's (:mod:`gateway.audit.native`, with C of its own), the paper
venue's (:mod:`connectors.paper.native`, installed by ``connectors.paper``, under the same
``FIXGW_PURE``) and the connector contract's values (:data:`connectors.native.EVENTS`, installed
by the ``connectors`` package, under the same ``FIXGW_PURE``).
"""

from __future__ import annotations

from pathlib import Path

from connectors.native import NativeBuild, dataclass_init_when_interpreted

__all__ = ["ORDER_PATH", "NativeBuild", "dataclass_init_when_interpreted"]


ORDER_PATH = NativeBuild(
    "fixgw's order path",
    ("gateway.fix.codec", "gateway.fix.dictionary", "gateway.fix.fixtime", "gateway.fix.message",
     "gateway.fix.validation", "gateway.fix.session", "gateway.fix.states", "gateway.fix.rejects",
     "gateway.fix.resend", "gateway.fix.tags", "gateway.orders.lifecycle", "gateway.orders.model",
     "gateway.orders.fixmap", "gateway.orders.recorder", "gateway.orders.book",
     "gateway.orders.new", "gateway.orders.venue", "gateway.orders.manager",
     "gateway.store.records", "gateway.store.rows", "gateway.store.writer", "gateway.store.writes",
     "gateway.risk.checks", "gateway.positions.book", "gateway.positions.balance_book",
     "gateway.server.traffic", "gateway.server.handle", "gateway.orders.ids",
     "gateway.orders.filters", "gateway.orders.tasks", "gateway.marketview",
     "gateway.positions.exposure", "gateway.routing.router", "gateway.marketdata.feeds",
     "gateway.cluster"),
    "gateway._compiled", "FIXGW_PURE",
    c_module="gateway.store._walvfs",
    c_sources=(Path(__file__).resolve().parent / "store" / "_walvfs.c",),
    c_libraries=("sqlite3",), c_optional=True)
"""What every order goes through, compiled: the FIX codec, dictionaries, messages and their
validation, the FIX session's state machine, the orders' lifecycle table, model and FIX
mapping, the order book, the NewOrderSingle handler, the venue side, the order manager, the
order recorder, the store's records, row builders, its writer and the writes every order makes
(statements, write sets, requests, the fence check), the order ids, the instrument filters,
the order path's tasks, the pre-trade risk checks, the positions, the balance book and the
exposure across venues, the routing (venue, account and symbol resolution), the market data
feeds and the market view over them, the node's lease and ownership (``gateway.cluster``),
and the server's session handle and traffic counts. ``FIXGW_PURE=1`` runs them as Python.

With them, in C: ``gateway.store._walvfs``, the SQLite VFS that writes each commit's
write-ahead-log frames at once (:func:`gateway.store.db.wal_vfs`; left out where SQLite's
headers are missing, and unused with ``FIXGW_PURE=1``)."""

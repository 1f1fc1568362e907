"""Which modules of the paper venue run compiled, and the switch back to pure Python.

The simulated venue runs on the gateway's event loop, and its matching, settlement and
publishing are a good part of the Python left there once the order path is compiled
(:data:`gateway.native.ORDER_PATH`): ``scripts/build_native.py`` compiles them by mypyc too, a
build of their own (:class:`connectors.native.NativeBuild`, group ``connectors.paper._compiled``).
It is installed by this package's ``__init__``, before any of them is imported, so that a
process importing the venue before ``gateway`` (the emulators, the paper server, a test) does
not run a stale build either. ``FIXGW_PURE=1``, the order path's switch, makes it unused as
well: pure means all of fixgw's compiled code but the audit's.

The stamp hashes ``connectors`` only: the venue imports nothing of ``gateway``, so an edit there
leaves this build fresh.
"""

from __future__ import annotations

from connectors.native import NativeBuild

BUILD = NativeBuild(
    "the paper venue",
    ("connectors.paper.book", "connectors.paper.market", "connectors.paper.exchange",
     "connectors.paper.venue"),
    "connectors.paper._compiled", "FIXGW_PURE", depends=("connectors",))
"""The order book and its matching, the synthetic market maker, the exchange (orders, locks,
fills, settlement) and the connector around it (publishing events, balances and the public
feed)."""

"""fixgw, a FIX gateway for crypto venues (see the README)."""

from .native import ORDER_PATH

ORDER_PATH.install()  # before any compiled module is imported: FIXGW_PURE=1, or a stale build

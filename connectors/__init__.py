"""The venue side: the connector contract (:mod:`connectors.base`) and a connector per venue."""

from connectors.native import EVENTS

EVENTS.install()  # before connectors.events is imported: FIXGW_PURE=1, or a stale build

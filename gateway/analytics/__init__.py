"""Execution analytics of what the gateway executed, from its order store (``fixgw report``)."""

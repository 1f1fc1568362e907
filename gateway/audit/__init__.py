"""``fixgw audit`` and ``fixgw replay`` (see the README's Audit section)."""

from . import native

native.install()

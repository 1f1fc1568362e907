#!/usr/bin/env python3
"""Builds the compiled parts of ``fixgw audit`` in place: ``scripts/build_native.py --only
audit`` (which ``scripts/setup.sh`` runs for all of fixgw's compiled parts; see there).

    .venv/bin/python scripts/build_audit_native.py          # build (idempotent)
    .venv/bin/python scripts/build_audit_native.py --clean  # remove what it built
"""

from __future__ import annotations

import sys

from build_native import main

if __name__ == "__main__":
    sys.exit(main(["--only", "audit", *sys.argv[1:]]))

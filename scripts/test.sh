#!/usr/bin/env bash
# Installs what the tests need (project-local .venv, QuickFIX for the interop tests) and runs
# the linters, the type checker and the whole test suite. Extra arguments go to pytest.
#   REQUIRE_POSTGRES=1  fail (instead of skip) the PostgreSQL tests when the server is absent
#   REQUIRE_BROWSER=1   fail (instead of skip) the browser tests when Chromium is absent
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --interop
echo "== ruff"
.venv/bin/ruff check gateway connectors emulators tests scripts
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -p no:cacheprovider "$@"

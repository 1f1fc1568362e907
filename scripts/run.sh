#!/usr/bin/env bash
# Installs what fixgw needs (project-local .venv) and runs the gateway on its embedded default.
# Usage: scripts/run.sh [--config FILE]      (default: config/gateway.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ $# -eq 0 ]; then set -- --config config/gateway.toml; fi
exec .venv/bin/fixgw run "$@"

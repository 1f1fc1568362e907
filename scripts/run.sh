#!/usr/bin/env bash
# Installs what fixgw needs (project-local .venv) and runs the gateway on its embedded default.
# Usage: scripts/run.sh [--config FILE]      (default: the embedded gateway/defaults/gateway.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/fixgw run "$@"

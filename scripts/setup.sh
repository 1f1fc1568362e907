#!/usr/bin/env bash
# Installs everything fixgw needs into a project-local venv (.venv). Idempotent.
# Usage: scripts/setup.sh [--dev] [--interop] [--bench]
#   --bench: what scripts/bench_orders.py uses beyond --interop: the C++ echo acceptor
#            (.venv/bin/qf_echo, built against Debian's libquickfix-dev) and py-spy
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3.11 python3.11-venv >/dev/null || true
  fi
  command -v "$PY" >/dev/null 2>&1 || PY=python3
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=""
for a in "$@"; do
  case "$a" in
    --dev) extras="${extras:+$extras,}dev" ; want_browser=1 ;;
    --interop) extras="${extras:+$extras,}dev" ; want_interop=1 ; want_browser=1 ;;
    --bench) extras="${extras:+$extras,}dev" ; want_interop=1 ; want_bench=1 ;;
  esac
done
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[$extras]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
# fixgw's compiled parts, built from source here (scripts/build_native.py): the order path's
# modules (FIX codec, dictionaries, validation; the orders' model and FIX mapping), the paper
# venue's (its book, market maker, exchange and connector) and the audit's checks compiled by
# mypyc (it comes with mypy), the audit's C (gateway/audit/_cscan.c) and the store's SQLite VFS
# (gateway/store/_walvfs.c, against SQLite's headers: Debian's libsqlite3-dev).
# Without a compiler it says so and fixgw runs as pure Python, the same results more slowly.
.venv/bin/python -c "import mypyc" >/dev/null 2>&1 || .venv/bin/python -m pip install -q "mypy>=1.10"
if [ ! -f /usr/include/sqlite3.h ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing libsqlite3-dev (the store's WAL VFS, gateway/store/_walvfs.c)..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libsqlite3-dev >/dev/null; } || echo "libsqlite3-dev could not be installed" >&2
fi
.venv/bin/python scripts/build_native.py
if [ "${want_interop:-0}" = 1 ] && ! .venv/bin/python -c "import quickfix" >/dev/null 2>&1; then
  # QuickFIX's Python package is a C++ build of several minutes: build the wheel once and keep it
  # in a cache outside the checkout, so later runs (and CI on this machine) only install it.
  cache="${FIXGW_WHEEL_CACHE:-$HOME/.cache/fixgw/wheels}"
  mkdir -p "$cache"
  if ! ls "$cache"/quickfix-*.whl >/dev/null 2>&1; then
    echo "building the quickfix wheel (one time, several minutes)..." >&2
    .venv/bin/python -m pip wheel -q --no-deps -w "$cache" "quickfix>=1.15.1"
  fi
  .venv/bin/python -m pip install -q --no-index --find-links "$cache" quickfix
fi
if [ "${want_bench:-0}" = 1 ] && ! [ -x .venv/bin/py-spy ]; then
  .venv/bin/python -m pip install -q py-spy || echo "py-spy could not be installed" >&2
fi
if [ "${want_bench:-0}" = 1 ] && { [ ! -x .venv/bin/qf_echo ] || [ scripts/native/qf_echo.cpp -nt .venv/bin/qf_echo ]; }; then
  # the echo limit of scripts/bench_orders.py: QuickFIX's C++ engine with a C++ application
  # (scripts/native/qf_echo.cpp), built against Debian's libquickfix-dev
  if [ ! -f /usr/include/quickfix/SocketAcceptor.h ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing libquickfix-dev (the C++ echo acceptor of the order benchmark)..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        libquickfix-dev g++ >/dev/null; } || echo "libquickfix-dev could not be installed" >&2
  fi
  if [ -f /usr/include/quickfix/SocketAcceptor.h ]; then
    g++ -O2 -std=c++14 -Wno-deprecated -Wno-deprecated-declarations scripts/native/qf_echo.cpp \
      -lquickfix -lpthread -o .venv/bin/qf_echo \
      || echo "qf_echo could not be built: bench_orders.py leaves qf-echo out" >&2
  else
    echo "no libquickfix-dev: bench_orders.py leaves qf-echo (the C++ echo acceptor) out" >&2
  fi
fi
if [ "${want_browser:-0}" = 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  # the dashboard (tests/ops/test_dashboard.py) and the audit's HTML report (tests/audit) are
  # tested in Debian's headless Chromium (they skip without it, unless REQUIRE_BROWSER=1)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (the browser tests)..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver >/dev/null; } || echo "chromium could not be installed" >&2
  else
    echo "no chromium/chromedriver: the browser tests will be skipped" >&2
  fi
fi

#!/usr/bin/env python3
"""fixgw against an earlier version of itself, side by side in one run.

The earlier version is checked out from git (``--base``, a revision) into a temporary
worktree and run with this checkout's virtual environment (its packages first on PYTHONPATH);
both serve the benchmarks' configuration (SQLite, file log, checks on; see
scripts/benchlib/gwconfig.py) and take the same marketable orders at 1 and at 100 in flight,
the two versions alternating round by round (the machine's load moves; the comparison less),
each going first in every other round (which goes first is part of the noise: it favours
neither side then).

    .venv/bin/python scripts/bench_ab.py --base d1d3b98
    .venv/bin/python scripts/bench_ab.py --base HEAD~3 --rounds 3 --n1 3000 --n100 20000
    .venv/bin/python scripts/bench_ab.py --base main --admin   # the admin API (metrics) on
    .venv/bin/python scripts/bench_ab.py --base HEAD --env FIXGW_X=1   # an environment each
    .venv/bin/python scripts/bench_ab.py --base HEAD~1 --base-native   # compiled, both sides
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import native, procs  # noqa: E402
from benchlib.client import LeanClient, OrderSpec  # noqa: E402
from benchlib.gwconfig import write_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from gateway.cli import main; sys.exit(main())"


def start(tmp: Path, name: str, source: Path, admin: bool = False,
          extra_env: dict[str, str] | None = None) -> procs.Server:
    """``fixgw run`` of ``source``; a version that has no inbound limit to turn off (nor
    accepts ``rate_limit = 0``) gets the configuration without it."""
    cfg = write_config(tmp / f"{name}.toml", store=f"sqlite:///{tmp / (name + '.db')}",
                       log_dir=tmp / f"{name}-log", admin=admin)
    argv = [sys.executable, "-c", RUN, "run", "--config", str(cfg)]
    env = {"PYTHONPATH": str(source), **(extra_env or {})}
    try:
        return procs.start(name, argv, stderr_path=tmp / f"{name}.stderr", cwd=tmp, env=env)
    except RuntimeError:
        if "rate_limit" not in (tmp / f"{name}.stderr").read_text():
            raise
    cfg.write_text(cfg.read_text().replace("rate_limit = 0\n", ""))
    return procs.start(name, argv, stderr_path=tmp / f"{name}.stderr", cwd=tmp, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the git revision to compare with")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n1", type=int, default=1500)
    ap.add_argument("--n100", type=int, default=8000)
    ap.add_argument("--admin", action="store_true",
                    help="both with the admin API on (its metrics fed as orders go)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable of this checkout's gateway (repeatable)")
    ap.add_argument("--base-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable of the base's gateway (repeatable)")
    ap.add_argument("--base-native", action="store_true",
                    help="build the base's compiled modules first (scripts/build_native.py in "
                         "its worktree), to compare compiled with compiled")
    args = ap.parse_args()
    envs = {"base": dict(e.split("=", 1) for e in args.base_env),
            "this": dict(e.split("=", 1) for e in args.env)}
    native.refuse_stale(envs["this"], say=True, name="this checkout's fixgw")
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-ab-"))
    base = tmp / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(base),
                    args.base], check=True, capture_output=True)
    try:
        if args.base_native:
            subprocess.run([sys.executable, str(base / "scripts" / "build_native.py")],
                           cwd=base, check=True, capture_output=True)
        native.refuse_stale(envs["base"], say=True, source=base,
                            name=f"base {args.base}'s fixgw")  # (SystemExit: finally runs)
        if not args.base_native:
            print("(--base-native builds the base's compiled modules)", flush=True)
        for rnd in range(args.rounds):
            sides = [(f"base {args.base}", base, envs["base"]),
                     ("this checkout", ROOT, envs["this"])]
            for name, source, env in sides[::-1] if rnd % 2 else sides:  # each first in turn
                s = start(tmp, f"gw{rnd}{len(name)}", source, args.admin, env)
                try:
                    c = LeanClient(s.host, s.port)
                    c.logon()
                    c.run_window(OrderSpec(), 500, 100, "w")
                    for window, n in ((1, args.n1), (100, args.n100)):
                        cpu0 = s.cpu_s()
                        r = c.run_window(OrderSpec(), n, window, f"r{window}x")
                        cpu = (s.cpu_s() - cpu0) * 1e6 / n
                        print(f"round {rnd} {name:<20} {window:>3} in flight: {r.rate:>7,.0f} "
                              f"orders/s  p50 {r.pct(50):.3f} ms  p99 {r.pct(99):.3f} ms  "
                              f"{cpu:,.0f} us CPU/order", flush=True)
                    c.logout()
                finally:
                    s.stop()
        return 0
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                       check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""How fast ``fixgw audit`` reads a log, end to end, and that its memory does not grow with
the log.

Generates a fixgw message log of ``--messages`` messages (default 1,000,000) of one FIX 4.4
session: a client keeping ~200 orders in flight, each one of six realistic flows (rests then
cancelled; filled in three parts; replaced then filled; rejected; filled then a cancel too late;
partly filled then cancelled), ExecutionReports written as the gateway writes them, heartbeats
both ways. Then runs ``fixgw audit LOG --json FILE`` as a subprocess on the first quarter of the
log and on all of it, for each variant, one after the other in the same run:

* ``native`` -- this checkout with its compiled parts (``scripts/build_audit_native.py``);
* ``pure`` -- this checkout as pure Python (``FIXGW_AUDIT_PURE=1``);
* ``base`` -- with ``--base REV``: that commit's code (``git archive`` into a temporary
  directory, its compiled parts built there by its own ``scripts/build_audit_native.py`` where
  it has one, run with this venv), to compare before and after on the same machine and load.

Each run prints messages/s (wall clock, process start included) and its peak resident memory
(the child's own ``VmHWM``, read by the child as it exits: ``getrusage``'s figure for children
counts the parent's memory copied at fork). The full log's peak must stay within 10 MB of the
quarter's (memory does not grow with the log), else the script fails; a clean log must give no
findings; ``--faults`` injects one of each kind the tests inject and checks they are found.

    .venv/bin/python scripts/bench_audit.py                       # ~1 min on 2 cores
    .venv/bin/python scripts/bench_audit.py --base 95277a2        # before/after, same run
    .venv/bin/python scripts/bench_audit.py --messages 200000 --keep /tmp/audit.log
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
SOH = b"\x01"
CLIENT, GATEWAY = b"CLIENT1", b"GATEWAY"
SYMBOLS = [(b"BTC/USDT", 97000.0), (b"ETH/USDT", 3400.0), (b"SOL/USDT", 190.0)]
FLOWS = [("rest-cancel", 30), ("fill3", 25), ("replace-fill", 15), ("reject", 5),
         ("late-cancel", 10), ("partial-cancel", 15)]


def encode(fields: list[tuple[int, bytes]]) -> bytes:
    body = b"".join([b"%d=%s\x01" % f for f in fields])
    msg = b"8=FIX.4.4\x019=%d\x01" % len(body) + body
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


class Writer:
    """Writes fixgw FileLog lines with the gateway's header layout (35, 34, 49, 52, 56)."""

    def __init__(self, out: object, start: float) -> None:
        self.out = out
        self.t = start
        self.seq = {CLIENT: 1, GATEWAY: 1}
        self.count = 0
        self._second = -1
        self._prefix = b""
        self.last_beat = start

    def stamp(self) -> tuple[bytes, bytes]:
        sec = int(self.t)
        if sec != self._second:
            self._second = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y%m%d-%H:%M:%S").encode()
        micro = int((self.t - sec) * 1_000_000)
        return self._prefix + b".%06d" % micro, self._prefix + b".%03d" % (micro // 1000)

    def send(self, sender: bytes, msg_type: bytes, body: list[tuple[int, bytes]]) -> None:
        self.t += random.uniform(0.0002, 0.004)
        line_stamp, sending = self.stamp()
        target = GATEWAY if sender == CLIENT else CLIENT
        seq = self.seq[sender]
        self.seq[sender] = seq + 1
        raw = encode([(35, msg_type), (34, b"%d" % seq), (49, sender), (52, sending),
                      (56, target), *body])
        self.out.write(line_stamp + b" : " + raw + b"\n")  # type: ignore[attr-defined]
        self.count += 1
        if self.t - self.last_beat > 30:
            self.last_beat = self.t
            self.send(CLIENT, b"0", [])
            self.send(GATEWAY, b"0", [])


class Order:
    def __init__(self, n: int, flow: str) -> None:
        self.n = n
        self.flow = flow
        self.cl = b"C%d" % n
        self.oid = b"%d" % n
        self.symbol, mid = random.choice(SYMBOLS)
        self.side = random.choice((b"1", b"2"))
        self.qty = random.choice((3, 6, 9, 12)) / 100
        self.price = round(mid * random.uniform(0.98, 1.02), 2)
        self.cum = 0.0
        self.notional = 0.0
        self.execs = 0
        self.step = 0
        self.status = b"A"
        self.orig: bytes | None = None

    def q(self, v: float) -> bytes:
        return format(round(v, 8), "f").rstrip("0").rstrip(".").encode() or b"0"

    def er(self, exec_type: bytes, status: bytes, last: float | None = None,
           px: float | None = None, text: bytes | None = None,
           orig: bytes | None = None) -> list[tuple[int, bytes]]:
        self.execs += 1
        avg = self.notional / self.cum if self.cum else 0.0
        f: list[tuple[int, bytes]] = [(6, self.q(avg)), (11, self.cl)]
        if last is not None:
            f += [(12, self.q(last * 0.0005)), (13, b"3")]
        f += [(14, self.q(self.cum)), (17, b"%s.%d" % (self.oid, self.execs))]
        if last is not None:
            f += [(31, self.q(px or 0.0)), (32, self.q(last))]
        f += [(37, self.oid), (38, self.q(self.qty)), (39, status), (40, b"2")]
        if orig is not None:
            f.append((41, orig))
        f += [(44, self.q(self.price)), (54, self.side), (55, self.symbol)]
        if text is not None:
            f.append((58, text))
        leaves = 0.0 if status in (b"2", b"4", b"8", b"C") else self.qty - self.cum
        f += [(59, b"1"), (60, b"20260101-00:00:00.000"), (150, exec_type),
              (151, self.q(leaves)), (198, b"P%s" % self.oid)]
        if last is not None:
            f += [(479, self.symbol.split(b"/")[0]), (851, b"2")]
        return f

    def new(self) -> list[tuple[int, bytes]]:
        return [(11, self.cl), (21, b"1"), (38, self.q(self.qty)), (40, b"2"),
                (44, self.q(self.price)), (54, self.side), (55, self.symbol), (59, b"1"),
                (60, b"20260101-00:00:00")]

    def fill(self, part: float) -> list[tuple[int, bytes]]:
        last = round(min(self.qty - self.cum, self.qty * part), 8)
        px = round(self.price * random.uniform(0.999, 1.0), 2)
        self.cum = round(self.cum + last, 8)
        self.notional += last * px
        status = b"2" if abs(self.cum - self.qty) < 1e-9 else b"1"
        self.status = status
        return self.er(b"F", status, last, px)

    def advance(self, w: Writer) -> bool:
        """The next message of the flow; False once the order is done."""
        s, flow = self.step, self.flow
        self.step += 1
        if s == 0:
            w.send(CLIENT, b"D", self.new())
            return True
        if flow == "reject":
            w.send(GATEWAY, b"8", self.er(b"8", b"8", text=b"price outside the band"))
            return False
        if s == 1:
            self.status = b"0"
            w.send(GATEWAY, b"8", self.er(b"0", b"0"))
            return True
        if flow == "fill3":
            w.send(GATEWAY, b"8", self.fill(1 / 3 if s < 4 else 1))
            return self.status != b"2"
        if flow in ("rest-cancel", "partial-cancel"):
            if flow == "partial-cancel" and s == 2:
                w.send(GATEWAY, b"8", self.fill(1 / 3))
                return True
            k = s - (3 if flow == "partial-cancel" else 2)
            if k == 0:
                self.orig, self.cl = self.cl, self.cl + b"x"
                w.send(CLIENT, b"F", [(11, self.cl), (38, self.q(self.qty)), (41, self.orig),
                                      (54, self.side), (55, self.symbol),
                                      (60, b"20260101-00:00:00")])
            elif k == 1:
                w.send(GATEWAY, b"8", self.er(b"6", b"6", orig=self.orig))
            else:
                w.send(GATEWAY, b"8", self.er(b"4", b"4", orig=self.orig))
                return False
            return True
        if flow == "replace-fill":
            if s == 2:
                self.orig, self.cl = self.cl, self.cl + b"r"
                self.new_qty = self.qty * 2
                w.send(CLIENT, b"G", [(11, self.cl), (21, b"1"), (38, self.q(self.new_qty)),
                                      (40, b"2"), (41, self.orig), (44, self.q(self.price)),
                                      (54, self.side), (55, self.symbol),
                                      (60, b"20260101-00:00:00")])
            elif s == 3:
                w.send(GATEWAY, b"8", self.er(b"E", b"E", orig=self.orig))
            elif s == 4:
                self.qty = self.new_qty
                w.send(GATEWAY, b"8", self.er(b"5", b"0", orig=self.orig))
            else:
                w.send(GATEWAY, b"8", self.fill(1))
                return False
            return True
        # late-cancel
        if s == 2:
            w.send(GATEWAY, b"8", self.fill(1))
        elif s == 3:
            w.send(CLIENT, b"F", [(11, self.cl + b"x"), (38, self.q(self.qty)), (41, self.cl),
                                  (54, self.side), (55, self.symbol),
                                  (60, b"20260101-00:00:00")])
        else:
            w.send(GATEWAY, b"9", [(11, self.cl + b"x"), (37, self.oid), (39, b"2"),
                                   (41, self.cl), (58, b"too late: the order is filled"),
                                   (102, b"0"), (434, b"1")])
            return False
        return True


def generate(path: Path, messages: int, seed: int = 7) -> int:
    random.seed(seed)
    names = [f for f, _ in FLOWS]
    weights = [w for _, w in FLOWS]
    with open(path, "wb", buffering=1 << 20) as out:
        w = Writer(out, datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp())
        w.send(CLIENT, b"A", [(98, b"0"), (108, b"30"), (141, b"Y")])
        w.send(GATEWAY, b"A", [(98, b"0"), (108, b"30"), (141, b"Y")])
        live: list[Order] = []
        n = 0
        while w.count < messages - 2:
            if len(live) < 200 and (not live or random.random() < 0.3):
                n += 1
                order = Order(n, random.choices(names, weights)[0])
                live.append(order)
                order.advance(w)
                continue
            i = random.randrange(len(live))
            if not live[i].advance(w):
                live[i] = live[-1]
                live.pop()
        while live:  # let every order finish
            if not live[-1].advance(w):
                live.pop()
        w.send(CLIENT, b"5", [])
        w.send(GATEWAY, b"5", [])
        return w.count


def inject_faults(path: Path) -> list[str]:
    """One of each fault the tests inject, in the middle of the log."""
    lines = path.read_bytes().splitlines(keepends=True)
    mid = len(lines) // 2
    fills = [i for i in range(mid, len(lines)) if b"\x01150=F\x01" in lines[i]
             and b"\x0139=1\x01" in lines[i]]
    a, b = fills[0], fills[40]
    # a fill's ExecID given to a later fill of another order; a missing fill
    exec_id = lines[a].split(b"\x0117=")[1].split(SOH)[0]
    lines[b] = lines[b].replace(lines[b].split(b"\x0117=")[1].split(SOH)[0], exec_id, 1)
    del lines[fills[80]]
    return ["duplicate-exec-id", "cum-qty", "sequence-gap"] if lines and path.write_bytes(
        b"".join(lines)) else []


RUNNER = """
import sys
sys.argv[0] = "fixgw"
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
from gateway.cli import main
try:
    code = main(sys.argv[2:])
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"peak-rss-kb {peak}", file=sys.stderr)
sys.exit(code)
"""
"""``fixgw audit`` as the console script runs it, plus its own peak RSS at the end."""

MEMORY_SLACK_MB = 10.0
"""How much more the full log's run may use than the quarter's."""


def audit(path: Path, workdir: Path, variant: str, base_dir: Path | None
          ) -> dict[str, float]:
    out = workdir / "audit.json"
    env = dict(os.environ)
    env.pop("FIXGW_AUDIT_PURE", None)
    if variant == "pure":
        env["FIXGW_AUDIT_PURE"] = "1"
    start = time.perf_counter()
    proc = subprocess.run([str(PYTHON), "-c", RUNNER, str(base_dir or ""), "audit", str(path),
                           "--json", str(out)],
                          capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"fixgw audit ({variant}) failed ({proc.returncode}): {proc.stderr}")
    peak = [ln for ln in proc.stderr.splitlines() if ln.startswith("peak-rss-kb ")]
    doc = json.loads(out.read_text())
    out.unlink()
    return {"messages": doc["messages"], "seconds": elapsed, "rate": doc["messages"] / elapsed,
            "findings": doc["summary"]["findings"], "orders": doc["summary"]["orders"],
            "by_kind": doc["summary"]["findings_by_kind"],
            "rss_mb": int(peak[-1].split()[1]) / 1024 if peak else float("nan"),
            "exit": proc.returncode}


def compiled_parts(code_dir: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "FIXGW_AUDIT_PURE"}
    proc = subprocess.run([str(PYTHON), "-c", "import sys\n"
                           "if sys.argv[1]: sys.path.insert(0, sys.argv[1])\n"
                           "import gateway.audit.checker\n"
                           "try:\n"
                           "    from gateway.audit.native import compiled\n"
                           "except ImportError:\n"
                           "    print('none (before the compiled audit)'); sys.exit()\n"
                           "print(sorted(k for k, v in compiled().items() if v))",
                           str(code_dir or "")], capture_output=True, text=True, check=False,
                          env=env, cwd=code_dir or REPO)
    return proc.stdout.strip() or proc.stderr.strip()


def build_base(base_dir: Path) -> None:
    """The base's own compiled parts, built in its directory where it has them (git archive
    holds only sources): the base runs as that commit runs after scripts/setup.sh."""
    script = base_dir / "scripts" / "build_audit_native.py"
    if script.exists():
        subprocess.run([str(PYTHON), str(script)], cwd=base_dir, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the log here (and keep it)")
    ap.add_argument("--faults", action="store_true", help="inject faults; they must be found")
    ap.add_argument("--no-quarter", action="store_true", help="skip the quarter-log runs")
    ap.add_argument("--base", metavar="REV", help="also run this commit's audit (before)")
    ap.add_argument("--variants", default="native,pure",
                    help="which of native, pure to run (comma-separated; default both)")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        work = Path(tmp)
        base_dir = None
        if args.base:
            base_dir = work / "base"
            base_dir.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.base],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base_dir)], input=archive, check=True)
            build_base(base_dir)
            print(f"compiled parts of {args.base}: {compiled_parts(base_dir)}")
            variants.insert(0, "base")
        path = args.keep or work / "FIX.4.4-GATEWAY-CLIENT1.messages.current.log"
        t0 = time.perf_counter()
        count = generate(path, args.messages)
        size = path.stat().st_size
        print(f"generated {count:,} messages ({size / 1e6:,.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s: {path}")
        print(f"compiled parts of this checkout: {compiled_parts()}")
        expected: list[str] = []
        if args.faults:
            expected = inject_faults(path)
            print(f"injected: {', '.join(expected)}")
        quarter = work / "FIX.4.4-GATEWAY-CLIENT1.messages.quarter.log"
        if not args.no_quarter:
            with open(path, "rb") as src, open(quarter, "wb") as dst:
                for i, line in enumerate(src):
                    if i >= count // 4:
                        break
                    dst.write(line)
        failed = []
        for variant in variants:
            code_dir = base_dir if variant == "base" else None
            runs = []
            if not args.no_quarter:
                runs.append(("quarter", audit(quarter, work, variant, code_dir)))
            runs.append(("full", audit(path, work, variant, code_dir)))
            for name, r in runs:
                label = f"{variant} {args.base}" if variant == "base" else variant
                print(f"fixgw audit [{label}] ({name}): {r['messages']:,.0f} messages, "
                      f"{r['orders']:,.0f} orders in {r['seconds']:.2f} s = {r['rate']:,.0f} "
                      f"messages/s end to end; peak RSS {r['rss_mb']:.1f} MB; findings "
                      f"{r['findings']:.0f} {r['by_kind'] or ''}", flush=True)
            full = runs[-1][1]
            if args.faults:
                missing = [k for k in expected if k not in full["by_kind"]]  # type: ignore[operator]
                if missing:
                    failed.append(f"{variant}: not found: {missing}")
            elif full["findings"]:
                failed.append(f"{variant}: a clean log gave findings")
            if len(runs) == 2:
                grew = full["rss_mb"] - runs[0][1]["rss_mb"]
                print(f"  memory: {runs[0][1]['rss_mb']:.1f} MB at 25% of the log, "
                      f"{full['rss_mb']:.1f} MB at 100% ({grew:+.1f} MB)")
                if variant != "base" and not grew <= MEMORY_SLACK_MB:
                    failed.append(f"{variant}: memory grows with the log ({grew:+.1f} MB)")
        print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, load average "
              f"{os.getloadavg()[0]:.2f}")
        if failed:
            sys.exit("; ".join(failed))


if __name__ == "__main__":
    main()

"""Server processes of the benchmarks: start, wait for ``listening on HOST:PORT``, measure, stop."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    startup_s: float
    """From just before the process was spawned to its ``listening on`` line."""
    tail: bytes = b""
    """What the process wrote on stdout after its ``listening on`` line (read by ``stop``)."""
    _pending: bytes = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        return status_kb(self.pid, "VmRSS")

    def cpu_s(self) -> float:
        """CPU time (user + system, all threads) the process has used so far."""
        return cpu_seconds(self.pid)

    def readline(self, timeout: float = 10.0) -> bytes:
        """The next line the process writes on stdout (for counters it prints on a signal)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = end - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no line on stdout within {timeout}s")
            with selectors.DefaultSelector() as sel:
                sel.register(fd, selectors.EVENT_READ)
                if not sel.select(left):
                    continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{self.name} closed its stdout")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def ctx_switches(self) -> int:
        """Context switches (voluntary + involuntary) of all its threads so far."""
        return sum(t.ctx for t in threads(self.pid))

    def pause(self) -> None:
        """Stop the process (SIGSTOP) while other servers are measured: nothing of it runs
        until :meth:`resume` -- its clocks go on, and what its timers scheduled meanwhile runs
        at once when it is resumed."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)  # (a paused process handles it once resumed)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.tail = self._pending + self.proc.stdout.read()
            self.proc.stdout.close()
        return self.proc.returncode


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadCounters:
    tid: int
    name: str
    cpu_s: float
    sys_s: float
    """Of ``cpu_s``, the time in the kernel (system calls, page faults)."""
    voluntary: int
    involuntary: int

    @property
    def ctx(self) -> int:
        return self.voluntary + self.involuntary


def threads(pid: int) -> list[ThreadCounters]:
    """CPU time and context switches of each thread of ``pid`` (a thread that ended between
    the listing and the reading is left out)."""
    out = []
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
            name = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        kv = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out.append(ThreadCounters(int(task.name), name,
                                  (int(fields[11]) + int(fields[12])) / tick,
                                  int(fields[12]) / tick,
                                  int(kv["voluntary_ctxt_switches"]),
                                  int(kv["nonvoluntary_ctxt_switches"])))
    return out


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl  # (looked up here, not after the fork)
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """(In the child, before its program runs.) SIGKILL when the thread that started it ends:
    a server a benchmark left paused (:meth:`Server.pause`) would otherwise stay stopped for
    good when the benchmark is killed. Every caller starts servers from its main thread. A
    parent gone before this ran is not waited for."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def start(name: str, argv: list[str], *, stderr_path: Path, timeout: float = 120.0,
          cwd: Path | None = None, env: dict[str, str] | None = None) -> Server:
    """Spawn ``argv`` and wait (at most ``timeout`` s) for its ``listening on`` line."""
    err = open(stderr_path, "ab")  # noqa: SIM115 - handed to the child
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=cwd,
                            env={**os.environ, **(env or {})},
                            preexec_fn=functools.partial(_die_with_parent, os.getpid()))
    err.close()
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = b""
    deadline = t0 + timeout
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"{name}: no 'listening on' within {timeout}s")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"{name} exited ({proc.wait()}): see {stderr_path}")
            out += chunk
            m = LISTENING.search(out)
            if m:
                elapsed = time.perf_counter() - t0
                return Server(name, proc, m.group(1).decode(), int(m.group(2)), elapsed)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        sel.close()

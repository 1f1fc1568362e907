"""A private PostgreSQL cluster for a test that kills its database: ``initdb`` in a temporary
directory, ``postgres`` on a free loopback port, SIGKILLed and started again at will. The
machine's own server is never touched.

Run as root, the cluster's files and processes belong to the ``postgres`` user (PostgreSQL
refuses to run as root). Readiness is polled with a real connection, never slept for.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        path = Path(out.stdout.strip())
        if (path / "initdb").exists():
            return path
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgCluster:
    """``start()``, ``kill()`` (SIGKILL to every process of the cluster), ``start()`` again.

    Its files live in a directory of its own under the system's temporary directory (the
    ``postgres`` user must reach it: pytest's ``tmp_path`` is private to root), removed by
    :meth:`stop`."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            if os.environ.get("REQUIRE_POSTGRES") == "1":
                pytest.fail("PostgreSQL binaries (initdb) not found (REQUIRE_POSTGRES=1)")
            pytest.skip("PostgreSQL binaries (initdb) not found")
        self.bindir = bindir
        self.root = root = Path(tempfile.mkdtemp(prefix="fixgw-pg-"))
        self.data = root / "pgdata"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
        self.log = root / "postgres.log"
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, user=self._user,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                 "-c", "max_connections=50"],
                stdout=log, stderr=log, user=self._user, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres "
                                "connect_timeout=2").close()
                return
            except psycopg.OperationalError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the private PostgreSQL did not start:\n"
                                         f"{self.log.read_text(errors='replace')[-2000:]}"
                                         ) from exc
                time.sleep(0.05)  # polling for readiness, not waiting out a race

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (its process group), as a crash would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        # the backends are in the same group; wait until none is left holding shared memory
        deadline = time.monotonic() + 10
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.proc = None

    def _group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()

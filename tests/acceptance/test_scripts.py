"""Play the QuickFIX acceptance scripts against ``fixgw conformance-server``.

One test per (store, script). For each store one server is started and serves every version;
the scripts of the three versions (sessions TW44, TW50, TW50SP2, which are independent) are
played by one thread per version, each version's scripts in order, and each test waits for the
outcome of its own script. Set ``FIXGW_ACCEPTANCE_SERIAL=1`` to play everything in one thread.
``FIXGW_ACCEPTANCE_MODE=lenient`` switches to the lenient comparison (default: strict).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .player import Player, ScriptFailure
from .script import Comparator, Mode, load_patterns, load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCEPTANCE_DIR = REPO_ROOT.parent / "shared" / "fix-acceptance"
SCRIPTS_DIR = ACCEPTANCE_DIR / "server"
VERSIONS = ("fix44", "fix50", "fix50sp2")
FIXGW = REPO_ROOT / ".venv" / "bin" / "fixgw"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0

if not (ACCEPTANCE_DIR / "fields.fmt").is_file():
    pytest.skip(
        f"acceptance scripts not found in {ACCEPTANCE_DIR} (expected <repo>/../shared)",
        allow_module_level=True,
    )

#: Scripts (path relative to ``server/``, e.g. ``"fix44/2t_FirstThreeFieldsOutOfOrder.def"``)
#: on which fixgw knowingly deviates, with the reason. They are expected to fail (strict xfail:
#: a script that starts passing must be removed from here).
KNOWN_DEVIATIONS: dict[str, str] = {}

SCRIPTS = [
    f"{version}/{path.name}"
    for version in VERSIONS
    for path in sorted((SCRIPTS_DIR / version).glob("*.def"))
]

unknown = set(KNOWN_DEVIATIONS) - set(SCRIPTS)
assert not unknown, f"KNOWN_DEVIATIONS names scripts that do not exist: {sorted(unknown)}"


def _param(script: str) -> object:
    reason = KNOWN_DEVIATIONS.get(script)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason is not None else []
    return pytest.param(script, id=script, marks=marks)


def _mode() -> Mode:
    value = os.environ.get("FIXGW_ACCEPTANCE_MODE", "strict")
    try:
        return Mode(value)
    except ValueError:
        raise pytest.UsageError(
            f"FIXGW_ACCEPTANCE_MODE must be strict or lenient, not {value!r}"
        ) from None


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Acceptor:
    store: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def describe(self) -> str:
        code = self.process.poll()
        state = "running" if code is None else f"EXITED with code {code}"
        return f"server ({self.store} store, port {self.port}) {state}; log: {self.log_path}"


def _start_server(store: str, url: str, log_path: Path) -> Acceptor:
    if not FIXGW.exists():
        pytest.fail(f"{FIXGW} not found: install the project in the venv", pytrace=False)
    port = _free_port()
    command = [str(FIXGW), "conformance-server", "--port", str(port), "--store", url]
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO_ROOT
    )
    assert process.stdout is not None
    stdout = process.stdout
    ready = threading.Event()
    banner = f"listening on {HOST}:{port}".encode()

    def drain() -> None:
        # Copies the server's stdout to the log; signals the banner (or the end of the output).
        with log:
            for line in stdout:
                log.write(line)
                log.flush()
                if banner in line:
                    ready.set()
        ready.set()

    threading.Thread(target=drain, name=f"fixgw-{store}-stdout", daemon=True).start()
    if not ready.wait(STARTUP_TIMEOUT) or process.poll() is not None:
        _stop_server(process)
        text = log_path.read_bytes().decode(errors="replace")[-4000:]
        pytest.fail(
            f"fixgw conformance-server did not print {banner.decode()!r} "
            f"(command: {' '.join(command)}):\n{text}",
            pytrace=False,
        )
    return Acceptor(store, port, process, log_path)


def _stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# --------------------------------------------------------------------------- the players


@dataclass
class AcceptanceRun:
    """Plays the selected scripts in background threads (one per version) on one server."""

    acceptor: Acceptor
    comparator: Comparator
    futures: dict[str, Future[None]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self, scripts: list[str], serial: bool) -> None:
        groups: dict[str, list[str]] = {}
        for script in scripts:
            self.futures[script] = Future()
            groups.setdefault("all" if serial else script.split("/")[0], []).append(script)
        for name, group in groups.items():
            thread = threading.Thread(
                target=self._play_all, args=(group,), name=f"acceptance-{name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _play_all(self, scripts: list[str]) -> None:
        for script in scripts:
            future = self.futures[script]
            if self.stopping.is_set():
                future.cancel()
                continue
            future.set_running_or_notify_cancel()
            try:
                self._play(script)
            except BaseException as exc:  # reported by the test of that script
                future.set_exception(exc)
            else:
                future.set_result(None)

    def _play(self, script: str) -> None:
        player = Player(HOST, self.acceptor.port, self.comparator)
        player.play(load_script(SCRIPTS_DIR / script, name=script))

    def check(self, script: str) -> None:
        future = self.futures.get(script)
        if future is None:  # not scheduled in advance: play it here
            future = Future()
            future.set_running_or_notify_cancel()
            try:
                self._play(script)
                future.set_result(None)
            except BaseException as exc:
                future.set_exception(exc)
        failure = future.exception()
        if isinstance(failure, ScriptFailure):
            pytest.fail(f"{failure}\n{self.acceptor.describe()}", pytrace=False)
        future.result()  # re-raises any other error (a bug in the runner) with its traceback

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def acceptance_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AcceptanceRun]:
    store: str = request.param
    tmp = tmp_path_factory.mktemp(f"acceptance-{store}")
    if store == "sqlite":
        url = f"sqlite:///{tmp}/acc.db"
    else:
        url = request.getfixturevalue("pg_url_module")
    comparator = Comparator(load_patterns(ACCEPTANCE_DIR / "fields.fmt"), _mode())
    acceptor = _start_server(store, url, tmp / "server.log")
    run = AcceptanceRun(acceptor, comparator)
    try:
        # Schedule the scripts selected in this session for this store, in collection order.
        selected = [
            str(item.callspec.params["script"])
            for item in request.session.items
            if isinstance(item, pytest.Function)
            and item.function is test_script
            and hasattr(item, "callspec")
            and item.callspec.params.get("acceptance_run") == store
        ]
        run.start(selected, serial=os.environ.get("FIXGW_ACCEPTANCE_SERIAL") == "1")
        yield run
    finally:
        run.stopping.set()
        _stop_server(acceptor.process)
        run.stop()


@pytest.mark.acceptance
@pytest.mark.parametrize("script", [_param(s) for s in SCRIPTS])
def test_script(script: str, acceptance_run: AcceptanceRun) -> None:
    acceptance_run.check(script)

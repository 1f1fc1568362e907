"""``fixgw replay LOG --session ID --to HOST:PORT [--speed N]``: the client's application
messages of a log sent again, in order, to a gateway (one running on the simulated venue, to
reproduce an incident), and what comes back compared with what the log says the gateway
answered the first time (:mod:`.compare`).

The client is the side that sent the session's first Logon (else the side that sent orders).
The replay logs on as that client (ResetSeqNumFlag: the numbers start again at 1; Username
553 as in the log; the password, masked in logs, from ``--password-env``), sends each of the
client's application messages that was not a PossDup resend -- body as logged, header new --
with the log's pacing divided by ``--speed`` (0: at once) and never before as many answers came
back as the log has before that message (a bounded wait), keeps reading while it waits, then
waits until as many answers came back as the log has, or ``--wait`` seconds pass without one,
and logs out. Exit codes as for ``fixgw audit``: 0 no difference, 1 differences, 2 bad usage,
an unreadable log, or no gateway to talk to.

Messages are held in memory (a replay is of an incident: cut the log with ``--since`` and
``--until``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TextIO

from gateway.fix.dictionary import APPL_VER_IDS, STANDARD_HEADER, STANDARD_TRAILER, standard
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.fix.states import Role
from gateway.initiator import Initiator, InitiatorClosed

from .checker import ADMIN_TYPES, REQUEST_TYPES, SessionFilter
from .compare import Comparison, Sent
from .errors import InputError
from .scan import (
    BEGIN,
    DEFAULT_APPL_VER_ID,
    MSG_TYPE,
    POSS_DUP,
    SENDER,
    TARGET,
    Scanner,
    all_fields,
)
from .sources import Clock, FileSource, Record, expand

EXIT_CLEAN, EXIT_DIFFERENCES, EXIT_USAGE = 0, 1, 2
NOT_RESENT = STANDARD_HEADER | STANDARD_TRAILER | {43, 97, 122}


@dataclass
class ReplayOptions:
    paths: list[str]
    session: str
    host: str
    port: int
    speed: float = 1.0
    wait: float = 5.0
    since: bytes = b""
    until: bytes = b""
    password_env: str | None = None


@dataclass
class _Loaded:
    begin: str
    client: bytes
    gateway: bytes
    appl_ver: str | None
    username: bytes | None
    requests: list[tuple[float | None, int, Sent]]
    """(when, how many answers the log has before it, the message)."""
    answers: list[Sent]


class ReplayError(Exception):
    pass


def load(opts: ReplayOptions) -> _Loaded:
    """The session's messages: what the client sent (with when) and what it got."""
    wanted = SessionFilter(opts.session)
    scanner, clock = Scanner(), Clock()
    records: list[Record] = []
    pairs: set[tuple[str, bytes, bytes]] = set()
    for path in expand(opts.paths):
        for record in FileSource(path).records():
            stamp, raw = record[0], record[1]
            if (opts.since and stamp < opts.since) or (opts.until and stamp > opts.until):
                continue
            v = scanner.fields(raw)
            if v is None:
                continue
            sender, target = v[SENDER], v[TARGET]
            if sender is None or target is None:
                continue
            begin = (v[BEGIN] or b"?").decode()
            a, b = sender.decode(), target.decode()
            if wanted.matches(begin, a, b) or wanted.matches(begin, b, a):
                low, high = sorted((sender, target))
                pairs.add((begin, low, high))
                records.append(record)
    if not pairs:
        raise ReplayError(f"no message of session {opts.session} in {', '.join(opts.paths)}")
    if len(pairs) > 1:
        names = ", ".join(f"{b}:{x.decode()}<->{y.decode()}" for b, x, y in sorted(pairs))
        raise ReplayError(f"--session {opts.session} matches several sessions: {names}")
    begin = next(iter(pairs))[0]
    client: bytes | None = None
    appl_ver = None
    username = None
    scanned = [(r, scanner.fields(r[1])) for r in records]
    for _, v in scanned:
        assert v is not None
        if v[MSG_TYPE] == b"A" and client is None:
            client = v[SENDER]
        if client is None and v[MSG_TYPE] in REQUEST_TYPES:
            client = v[SENDER]
    if client is None:
        raise ReplayError(f"session {opts.session}: no Logon and no order tells who the client "
                          "is")
    requests: list[tuple[float | None, int, Sent]] = []
    answers: list[Sent] = []
    gateway = b""
    for (stamp, raw, line, origin), v in scanned:
        assert v is not None
        where = f"{origin.name}:{line}"
        mt = v[MSG_TYPE]
        if v[SENDER] == client:
            gateway = v[TARGET] or gateway
            if mt == b"A":
                if v[DEFAULT_APPL_VER_ID] is not None:
                    appl_ver = APPL_VER_IDS.get(v[DEFAULT_APPL_VER_ID], appl_ver)  # type: ignore[arg-type]
                username = dict(all_fields(raw)).get(553, username)
            elif mt not in ADMIN_TYPES and v[POSS_DUP] != b"Y":
                requests.append((clock.seconds(stamp), len(answers),
                                 Sent(all_fields(raw), where)))
        elif mt not in ADMIN_TYPES and v[POSS_DUP] != b"Y":
            answers.append(Sent(all_fields(raw), where))
    return _Loaded(begin, client, gateway, appl_ver, username, requests, answers)


async def replay(opts: ReplayOptions, out: TextIO, err: TextIO) -> int:
    try:
        loaded = load(opts)
    except (InputError, ReplayError) as exc:
        err.write(f"fixgw replay: {exc}\n")
        return EXIT_USAGE
    fixt = loaded.begin.startswith("FIXT")
    appl_ver = loaded.appl_ver or ("FIX.5.0SP2" if fixt else None)
    sid = SessionID(loaded.begin, loaded.client.decode(), loaded.gateway.decode())
    settings = SessionSettings(sid, role=Role.INITIATOR, heartbeat_interval=30,
                               default_appl_ver_id=appl_ver if fixt else None)
    if fixt:
        app = "FIX.5.0SP2" if appl_ver in (None, "FIX.5.0SP1") else appl_ver
        session = Session(settings, standard("FIXT.1.1"), {app: standard(app)})
    else:
        dd = standard("FIX.4.4")
        session = Session(settings, dd, {loaded.begin: dd, "FIX.4.4": dd})
    body: list[tuple[int, bytes]] = []
    if loaded.username is not None:
        body.append((553, loaded.username))
    if opts.password_env:
        password = os.environ.get(opts.password_env)
        if password is None:
            err.write(f"fixgw replay: ${opts.password_env} is not set\n")
            return EXIT_USAGE
        body.append((554, password.encode()))
    try:
        ini = await Initiator.connect(session, opts.host, opts.port, timeout=10.0)
    except (OSError, TimeoutError) as exc:
        err.write(f"fixgw replay: cannot connect to {opts.host}:{opts.port}: "
                  f"{exc or 'timeout'}\n")
        return EXIT_USAGE
    got: list[Sent] = []

    async def take(within: float) -> bool:
        msg = await ini.receive(max(within, 0.0))
        if msg is None:
            return False
        got.append(Sent(list(msg.all_fields()), "replay"))
        return True

    try:
        await ini.logon(reset=True, body=body)
        start = time.monotonic()
        first = next((t for t, _, _ in loaded.requests if t is not None), None)
        for when, before, message in loaded.requests:
            if opts.speed > 0 and when is not None and first is not None:
                due = start + (when - first) / opts.speed
                while time.monotonic() < due:
                    await take(due - time.monotonic())
            # never ahead of the answers the log has before this message (the client saw
            # them before it sent it): a bounded wait
            quiet_until = time.monotonic() + opts.wait
            while len(got) < before and time.monotonic() < quiet_until:
                if await take(quiet_until - time.monotonic()):
                    quiet_until = time.monotonic() + opts.wait
            fields = [(t, v) for t, v in message.fields if t not in NOT_RESENT]
            await ini.send(message.msg_type, fields)
        quiet_until = time.monotonic() + opts.wait
        while len(got) < len(loaded.answers) and time.monotonic() < quiet_until:
            if await take(quiet_until - time.monotonic()):
                quiet_until = time.monotonic() + opts.wait
        while await take(0.2):  # anything still on its way
            pass
        await ini.logout(timeout=5.0)
    except InitiatorClosed as exc:
        err.write(f"fixgw replay: the session ended: {exc.reason}"
                  f"{': ' + exc.logout_text if exc.logout_text else ''}\n")
        return EXIT_USAGE
    finally:
        await ini.close()
    comparison = Comparison(loaded.begin, appl_ver)
    differences = comparison.run(loaded.answers, got)
    out.write(f"fixgw replay: sent {len(loaded.requests)} messages to {opts.host}:{opts.port} "
              f"as {sid.sender_comp_id} ({loaded.begin}); {len(got)} answers, the log has "
              f"{len(loaded.answers)}; {comparison.compared} compared\n")
    if not differences:
        out.write("no differences\n")
        return EXIT_CLEAN
    out.write(f"differences: {len(differences)}\n")
    for d in differences:
        out.write(f"  {d.text}{f'  ({d.where})' if d.where else ''}\n")
    return EXIT_DIFFERENCES

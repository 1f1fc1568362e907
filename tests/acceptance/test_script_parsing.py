"""Unit tests of the acceptance-script parser, comparator and player (no fixgw server needed).

The player is exercised end to end over loopback against a small fake acceptor defined here,
which plays canned responses.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .player import FixFramer, FramingError, Player, ScriptFailure
from .script import (
    SOH,
    Comparator,
    Mode,
    Script,
    ScriptSyntaxError,
    StepKind,
    fixify,
    load_patterns,
    load_script,
    parse_script,
    render,
    split_fields,
    substitute_times,
)

pytestmark = pytest.mark.timeout(60)

FIELDS_FMT = Path(__file__).resolve().parents[2].parent / "shared/fix-acceptance/fields.fmt"
# Same content as the shared fields.fmt, so that these tests run without it.
PATTERNS_TEXT = """10=\\d{3}
42=\\d{8}-\\d{2}:\\d{2}:\\d{2}
52=\\d{8}-\\d{2}:\\d{2}:\\d{2}|\\d{8}-\\d{2}:\\d{2}:\\d{2}[.]\\d{3}
60=\\d{8}-\\d{2}:\\d{2}:\\d{2}
122=\\d{8}-\\d{2}:\\d{2}:\\d{2}
"""


def b(text: str) -> bytes:
    """``"8=FIX.4.4|35=0|"`` -> bytes with SOH separators."""
    return text.replace("|", "\x01").encode()


def wire(text: str) -> bytes:
    """A complete message (9 and 10 computed) from ``|``-separated fields."""
    return fixify(b(text))


def parse(text: str) -> Script:
    return parse_script(b(text), "unit.def")


@pytest.fixture
def patterns(tmp_path: Path) -> dict[str, re.Pattern[str]]:
    path = tmp_path / "fields.fmt"
    path.write_text(PATTERNS_TEXT)
    return load_patterns(path)


@pytest.fixture
def strict(patterns: dict[str, re.Pattern[str]]) -> Comparator:
    return Comparator(patterns, Mode.STRICT)


@pytest.fixture
def lenient(patterns: dict[str, re.Pattern[str]]) -> Comparator:
    return Comparator(patterns, Mode.LENIENT)


# --------------------------------------------------------------------------- parsing


def test_parse_commands_and_connections() -> None:
    script = parse_script(
        b"# comment\r\n\r\niCONNECT\r\n"
        + b("I8=FIX.4.4|35=A|\r\n")
        + b("E8=FIX.4.4|35=A\r\n")  # no trailing SOH: normalised
        + b"i2,CONNECT\n"
        + b("I2,8=FIX.4.4|35=0|\n")
        + b("E2,8=FIX.4.4|35=0|\n")
        + b"e2,DISCONNECT\n  \niDISCONNECT\neDISCONNECT",
        "x.def",
    )
    got = [(s.kind, s.connection, s.line_no, s.template) for s in script.steps]
    assert got == [
        (StepKind.CONNECT, 1, 3, b""),
        (StepKind.SEND, 1, 4, b("8=FIX.4.4|35=A|")),
        (StepKind.EXPECT, 1, 5, b("8=FIX.4.4|35=A|")),
        (StepKind.CONNECT, 2, 6, b""),
        (StepKind.SEND, 2, 7, b("8=FIX.4.4|35=0|")),
        (StepKind.EXPECT, 2, 8, b("8=FIX.4.4|35=0|")),
        (StepKind.EXPECT_DISCONNECT, 2, 9, b""),
        (StepKind.DISCONNECT, 1, 11, b""),
        (StepKind.EXPECT_DISCONNECT, 1, 12, b""),
    ]


@pytest.mark.parametrize("line", ["iCONNECTED", "eCONNECT", "X8=FIX.4.4|", "I", "hello"])
def test_parse_rejects_unknown_lines(line: str) -> None:
    with pytest.raises(ScriptSyntaxError, match="unit.def:2"):
        parse("iCONNECT\n" + line + "\n")


def test_known_checksum_and_body_length() -> None:
    # The Logon example of the FIX Wikipedia article: 9=65, 10=062.
    assert fixify(
        b("8=FIX.4.2|35=A|49=SERVER|56=CLIENT|34=177|52=20090107-18:15:16|98=0|108=30|")
    ) == b(
        "8=FIX.4.2|9=65|35=A|49=SERVER|56=CLIENT|34=177|52=20090107-18:15:16|98=0|108=30|10=062|"
    )


def test_written_length_and_checksum_are_kept() -> None:
    garbled = b("8=FIX.4.4|9=52|35=0|34=2|4garbled9=TW|52=X|56=ISLD|10=0|")
    assert fixify(garbled) == garbled
    # 9 written, 10 computed over the message as written
    with_length = fixify(b("8=FIX.4.4|9=40|35=A|34=1|"))
    assert with_length.startswith(b("8=FIX.4.4|9=40|35=A|34=1|10="))
    assert with_length[-4:-1] == b"%03d" % (sum(b("8=FIX.4.4|9=40|35=A|34=1|")) % 256)
    # 10 written, 9 computed
    assert fixify(b("8=FIX.4.4|35=0|34=2|10=256|")) == b("8=FIX.4.4|9=10|35=0|34=2|10=256|")


def test_first_three_fields_out_of_order_sent_as_written() -> None:
    line = b("35=0|8=FIX.4.4|9=29|34=2|49=TW44|52=<TIME>|56=ISLD|10=121|")
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert render(line, now) == b(
        "35=0|8=FIX.4.4|9=29|34=2|49=TW44|52=20240102-03:04:05|56=ISLD|10=121|"
    )
    assert render(b("34=2|52=<TIME>|"), now) == b("34=2|52=20240102-03:04:05|")


def test_expected_body_length_uses_placeholders() -> None:
    # From the scripts: this expected Logon is written with 9=63.
    expected = render(
        b("8=FIX.4.4|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|"),
        datetime.now(UTC),
    )
    assert split_fields(expected)[1] == ("9", "63")
    assert split_fields(expected)[-1][0] == "10"


def test_time_substitution() -> None:
    now = datetime(2024, 2, 29, 23, 59, 55, tzinfo=UTC)
    assert substitute_times(b"52=<TIME>|a=<TIME+10>|b=<TIME-121>|<TIME>", now) == (
        b"52=20240229-23:59:55|a=20240301-00:00:05|b=20240229-23:57:54|20240229-23:59:55"
    )


def test_parsing_keeps_time_placeholders() -> None:
    (step,) = parse("I8=FIX.4.4|35=0|52=<TIME>|").steps
    assert b"<TIME>" in step.template


@pytest.mark.skipif(not FIELDS_FMT.is_file(), reason="shared acceptance scripts absent")
def test_all_shared_scripts_parse() -> None:
    scripts = sorted(FIELDS_FMT.parent.glob("server/*/*.def"))
    assert len(scripts) >= 150
    for path in scripts:
        script = load_script(path)
        assert script.steps, path
        assert script.steps[0].kind is StepKind.CONNECT, path
        for step in script.steps:
            if step.kind in (StepKind.SEND, StepKind.EXPECT):
                assert step.template.endswith(SOH)
                assert b"\r" not in step.template
    assert load_patterns(FIELDS_FMT).keys() == {"10", "42", "52", "60", "122"}


# --------------------------------------------------------------------------- comparison

LOGON_EXPECTED = (
    "8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|10=0|"
)
LOGON = "8=FIX.4.4|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=30|"


def test_strict_accepts_matching_message(strict: Comparator) -> None:
    assert strict.compare(b(LOGON_EXPECTED), wire(LOGON)) is None
    # 52 without milliseconds also matches its pattern (but changes 9, written as 63 here)
    no_ms = wire(LOGON.replace(".678", ""))
    assert strict.compare(b(LOGON_EXPECTED), no_ms) == "field #2: 9 should be '63' but was '59'"
    assert strict.compare(b(LOGON_EXPECTED.replace("9=63|", "9=59|")), no_ms) is None


def test_pattern_is_anchored_at_start_only(strict: Comparator) -> None:
    expected = b("8=FIX.4.4|35=D|122=00000000-00:00:00.000|")
    assert strict.compare(expected, b("8=FIX.4.4|35=D|122=20240102-03:04:05.123|")) is None
    reason = strict.compare(expected, b("8=FIX.4.4|35=D|122=x20240102-03:04:05|"))
    assert reason is not None and "122" in reason and "pattern" in reason
    assert strict.compare(b("8=FIX.4.4|10=0|"), b("8=FIX.4.4|10=12|")) is not None


@pytest.mark.parametrize(
    ("received", "reason"),
    [
        (LOGON.replace("108=30", "108=31"), "field #9: 108 should be '30' but was '31'"),
        (
            LOGON.replace("34=1|49=ISLD", "49=ISLD|34=1"),
            "field #4: expected tag 34 but found tag 49",
        ),
        (LOGON.replace("20240102-", "20240102"), "field #6: 52='2024010203:04:05.678' does not"),
        (LOGON.replace("52=20240102-03:04:05.678", "52=2024"), "field #6: 52='2024' does not"),
        (LOGON.replace("108=30|", "108=30|141=Y|"), "field #10: expected tag 10 but found tag 141"),
        (LOGON.replace("98=0|", ""), "field #8: expected tag 98 but found tag 108"),
        (LOGON.replace("8=FIX.4.4", "8=FIXT.1.1"), "field #1: 8 should be 'FIX.4.4' but was 'FIXT"),
    ],
)
def test_strict_rejects(strict: Comparator, received: str, reason: str) -> None:
    message = wire(received)
    # expect the received BodyLength so that the comparison goes past field #2
    expected = b(LOGON_EXPECTED.replace("9=63", "9=" + fields(message)["9"]))
    got = strict.compare(expected, message)
    assert got is not None and got.startswith(reason), got


def test_strict_field_count(strict: Comparator) -> None:
    message = wire(LOGON)
    got = strict.compare(b(LOGON_EXPECTED), message + b("58=x|"))
    assert got == "received 11 fields, expected 10: extra 58=x"
    got = strict.compare(b(LOGON_EXPECTED), message[: message.index(b"\x0110=") + 1])
    assert got == "received 9 fields, expected 10: missing 10=0"


def test_strict_compares_body_length(strict: Comparator) -> None:
    expected = b(LOGON_EXPECTED.replace("9=63", "9=64"))
    assert strict.compare(expected, wire(LOGON)) == "field #2: 9 should be '64' but was '63'"


def test_lenient(lenient: Comparator) -> None:
    reordered = wire("8=FIX.4.4|35=A|49=ISLD|34=1|56=TW44|52=garbage|108=30|98=0|")
    assert lenient.compare(b(LOGON_EXPECTED.replace("9=63", "9=1")), reordered) is None
    reason = lenient.compare(b(LOGON_EXPECTED), wire(LOGON.replace("108=30", "108=31")))
    assert reason is not None and "missing 108=30" in reason and "unexpected 108=31" in reason
    assert lenient.compare(b(LOGON_EXPECTED), wire(LOGON + "58=x|")) is not None


# --------------------------------------------------------------------------- framing


def test_framer_split_and_joined() -> None:
    one, two = wire("8=FIX.4.4|35=0|34=2|"), wire("8=FIX.4.4|35=1|34=3|112=X|")
    framer = FixFramer()
    out: list[bytes] = []
    for byte in one + two:  # one byte at a time
        framer.feed(bytes([byte]))
        message = framer.next_message()
        if message is not None:
            out.append(message)
    assert out == [one, two]
    framer.feed(one + two + one[:5])  # several at once, plus the start of another
    assert [framer.next_message(), framer.next_message(), framer.next_message()] == [one, two, None]
    assert framer.pending == one[:5]


@pytest.mark.parametrize(
    "data",
    [
        b("9=5|8=FIX.4.4|"),
        b("8=FIX.4.4|35=0|"),
        wire("8=FIX.4.4|35=0|")[:-4] + b"000" + SOH,
        b("8=FIX.4.4|9=3|35=0|34=2|10=000|"),
    ],
)
def test_framer_errors(data: bytes) -> None:
    framer = FixFramer()
    framer.feed(data)
    with pytest.raises(FramingError):
        framer.next_message()


# --------------------------------------------------------------------------- the fake acceptor


class FakeSession:
    def __init__(self, sock: socket.socket, index: int, received: list[tuple[int, bytes]]) -> None:
        self.sock = sock
        self.index = index
        self._received = received
        self._framer = FixFramer()
        sock.settimeout(10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(self) -> bytes:
        while (message := self._framer.next_message()) is None:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("client closed")
            self._framer.feed(data)
        self._received.append((self.index, message))
        return message

    def send(self, *chunks: bytes) -> None:
        """Send in several writes, pausing between them so that the client reads them apart."""
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.05)
            self.sock.sendall(chunk)

    def wait_client_close(self) -> None:
        while self.sock.recv(4096):
            pass


Behaviour = Callable[[FakeSession], None]


class FakeAcceptor:
    """Accepts connections on loopback; runs ``behaviour`` for each in a thread."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[tuple[int, bytes]] = []
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        index = 0
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            index += 1
            thread = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket, index: int) -> None:
        with sock:
            try:
                self.behaviour(FakeSession(sock, index, self.received))
            except EOFError:
                pass
            except BaseException as exc:
                self.errors.append(exc)

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes up accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def fake() -> Iterator[Callable[[Behaviour], FakeAcceptor]]:
    acceptors: list[FakeAcceptor] = []

    def make(behaviour: Behaviour) -> FakeAcceptor:
        acceptors.append(FakeAcceptor(behaviour))
        return acceptors[-1]

    yield make
    for acceptor in acceptors:
        acceptor.close()


def player(
    acceptor: FakeAcceptor,
    comparator: Comparator,
    expect_timeout: float = 5.0,
    disconnect_timeout: float = 5.0,
) -> Player:
    return Player(
        "127.0.0.1",
        acceptor.port,
        comparator,
        expect_timeout=expect_timeout,
        disconnect_timeout=disconnect_timeout,
    )


def fields(message: bytes) -> dict[str, str]:
    return dict(split_fields(message))


ISLD = "8=FIX.4.4|{}|49=ISLD|52=20240102-03:04:05.678|56=TW44|"

HAPPY = """# a conversation
iCONNECT
I8=FIX.4.4|35=A|34=1|49=TW44|52=<TIME>|56=ISLD|98=0|108=30|
E8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|10=0|

I8=FIX.4.4|35=1|34=2|49=TW44|52=<TIME>|56=ISLD|112=<TIME+10>|
E8=FIX.4.4|35=0|34=2|49=ISLD|52=00000000-00:00:00.000|56=TW44|112=HELLO|
E8=FIX.4.4|35=1|34=3|49=ISLD|52=00000000-00:00:00.000|56=TW44|112=PING|
I8=FIX.4.4|35=5|34=3|49=TW44|52=<TIME-121>|56=ISLD|
E8=FIX.4.4|9=51|35=5|34=4|49=ISLD|52=00000000-00:00:00.000|56=TW44|10=0|
eDISCONNECT
"""


def happy_acceptor(session: FakeSession, now: list[datetime], logon_108: str = "30") -> None:
    session.read()  # Logon
    now[0] += timedelta(hours=1)  # what is sent from now on must carry the new time
    logon = wire(ISLD.format("35=A|34=1") + f"98=0|108={logon_108}|")
    session.send(logon[:7], logon[7:30], logon[30:])  # split across reads
    session.read()  # TestRequest
    heartbeat = wire(ISLD.format("35=0|34=2") + "112=HELLO|")
    test_request = wire(ISLD.format("35=1|34=3") + "112=PING|")
    session.send(heartbeat + test_request)  # two messages in one write
    session.read()  # Logout
    logout = wire(ISLD.format("35=5|34=4"))
    session.send(logout[:-3], logout[-3:])
    # return: the connection is closed


def test_player_end_to_end(fake: Callable[[Behaviour], FakeAcceptor], strict: Comparator) -> None:
    start = datetime(2024, 2, 29, 23, 59, 55, tzinfo=UTC)
    now = [start]
    acceptor = fake(lambda s: happy_acceptor(s, now))
    p = player(acceptor, strict)
    p.clock = lambda: now[0]
    p.play(parse(HAPPY))
    acceptor.close()
    logon, test_request, logout = (m for _, m in acceptor.received)
    # <TIME> evaluated when each message is sent, not when the script is parsed
    assert fields(logon)["52"] == "20240229-23:59:55"
    later = start + timedelta(hours=1)
    assert fields(test_request)["52"] == "20240301-00:59:55"
    assert fields(test_request)["112"] == (later + timedelta(seconds=10)).strftime(
        "%Y%m%d-%H:%M:%S"
    )
    assert fields(logout)["52"] == (later - timedelta(seconds=121)).strftime("%Y%m%d-%H:%M:%S")
    # 9 inserted after 8, 10 appended (the fake's framer checked the checksum)
    assert split_fields(logon)[:3] == [("8", "FIX.4.4"), ("9", "59"), ("35", "A")]


def test_player_real_clock(fake: Callable[[Behaviour], FakeAcceptor], strict: Comparator) -> None:
    acceptor = fake(lambda s: happy_acceptor(s, [datetime.now(UTC)]))
    player(acceptor, strict).play(parse(HAPPY))
    acceptor.close()
    sent = datetime.strptime(fields(acceptor.received[0][1])["52"], "%Y%m%d-%H:%M:%S")
    assert abs(sent.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=10)


@pytest.mark.parametrize("mode", list(Mode))
def test_player_mismatch_is_reported(
    fake: Callable[[Behaviour], FakeAcceptor], patterns: dict[str, re.Pattern[str]], mode: Mode
) -> None:
    acceptor = fake(lambda s: happy_acceptor(s, [datetime.now(UTC)], logon_108="31"))
    with pytest.raises(ScriptFailure) as info:
        player(acceptor, Comparator(patterns, mode)).play(parse(HAPPY))
    text = str(info.value)
    assert text.startswith(f"unit.def:4: connection 1: message mismatch ({mode.value}): ")
    assert "108" in text
    assert f"\n  expected: {LOGON_EXPECTED}\n" in text
    assert (
        f"\n  received: {LOGON.replace('|35', '|9=63|35').replace('108=30', '108=31')}10=" in text
    )


EXPECT_DISCONNECT = """iCONNECT
I8=FIX.4.4|35=A|34=1|49=TW44|52=<TIME>|56=ISLD|98=0|108=30|
eDISCONNECT
"""


@pytest.mark.parametrize(
    ("mode", "extra", "error"),
    [
        (Mode.STRICT, "", None),
        (Mode.STRICT, "35=5|34=1", "unit.def:3: connection 1: expected the acceptor to disconnect"),
        (Mode.LENIENT, "35=5|34=1", None),
        (
            Mode.LENIENT,
            "35=0|34=1",
            "unit.def:3: connection 1: expected the acceptor to disconnect",
        ),
    ],
)
def test_expected_disconnect(
    fake: Callable[[Behaviour], FakeAcceptor],
    patterns: dict[str, re.Pattern[str]],
    mode: Mode,
    extra: str,
    error: str | None,
) -> None:
    def behaviour(session: FakeSession) -> None:
        session.read()
        if extra:
            session.send(wire(ISLD.format(extra)))

    acceptor = fake(behaviour)
    p = player(acceptor, Comparator(patterns, mode))
    if error is None:
        p.play(parse(EXPECT_DISCONNECT))
    else:
        with pytest.raises(ScriptFailure, match=error) as info:
            p.play(parse(EXPECT_DISCONNECT))
        assert "received: 8=FIX.4.4|9=" in str(info.value)


def test_disconnect_timeout(fake: Callable[[Behaviour], FakeAcceptor], strict: Comparator) -> None:
    def behaviour(session: FakeSession) -> None:
        session.read()
        session.wait_client_close()

    acceptor = fake(behaviour)
    started = time.monotonic()
    with pytest.raises(ScriptFailure, match="did not close the connection within 0.5 s"):
        player(acceptor, strict, disconnect_timeout=0.5).play(parse(EXPECT_DISCONNECT))
    assert time.monotonic() - started < 5


def test_expect_timeout_and_close(
    fake: Callable[[Behaviour], FakeAcceptor], strict: Comparator
) -> None:
    def silent(session: FakeSession) -> None:
        session.read()
        session.wait_client_close()

    script = parse(HAPPY)
    with pytest.raises(
        ScriptFailure, match=r"unit.def:4: .*no message from the acceptor within 0.3 s"
    ):
        player(fake(silent), strict, expect_timeout=0.3).play(script)

    with pytest.raises(ScriptFailure, match="unit.def:4: .*the acceptor closed the connection"):
        player(fake(lambda s: None), strict).play(script)


def test_bad_checksum_from_acceptor(
    fake: Callable[[Behaviour], FakeAcceptor], strict: Comparator
) -> None:
    def behaviour(session: FakeSession) -> None:
        session.read()
        session.send(wire(ISLD.format("35=A|34=1") + "98=0|108=30|")[:-4] + b"999" + SOH)
        session.wait_client_close()

    with pytest.raises(ScriptFailure, match="unit.def:4: .*wrong CheckSum '999'"):
        player(fake(behaviour), strict).play(parse(HAPPY))


MULTI = """i1,CONNECT
I1,8=FIX.4.4|35=A|34=1|49=TW44|52=<TIME>|56=ISLD|98=0|108=30|
E1,8=FIX.4.4|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|
i2,CONNECT
I2,8=FIX.4.4|35=A|34=1|49=TW44|52=<TIME>|56=ISLD|98=0|108=30|
e2,DISCONNECT
I1,8=FIX.4.4|35=5|34=2|49=TW44|52=<TIME>|56=ISLD|
E1,8=FIX.4.4|35=5|34=2|49=ISLD|52=00000000-00:00:00.000|56=TW44|
i1,DISCONNECT
"""


def test_two_connections(fake: Callable[[Behaviour], FakeAcceptor], strict: Comparator) -> None:
    def behaviour(session: FakeSession) -> None:
        session.read()
        if session.index == 2:
            return  # duplicate logon: disconnect
        session.send(wire(ISLD.format("35=A|34=1") + "98=0|108=30|"))
        session.read()
        session.send(wire(ISLD.format("35=5|34=2")))
        session.wait_client_close()

    acceptor = fake(behaviour)
    player(acceptor, strict).play(parse(MULTI))
    acceptor.close()
    assert [(i, fields(m)["35"]) for i, m in acceptor.received] == [(1, "A"), (2, "A"), (1, "5")]

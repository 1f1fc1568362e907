"""FileLog: QuickFIX file names and line format, secret masking, background flush, reader."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.filelog import (
    DATA_SECRET_TAGS,
    LENGTH_TO_DATA,
    MASK,
    PLAIN_SECRET_TAGS,
    FileLog,
    filename_prefix,
    mask_secrets,
    read_events,
    read_messages,
)

T0 = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
LOGON = b"8=FIX.4.4\x019=75\x0135=A\x0134=1\x0149=TW44\x0152=20240501-12:30:45\x0156=ISLD\x01"
DATA_TAG_OF = {data: length for length, data in LENGTH_TO_DATA.items()}


def msg(*fields: bytes) -> bytes:
    return b"".join(f + b"\x01" for f in fields)


# --- file names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session_id", "prefix"),
    [
        ("FIX.4.4:ISLD->TW44", "FIX.4.4-ISLD-TW44"),
        ("FIXT.1.1:GW->CLIENT:EU", "FIXT.1.1-GW-CLIENT-EU"),
        ("FIX.4.4-ISLD-TW44", "FIX.4.4-ISLD-TW44"),
    ],
)
def test_filename_prefix_is_quickfix_s(session_id: str, prefix: str) -> None:
    assert filename_prefix(session_id) == prefix


@pytest.mark.parametrize("bad", ["", "..", "FIX.4.4:A/B->C", "a\\b", "FIX.4.4:../x->Y"])
def test_filename_prefix_refuses_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        filename_prefix(bad)


def test_writes_quickfix_file_names_and_lines(tmp_path: Path) -> None:
    paris = timezone(timedelta(hours=2))
    log = FileLog(tmp_path / "logs", "FIX.4.4-ISLD-TW44")
    log.incoming(LOGON, T0)
    log.outgoing(LOGON, T0.astimezone(paris))  # written in UTC
    log.event("Created session", T0)
    log.event("two\nlines", T0 + timedelta(microseconds=1))
    log.close()

    messages = tmp_path / "logs" / "FIX.4.4-ISLD-TW44.messages.current.log"
    events = tmp_path / "logs" / "FIX.4.4-ISLD-TW44.event.current.log"
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == sorted(
        [messages.name, events.name]
    )
    line = b"20240501-12:30:45.123456 : " + LOGON + b"\n"
    assert messages.read_bytes() == line * 2
    assert events.read_bytes() == (
        b"20240501-12:30:45.123456 : Created session\n20240501-12:30:45.123457 : two\\nlines\n"
    )


@pytest.mark.parametrize("when", [datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
                                  datetime(2025, 12, 31, 23, 59, 59, 0, tzinfo=UTC),
                                  datetime(999, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)])
def test_line_times_are_quickfixs_format_padded(tmp_path: Path, when: datetime) -> None:
    with FileLog(tmp_path, "FIX.4.4-A-B") as log:
        log.incoming(b"8=FIX.4.4\x01", when)
    stamp = f"{when.year:04d}{when.strftime('%m%d-%H:%M:%S.%f')}".encode()
    assert log.messages_path.read_bytes() == stamp + b" : 8=FIX.4.4\x01\n"


def test_appends_to_existing_files(tmp_path: Path) -> None:
    with FileLog(tmp_path, "FIX.4.4:ISLD->TW44") as log:
        log.incoming(b"8=FIX.4.4\x01first\x01", T0)
    with FileLog(tmp_path, "FIX.4.4:ISLD->TW44") as log:
        log.incoming(b"8=FIX.4.4\x01second\x01", T0)
    assert [m for _, m in read_messages(log.messages_path)] == [
        b"8=FIX.4.4\x01first\x01",
        b"8=FIX.4.4\x01second\x01",
    ]


def test_naive_times_and_writes_after_close_are_refused(tmp_path: Path) -> None:
    log = FileLog(tmp_path, "FIX.4.4-A-B")
    with pytest.raises(ValueError):
        log.incoming(b"x", datetime(2024, 1, 1))
    log.close()
    log.close()  # idempotent
    with pytest.raises(ValueError):
        log.outgoing(b"x", T0)


def test_background_flush_without_close(tmp_path: Path) -> None:
    log = FileLog(tmp_path, "FIX.4.4-A-B")
    try:
        log.incoming(LOGON, T0)
        log.event("hello", T0)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not (
            log.messages_path.stat().st_size and log.event_path.stat().st_size
        ):
            time.sleep(0.01)
        assert list(read_messages(log.messages_path)) == [(T0, LOGON)]
        assert list(read_events(log.event_path)) == [(T0, "hello")]
    finally:
        log.close()


def test_many_threads_many_logs(tmp_path: Path) -> None:
    logs = [FileLog(tmp_path, f"FIX.4.4-GW-C{n}") for n in range(5)]

    def write(n: int) -> None:
        for i in range(500):
            logs[n].outgoing(b"34=%d\x01" % i, T0 + timedelta(microseconds=i))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
        assert [m for _, m in read_messages(log.messages_path)] == [
            b"34=%d\x01" % i for i in range(500)
        ]


# --- masking ----------------------------------------------------------------------------------


def test_password_right_after_msgtype() -> None:
    logon = LOGON + msg(b"554=s3cr3t", b"98=0", b"108=30", b"10=123")
    masked = mask_secrets(logon)
    assert masked == LOGON + msg(b"554=********", b"98=0", b"108=30", b"10=123")


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (msg(b"35=A", b"554=pw", b"10=000"), msg(b"35=A", b"554=********", b"10=000")),
        (msg(b"554=pw", b"35=A"), msg(b"554=********", b"35=A")),  # very first field
        (b"35=A\x01554=pw", b"35=A\x01554=********"),  # last field, no trailing SOH
        (msg(b"925=new", b"554=old"), msg(b"925=********", b"554=********")),
        (msg(b"554=a=b=c"), msg(b"554=********")),  # '=' inside the value
        (msg(b"554="), msg(b"554=********")),  # empty value
        (
            msg(b"1554=keep", b"5540=keep", b"15540=keep"),
            msg(b"1554=keep", b"5540=keep", b"15540=keep"),
        ),
        (msg(b"58=554=not a tag", b"58=x\x02554=y"), msg(b"58=554=not a tag", b"58=x\x02554=y")),
        # QuickFIX reads a tag with atoi: 0925 is NewPassword (925)
        (msg(b"9250=keep", b"0925=pw"), msg(b"9250=keep", b"0925=********")),
        # however many zeros pad it (the masker read at most 9 digits: this one got through)
        (msg(b"35=A", b"0000000000554=pw"), msg(b"35=A", b"0000000000554=********")),
        (msg(b"0" * 5000 + b"554=pw"), msg(b"0" * 5000 + b"554=********")),
    ],
)
def test_plain_secret_edge_cases(raw: bytes, masked: bytes) -> None:
    assert mask_secrets(raw) == masked


def test_length_prefixed_secrets_are_skipped_by_length_and_masked() -> None:
    raw_data = b"sig\x01554=x\nmore"  # contains SOH, a fake tag and a newline
    raw = msg(b"35=A", b"95=%d" % len(raw_data), b"96=" + raw_data, b"98=0", b"10=000")
    assert mask_secrets(raw) == msg(b"35=A", b"95=8", b"96=********", b"98=0", b"10=000")

    sig = b"\x01\x02\x03=\x01"
    raw = msg(b"35=D", b"93=%d" % len(sig), b"89=" + sig, b"10=000")
    assert mask_secrets(raw) == msg(b"35=D", b"93=8", b"89=********", b"10=000")

    raw = msg(b"90=4", b"91=a\x01bc", b"35=D")  # SecureData in the header
    assert mask_secrets(raw) == msg(b"90=8", b"91=********", b"35=D")

    raw = msg(b"1401=5", b"1402=p\x01ss!", b"1403=2", b"1404=xy", b"554=pw")
    assert mask_secrets(raw) == msg(
        b"1401=8", b"1402=********", b"1403=8", b"1404=********", b"554=********"
    )


def test_non_secret_data_fields_are_skipped_not_masked() -> None:
    text = b"\x01554=looks like a password\x01"
    raw = msg(b"35=8", b"354=%d" % len(text), b"355=" + text, b"554=real")
    assert mask_secrets(raw) == msg(b"35=8", b"354=%d" % len(text), b"355=" + text, b"554=********")


def test_bad_lengths_fall_back_to_the_separator() -> None:
    # a length that overruns, one that does not end on a SOH, one that is not a number: the
    # value is masked up to the next SOH, and a numeric length is set to the mask's 8
    assert mask_secrets(msg(b"95=99", b"96=abc", b"35=A")) == msg(b"95=8", b"96=********", b"35=A")
    assert mask_secrets(msg(b"95=1", b"96=abc", b"35=A")) == msg(b"95=8", b"96=********", b"35=A")
    assert mask_secrets(msg(b"95=x", b"96=abc", b"35=A")) == msg(b"95=x", b"96=********", b"35=A")
    # a secure data field without its length field
    assert mask_secrets(msg(b"35=A", b"96=abc")) == msg(b"35=A", b"96=********")
    # the length applies only to the field right after it
    assert mask_secrets(msg(b"95=3", b"35=A", b"96=a\x01b")) == msg(
        b"95=3", b"35=A", b"96=********", b"b"
    )


def test_messages_without_secrets_are_returned_as_is() -> None:
    assert mask_secrets(LOGON) is LOGON
    assert mask_secrets(msg(b"189=1", b"35=D")) == msg(b"189=1", b"35=D")
    assert mask_secrets(b"") == b""


@given(st.binary(max_size=300))
def test_masking_never_raises(data: bytes) -> None:
    mask_secrets(data)


_OTHER_TAGS = st.integers(1, 99999).filter(
    lambda t: (
        t not in PLAIN_SECRET_TAGS | DATA_SECRET_TAGS
        and t not in LENGTH_TO_DATA
        and t not in DATA_TAG_OF
    )
)
_TEXT = st.binary(max_size=20).filter(lambda b: b"\x01" not in b)


@st.composite
def _fields(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    """A message as (tag, value) pairs: plain fields, plain secrets and length + data pairs
    whose values may hold SOH, '=' and fake secret tags."""
    fields: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["plain", "secret", "data"]))
        if kind == "plain":
            fields.append((draw(_OTHER_TAGS), draw(_TEXT)))
        elif kind == "secret":
            fields.append((draw(st.sampled_from(sorted(PLAIN_SECRET_TAGS))), draw(_TEXT)))
        else:
            length_tag = draw(st.sampled_from(sorted(LENGTH_TO_DATA)))
            value = draw(st.lists(st.sampled_from([b"\x01", b"=", b"554=pw", b"96=", b"a", b"\n"])))
            data = b"".join(value)
            fields += [(length_tag, b"%d" % len(data)), (LENGTH_TO_DATA[length_tag], data)]
    return fields


@settings(max_examples=300)
@given(_fields())
def test_masking_property(fields: list[tuple[int, bytes]]) -> None:
    """Secrets become MASK with their length fields set to 8; every other byte is unchanged."""
    raw = b"".join(b"%d=%s\x01" % (tag, value) for tag, value in fields)
    expected_fields = []
    for i, (tag, value) in enumerate(fields):
        if tag in PLAIN_SECRET_TAGS or tag in DATA_SECRET_TAGS:
            value = MASK
        elif tag in LENGTH_TO_DATA and fields[i + 1][0] in DATA_SECRET_TAGS:
            value = b"8"
        expected_fields.append((tag, value))
    expected = b"".join(b"%d=%s\x01" % (tag, value) for tag, value in expected_fields)
    assert mask_secrets(raw) == expected


def test_written_messages_are_masked(tmp_path: Path) -> None:
    logon = LOGON + msg(b"554=hunter2", b"925=hunter3", b"95=3", b"96=k\x01y", b"10=000")
    with FileLog(tmp_path, "FIX.4.4:ISLD->TW44") as log:
        log.incoming(logon, T0)
        log.outgoing(logon, T0)
    content = log.messages_path.read_bytes()
    assert b"hunter" not in content and b"k\x01y" not in content
    assert content.count(b"554=********\x01925=********\x0195=8\x0196=********\x01") == 2


# --- reader -----------------------------------------------------------------------------------


def test_reader_round_trip_with_newlines_inside_a_message(tmp_path: Path) -> None:
    xml = b"<a>\n  <b x='1'/>\n</a>\n"
    tricky = msg(b"35=n", b"212=%d" % len(xml), b"213=" + xml, b"10=000")
    records = [(T0, LOGON), (T0 + timedelta(seconds=1), tricky), (T0, b""), (T0, LOGON)]
    with FileLog(tmp_path, "FIX.4.4-A-B") as log:
        for when, data in records:
            log.incoming(data, when)
    assert list(read_messages(log.messages_path)) == records


def test_reader_joins_continuation_lines(tmp_path: Path) -> None:
    data = msg(b"35=n", b"95=3", b"96=a\nb", b"10=000")
    with FileLog(tmp_path, "FIX.4.4-A-B") as log:
        log.outgoing(data, T0)
        log.outgoing(LOGON, T0)
    assert list(read_messages(log.messages_path)) == [
        (T0, msg(b"35=n", b"95=8", b"96=********", b"10=000")),
        (T0, LOGON),
    ]
    raw = tmp_path / "raw.log"
    raw.write_bytes(b"20240501-12:30:45.123456 : 35=n\x0196=a\nb\x01\n20240501-12:30:46 : x\n")
    assert list(read_messages(raw)) == [
        (T0, b"35=n\x0196=a\nb\x01"),
        (T0.replace(second=46, microsecond=0), b"x"),
    ]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (b"20240501-12:30:45", T0.replace(microsecond=0)),
        (b"20240501-12:30:45.123", T0.replace(microsecond=123000)),
        (b"20240501-12:30:45.123456", T0),
        (b"20240501-12:30:45.123456789", T0),  # QuickFIX's nanoseconds, truncated
    ],
)
def test_reader_accepts_quickfix_precisions_and_crlf(
    tmp_path: Path, stamp: bytes, expected: datetime
) -> None:
    path = tmp_path / "q.log"
    path.write_bytes(stamp + b" : " + LOGON + b"\r\n" + stamp + b" : x\n")
    assert list(read_messages(path)) == [(expected, LOGON), (expected, b"x")]


def test_reader_refuses_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"hello\n")
    with pytest.raises(ValueError, match=re.escape("bad.log:1")):
        list(read_messages(path))
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert list(read_messages(empty)) == []

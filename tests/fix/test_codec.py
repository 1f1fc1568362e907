"""The FIX codec: framing, integrity checks, data fields, encoding, typed accessors, groups."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from gateway.fix.codec import (
    Frame,
    FrameParser,
    Garbled,
    GarbledMessage,
    ParserEvent,
    StreamError,
    checksum,
    encode,
    split_fields,
    verify_frame,
)
from gateway.fix.dictionary import standard
from gateway.fix.message import FieldMap, FieldValueError, Message
from gateway.fix.validation import (
    SessionReject,
    ValidationSettings,
    ordered_fields,
    parse_message,
    validate,
)

SOH = b"\x01"
DD = standard("FIX.4.4")
HEADER = [(34, b"2"), (49, b"CLIENT"), (52, b"20231114-22:13:20.123"), (56, b"GW")]


def fix(text: str) -> bytes:
    """``8=FIX.4.4|9=..`` written with ``|`` for SOH, BodyLength and CheckSum computed here."""
    body = text.replace("|", "\x01").encode()
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


def nos(cl_ord_id: str = "ORD-1", seq: int = 2) -> bytes:
    return fix(
        f"35=D|34={seq}|49=CLIENT|52=20231114-22:13:20.123|56=GW|11={cl_ord_id}|38=0.015|40=2|"
        "44=97123.45|54=1|55=BTC/USDT|59=1|60=20231114-22:13:20.120|"
    )


def frames_of(events: list[ParserEvent]) -> list[bytes]:
    assert all(isinstance(e, Frame) for e in events), events
    return [e.data for e in events if isinstance(e, Frame)]


def feed_all(chunks: list[bytes], max_size: int = 1 << 20) -> list[ParserEvent]:
    p = FrameParser(max_size)
    out: list[ParserEvent] = []
    for c in chunks:
        p.feed(c)
        out.extend(p.frames())
    return out


LOGON_WITH_RAW = fix(
    "35=A|34=1|49=CLIENT|52=20231114-22:13:20|56=GW|95=12|96=a\x01b=c\x0110=123|98=0|108=30|"
)
STREAM_MESSAGES = [LOGON_WITH_RAW, nos("A"), fix("35=0|34=3|49=CLIENT|52=20231114-22:13:21|56=GW|")]
STREAM = b"".join(STREAM_MESSAGES)


# --------------------------------------------------------------------------------------------
# framing


def test_every_split_point_gives_the_same_frames() -> None:
    for i in range(len(STREAM) + 1):
        assert frames_of(feed_all([STREAM[:i], STREAM[i:]])) == STREAM_MESSAGES, i


def test_byte_by_byte_gives_the_same_frames() -> None:
    assert frames_of(feed_all([STREAM[i : i + 1] for i in range(len(STREAM))])) == STREAM_MESSAGES


def test_many_messages_in_one_chunk() -> None:
    msgs = [nos(f"ORD-{i}", seq=i) for i in range(1, 2001)]
    p = FrameParser()
    p.feed(b"".join(msgs))
    assert frames_of(p.frames()) == msgs
    assert p.buffered == 0
    assert p.frames() == []


def test_partial_message_is_kept_until_complete() -> None:
    p = FrameParser()
    p.feed(STREAM[:-1])
    assert frames_of(p.frames()) == STREAM_MESSAGES[:2]
    assert p.buffered == len(STREAM_MESSAGES[2]) - 1
    p.feed(STREAM[-1:])
    assert frames_of(p.frames()) == STREAM_MESSAGES[2:]


def test_garbage_before_a_message_is_skipped() -> None:
    assert frames_of(feed_all([b"\x00junk 8=FI", STREAM[4:]])) == STREAM_MESSAGES
    assert frames_of(feed_all([b"noise\x01noise" + STREAM])) == STREAM_MESSAGES


def test_body_length_too_short_is_delimited_then_reported_and_the_stream_resyncs() -> None:
    good = nos("B")
    bad = good.replace(b"\x019=%d\x01" % (len(good.split(b"\x01", 2)[2]) - 7), b"\x019=20\x01", 1)
    assert bad != good
    events = feed_all([bad + nos("C", 3) + nos("D", 4)])
    frames = frames_of(events)
    assert frames == [bad, nos("C", 3), nos("D", 4)]
    problem = verify_frame(frames[0])
    assert problem is not None and problem.startswith("BodyLength (9) is 20")
    with pytest.raises(GarbledMessage):
        parse_message(frames[0], DD, DD)
    assert verify_frame(frames[1]) is None


def test_body_length_too_long_loses_at_most_the_next_message() -> None:
    good = nos("B")
    declared = len(good.split(b"\x01", 2)[2]) - 7
    bad = good.replace(b"\x019=%d\x01" % declared, b"\x019=%d\x01" % (declared + 20), 1)
    frames = frames_of(feed_all([bad + nos("C", 3) + nos("D", 4) + nos("E", 5)]))
    assert verify_frame(frames[0]) is not None
    assert frames[-2:] == [nos("D", 4), nos("E", 5)]
    assert all(verify_frame(f) is None for f in frames[1:])


def test_body_length_not_second_or_not_a_number_is_garbled_and_the_stream_resyncs() -> None:
    not_second = b"8=FIX.4.4\x0135=0\x019=5\x0110=000\x01"
    not_number = b"8=FIX.4.4\x019=x1\x0135=0\x0110=000\x01"
    events = feed_all([not_second + nos("C") + not_number + nos("D")])
    kinds = [type(e) for e in events]
    assert kinds == [Garbled, Frame, Garbled, Frame]
    assert [e.data for e in events if isinstance(e, Frame)] == [nos("C"), nos("D")]
    reasons = [e.reason for e in events if isinstance(e, Garbled)]
    assert reasons == ["BodyLength (9) is not the second field", "BodyLength (9) is not a number"]


def test_wrong_checksum_is_reported_by_verify_frame() -> None:
    good = nos()
    value = int(good[-4:-1])
    bad = good[:-4] + b"%03d\x01" % ((value + 1) % 256)
    assert frames_of(feed_all([bad])) == [bad]  # framing does not check the sum
    assert verify_frame(bad) == f"CheckSum (10) is {(value + 1) % 256}, computed {value}"
    with pytest.raises(GarbledMessage, match="CheckSum"):
        parse_message(bad, DD, DD)
    assert verify_frame(good[:-4] + b"1A3\x01") == "CheckSum (10) is not three digits"
    assert verify_frame(good) is None


def test_data_field_without_soh_is_read_by_length() -> None:
    msg = fix("35=A|34=1|49=CLIENT|52=20231114-22:13:20|56=GW|95=5|96=a=b=c|98=0|108=30|")
    assert (96, b"a=b=c") in split_fields(msg)
    assert parse_message(msg, DD, DD).get(96) == b"a=b=c"


def test_frame_parser_delimits_data_fields_containing_soh_and_checksum_marks() -> None:
    assert frames_of(feed_all([LOGON_WITH_RAW + nos()])) == [LOGON_WITH_RAW, nos()]


def test_raw_data_containing_soh_is_read_by_length() -> None:
    """RawData (96) may hold SOH: split_fields must read it by RawDataLength (95)."""
    raw = b"a\x01b=c\x0110=123"
    fields = split_fields(LOGON_WITH_RAW)
    assert (95, b"12") in fields and (96, raw) in fields
    assert [t for t, _ in fields] == [8, 9, 35, 34, 49, 52, 56, 95, 96, 98, 108, 10]
    msg = parse_message(LOGON_WITH_RAW, DD, DD)
    assert msg.get(96) == raw
    validate(msg, DD, DD, ValidationSettings.strict())


def test_signature_containing_soh_is_read_by_length() -> None:
    """Signature (89) in the trailer, length in SignatureLength (93)."""
    signed = fix("35=0|34=3|49=CLIENT|52=20231114-22:13:21|56=GW|93=4|89=\x01\x01=\x01|")
    assert frames_of(feed_all([signed])) == [signed]
    msg = parse_message(signed, DD, DD)
    assert msg.trailer.get(89) == b"\x01\x01=\x01"
    assert [t for t, _ in msg.trailer.fields] == [93, 89, 10]


def test_data_field_shorter_than_its_length_is_garbled() -> None:
    bad = fix("35=A|34=1|49=CLIENT|52=20231114-22:13:20|56=GW|95=20|96=abc|98=0|108=30|")
    with pytest.raises(GarbledMessage, match="data field 96"):
        split_fields(bad)


def test_maximum_size_is_a_stream_error() -> None:
    p = FrameParser(max_size=1000)
    p.feed(b"8=FIX.4.4\x019=5000\x0135=0\x01")
    events = p.frames()
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert "exceeds the maximum of 1000" in events[0].reason
    p.feed(nos())
    assert p.frames() == []  # a failed stream stays failed

    p = FrameParser(max_size=1000)
    p.feed(b"x" * 5000)
    assert p.frames() == []
    assert p.buffered <= 4  # noise without a BeginString is dropped, not accumulated

    big = fix("35=0|34=3|49=CLIENT|52=20231114-22:13:21|56=GW|58=" + "x" * 990 + "|")
    assert [type(e) for e in feed_all([big], max_size=1000)] == [StreamError]
    assert frames_of(feed_all([big], max_size=2000)) == [big]


def test_split_fields_rejects_bad_syntax() -> None:
    with pytest.raises(GarbledMessage, match="without '='"):
        split_fields(b"8=FIX.4.4\x0135\x01")
    with pytest.raises(GarbledMessage, match="not a number"):
        split_fields(b"8=FIX.4.4\x01x5=0\x01")
    with pytest.raises(GarbledMessage, match="end with SOH"):
        split_fields(b"8=FIX.4.4\x0135=0")


# --------------------------------------------------------------------------------------------
# encoding


def test_encode_writes_exact_body_length_and_checksum() -> None:
    fields = [(35, b"D"), *HEADER, (11, b"ORD-1"), (38, b"0.015"), (44, b"97123.45"),
              (54, b"1"), (55, b"BTC/USDT")]
    data = encode(b"FIX.4.4", fields)
    parts = data.split(SOH)
    assert parts[-1] == b""
    assert parts[:3] == [b"8=FIX.4.4", b"9=%d" % int(parts[1][2:]), b"35=D"]
    body_start = len(b"8=FIX.4.4\x01") + len(parts[1]) + 1
    trailer_at = data.rindex(b"10=")
    assert int(parts[1][2:]) == trailer_at - body_start
    assert data[body_start:trailer_at] == b"".join(b"%d=%s\x01" % f for f in fields)
    assert data[trailer_at:] == b"10=%03d\x01" % (sum(data[:trailer_at]) % 256)
    assert verify_frame(data) is None
    assert split_fields(data)[3:-1] == fields[1:]


def test_encode_pads_the_checksum_to_three_digits() -> None:
    seen: set[int] = set()
    for i in range(300):
        data = encode(b"FIX.4.4", [(35, b"0"), (58, b"x" * (i % 37) + b"%d" % i)])
        value = data[-4:-1]
        assert len(value) == 3 and value.isdigit()
        seen.add(int(value))
        assert verify_frame(data) is None
    assert min(seen) < 10  # some checksums needed the zero padding


@pytest.mark.parametrize("fill", [0xFF, 0x01, None])
def test_checksum_is_the_byte_sum_modulo_256_at_every_length(fill: int | None) -> None:
    """Summed 256 bytes at a time by Adler-32: the worst case (every byte 0xFF) and lengths
    around the runs' edges, as bytes, bytearray and memoryview, against sum()."""
    rng = random.Random(7)
    for n in [*range(0, 300), 511, 512, 513, 767, 768, 769, 4096, 70_001]:
        data = bytes([fill]) * n if fill is not None else rng.randbytes(n)
        expected = sum(data) % 256
        assert checksum(data) == expected, n
        assert checksum(bytearray(data)) == expected, n
        assert checksum(memoryview(data)) == expected, n


def test_encode_never_lets_a_value_carry_soh_out_of_its_field() -> None:
    """A Text (58) holding SOH (an operator's or a venue's words) stays one field: its SOH is
    written as a space; a data field's value (RawData 96, read by its length) keeps its own."""
    data = encode(b"FIX.4.4", [(35, b"8"), *HEADER, (11, b"a"),
                               (58, b"limit\x0158=spoofed\x0139=2"), (95, b"3"), (96, b"x\x01y")])
    assert verify_frame(data) is None
    fields = split_fields(data)
    assert (58, b"limit 58=spoofed 39=2") in fields
    assert (96, b"x\x01y") in fields
    assert [t for t, _ in fields].count(58) == 1 and 39 not in dict(fields)


# --------------------------------------------------------------------------------------------
# typed accessors


def test_typed_accessors() -> None:
    fm = FieldMap([
        (34, b"42"), (45, b"-7"), (44, b"97123.45"), (38, b"0.015"), (99, b".5"), (43, b"Y"),
        (97, b"N"), (54, b"1"), (18, b"A 6 G"), (58, b"caf\xc3\xa9"), (100, b"1e5"),
    ])
    assert fm.get_int(34) == 42 and fm.get_int(45) == -7
    assert fm.get_int(1, 9) == 9
    price = fm.get_decimal(44)
    assert isinstance(price, Decimal) and price == Decimal("97123.45")
    assert fm.get_decimal(38) == Decimal("0.015")
    assert fm.get_decimal(99) == Decimal("0.5")
    assert fm.get_bool(43) is True and fm.get_bool(97) is False
    assert fm.get_char(54) == "1"
    assert fm.get_multi(18) == ["A", "6", "G"] and fm.get_multi(1) == []
    assert fm.get_str(58) == "café"
    with pytest.raises(FieldValueError) as err:
        fm.get_decimal(100)  # no exponents in FIX floats
    assert err.value.tag == 100
    with pytest.raises(FieldValueError):
        fm.get_int(44)
    with pytest.raises(FieldValueError):
        fm.get_bool(54)
    with pytest.raises(FieldValueError):
        fm.get_char(58)
    with pytest.raises(FieldValueError):
        fm.require(1)


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        (b"20231114-22:13:20", 1_700_000_000_000_000_000),
        (b"20231114-22:13:20.123", 1_700_000_000_123_000_000),
        (b"20231114-22:13:20.123456", 1_700_000_000_123_456_000),
        (b"20231114-22:13:20.123456789", 1_700_000_000_123_456_789),
        (b"20240229-00:00:00.000000001", 1_709_164_800_000_000_001),
    ],
)
def test_get_time_ns(value: bytes, ns: int) -> None:
    assert FieldMap([(60, value)]).get_time_ns(60) == ns


@pytest.mark.parametrize(
    "value",
    [b"20231114-22:13", b"20231114 22:13:20", b"20230229-00:00:00", b"20231114-24:00:00",
     b"20231114-22:13:20.", b"20231114-22:13:20.1234567890", b"20231114-22:13:20.12a"],
)
def test_get_time_ns_rejects(value: bytes) -> None:
    with pytest.raises(FieldValueError):
        FieldMap([(60, value)]).get_time_ns(60)


# --------------------------------------------------------------------------------------------
# structure: header, body, trailer and nested repeating groups

NEW_ORDER_LIST = fix(
    "35=E|34=2|49=CLIENT|52=20231114-22:13:20.123|56=GW|66=LIST-1|68=2|394=3|73=2|"
    "11=A|67=1|453=2|448=P1|447=D|452=1|448=P2|447=D|452=3|55=BTC/USDT|54=1|38=0.5|40=2|44=97000|"
    "11=B|67=2|453=1|448=P3|447=D|452=1|55=ETH/USDT|54=2|38=1.25|40=1|"
)


def test_parse_message_resolves_nested_groups_with_the_dictionary() -> None:
    msg = parse_message(NEW_ORDER_LIST, DD, DD)
    assert msg.msg_type == b"E" and msg.seq_num == 2
    assert [t for t, _ in msg.header.fields] == [8, 9, 35, 34, 49, 52, 56]
    assert [t for t, _ in msg.trailer.fields] == [10]
    assert [t for t, _ in msg.fields] == [66, 68, 394, 73]
    orders = msg.group(73)
    assert [o.get(11) for o in orders] == [b"A", b"B"]
    assert [o.get(55) for o in orders] == [b"BTC/USDT", b"ETH/USDT"]
    assert orders[0].get_decimal(44) == Decimal("97000") and 44 not in orders[1]
    parties = [[p.get(448) for p in o.group(453)] for o in orders]
    assert parties == [[b"P1", b"P2"], [b"P3"]]
    assert orders[0].group(453)[1].get(452) == b"3"
    # group members do not leak into the body
    assert 11 not in msg and 448 not in msg and 448 not in orders[0]
    validate(msg, DD, DD, ValidationSettings.strict())


def test_group_count_mismatch_is_a_session_reject() -> None:
    wrong = fix(
        "35=E|34=2|49=CLIENT|52=20231114-22:13:20.123|56=GW|66=LIST-1|68=2|394=3|73=3|"
        "11=A|67=1|55=BTC/USDT|54=1|11=B|67=2|55=ETH/USDT|54=2|"
    )
    with pytest.raises(SessionReject) as err:
        validate(parse_message(wrong, DD, DD), DD, DD, ValidationSettings())
    assert (err.value.reason, err.value.tag) == (16, 73)


def test_body_field_after_the_trailer_is_out_of_order() -> None:
    msg = Message()
    data = encode(b"FIX.4.4", [(35, b"0"), *HEADER, (93, b"1"), (89, b"x"), (58, b"late")])
    msg = parse_message(data, DD, DD)
    assert msg.out_of_order_tag == 58
    with pytest.raises(SessionReject) as err:
        validate(msg, DD, DD, ValidationSettings())
    assert (err.value.reason, err.value.tag) == (14, 58)


def test_ordered_fields_puts_groups_after_their_count_in_dictionary_order() -> None:
    scrambled = fix(
        "35=E|34=2|49=CLIENT|52=20231114-22:13:20.123|56=GW|394=3|68=2|66=LIST-1|73=2|"
        "11=A|55=BTC/USDT|453=1|448=P1|452=1|447=D|67=1|54=1|"
        "11=B|54=2|67=2|55=ETH/USDT|"
    )
    msg = parse_message(scrambled, DD, DD)
    out = ordered_fields(msg, DD.messages[b"E"].layout)
    assert out == [
        (66, b"LIST-1"), (68, b"2"),
        (73, b"2"),
        (11, b"A"), (67, b"1"), (453, b"1"), (448, b"P1"), (447, b"D"), (452, b"1"),
        (55, b"BTC/USDT"), (54, b"1"),
        (11, b"B"), (67, b"2"), (55, b"ETH/USDT"), (54, b"2"),
        (394, b"3"),
    ]
    # without a layout: fields by tag number, groups not expanded
    assert [t for t, _ in ordered_fields(msg, None)] == [66, 68, 73, 394]


def test_numbers_past_every_limit_are_garbled_not_errors() -> None:
    """int() refuses text of more than 4,300 digits: a tag or a length value that long must be
    a garbled message, not a ValueError out of the parser (or the log's masker)."""
    from gateway.audit.filelog import mask_secrets
    from gateway.fix.codec import GarbledMessage, padded_tag, split_fields

    huge = b"9" * 5000
    for data in (b"8=FIX.4.4\x019=5\x0135=0\x01" + huge + b"=1\x0110=000\x01",
                 b"8=FIX.4.4\x019=5\x0135=0\x0195=" + huge + b"\x0196=x\x0110=000\x01"):
        try:
            split_fields(data)
        except GarbledMessage:
            pass
        padded_tag(data)
        padded_tag(data.replace(b"\x0135=", b"\x01035="))
        mask_secrets(data)
        mask_secrets(data + b"554=pw\x01")

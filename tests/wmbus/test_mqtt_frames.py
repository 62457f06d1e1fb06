"""MQTT gateways' messages as wmbusmeters' stdin lines (wmbus/mqtt_frames.py): the formats
gateways publish, messages that are not one frame, and one frame heard by two gateways."""

from __future__ import annotations

import json

import pytest

from custom_components.wmbusmeters.wmbus import listener
from custom_components.wmbusmeters.wmbus.listener import MAX_SOURCES
from custom_components.wmbusmeters.wmbus.mqtt_frames import (
    GATE_LOOKS,
    GATHER,
    MAX_PAYLOAD,
    MAX_REMEMBERED,
    MAX_TOPIC_KEY,
    RSSI_AGE,
    Duplicates,
    Frame,
    FrameGate,
    MqttConfig,
    PayloadFormat,
    meter_ids,
    parse_message,
    topic_problem,
)

#: An encrypted multical21 C1 frame (tests/data/simulation_encrypted.txt).
FRAME = "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24"
RTL = f"C1;1;1;2024-05-01 10:00:00.000;-71;;;0x{FRAME}"


def test_the_formats_gateways_publish() -> None:
    assert parse_message(f"  {FRAME.lower()}\n".encode(), "hex") == Frame(
        FRAME.lower().encode(), FRAME.encode()
    )
    message = {"data": f"0x{FRAME[:10]} {FRAME[10:]}", "rssi": -71, "gateway": "cellar"}
    frame = parse_message(json.dumps(message).encode(), "json")
    assert frame == Frame(FRAME.encode(), FRAME.encode(), -71, "cellar")
    assert parse_message(json.dumps({"telegram": FRAME}).encode(), "json", "telegram") is not None
    rtl = parse_message(RTL.encode(), "rtlwmbus")
    assert rtl is not None
    assert rtl.line == RTL.encode()
    assert rtl.key == FRAME.encode()


@pytest.mark.parametrize(
    ("payload", "payload_format"),
    [
        (FRAME[:-1], "hex"),  # odd: half a byte
        (FRAME + "\n" + FRAME, "hex"),  # two frames in one message: never joined
        ("2A44", "hex"),  # too short to be a frame
        ("ZZ" * 40, "hex"),
        ("F" * 2000, "hex"),  # longer than a frame can be
        (json.dumps({"rssi": -70}), "json"),  # no frame field
        (json.dumps({"data": 42}), "json"),
        (json.dumps([FRAME]), "json"),
        ('{"data": "' + FRAME, "json"),  # cut off
        (json.dumps({"data": FRAME + ";reboot"}), "json"),
        (FRAME, "rtlwmbus"),
        ("C1;1;1;x;-71;;;0x" + FRAME + ";extra", "rtlwmbus"),
    ],
)
def test_messages_that_are_not_one_frame(payload: str, payload_format: str) -> None:
    assert parse_message(payload.encode(), payload_format) is None  # type: ignore[arg-type]


def test_oversize_and_binary_messages() -> None:
    assert parse_message(b"{" + b" " * MAX_PAYLOAD + b"}", "json") is None
    assert parse_message(b"\xff\xfe" + FRAME.encode(), "json") is None
    assert parse_message(b"\x00" + FRAME.encode(), "hex") is None


def test_gateway_metadata_is_bounded() -> None:
    message = {"data": FRAME, "rssi": 9999, "gateway": "cellar\x1b[2J"}
    frame = parse_message(json.dumps(message).encode(), "json")
    assert frame is not None
    assert (frame.rssi, frame.gateway) == (None, None)


def test_one_frame_from_two_gateways_is_handed_on_once_with_the_best_rssi() -> None:
    duplicates = Duplicates(window=2.0)
    near = Frame(FRAME.encode(), FRAME.encode(), -60, "kitchen")
    far = Frame(FRAME.lower().encode(), FRAME.encode(), -90, "cellar")
    assert duplicates.first(far, now=100.0)
    assert not duplicates.first(near, now=100.05)
    assert duplicates.dropped == 1
    assert duplicates.best_rssi(far) == -60
    # The meter's next telegram (after the window) is handed on again.
    assert duplicates.first(far, now=103.0)


def test_remembering_is_bounded() -> None:
    duplicates = Duplicates(window=60.0, size=3)
    frames = [Frame(b"A" * 20 + str(i).encode() * 2, b"K%d" % i) for i in range(5)]
    assert all(duplicates.first(f, now=1.0) for f in frames)
    assert duplicates.first(frames[0], now=1.0)  # forgotten (the oldest), handed on again
    assert not duplicates.first(frames[4], now=1.0)


class Wmbusmeters:
    """What FrameGate hands on (wmbusmeters' stdin in the receiver)."""

    def __init__(self, *, full: bool = False) -> None:
        self.lines: list[bytes] = []
        self.full = full

    def feed(self, line: bytes) -> bool:
        if self.full:
            return False
        self.lines.append(line)
        return True


def gate(
    payload_format: PayloadFormat = "json", *, full: bool = False
) -> tuple[FrameGate, Wmbusmeters]:
    sink = Wmbusmeters(full=full)
    return FrameGate(MqttConfig("wmbus/+/raw", payload_format), sink.feed), sink


def json_frame(rssi: int | None = None, frame: str = FRAME) -> bytes:
    return json.dumps({"data": frame, **({"rssi": rssi} if rssi is not None else {})}).encode()


def test_a_frame_waits_for_other_gateways_and_goes_on_as_the_best_heard_it() -> None:
    """With an RSSI a frame waits GATHER; the same frame from another gateway meanwhile is
    counted as a duplicate and its better RSSI kept; the meter's telegram gets it once."""
    frames, sink = gate()
    assert frames.take("wmbus/cellar/raw", json_frame(-90), retained=False, now=10.0)
    assert not frames.take("wmbus/attic/raw", json_frame(-55), retained=False, now=10.1)
    assert not frames.take("wmbus/shed/raw", json_frame(-70), retained=False, now=10.2)
    assert frames.flush(10.2) == 10.0 + GATHER  # not yet
    assert sink.lines == []
    assert frames.flush(10.0 + GATHER) is None
    assert sink.lines == [FRAME.encode() + b"\n"]
    assert meter_ids(parse_message(json_frame(), "json")) == ("76348799",)  # type: ignore[arg-type]
    assert frames.rssi_for("76348799", now=11.0) == -55
    assert frames.rssi_for("76348799", now=11.0) is None  # once
    assert frames.topics["wmbus/cellar/raw"].accepted == 1
    assert frames.topics["wmbus/attic/raw"].duplicate == 1
    assert frames.totals()["duplicate"] == 2


def test_a_frame_without_rssi_goes_on_at_once() -> None:
    frames, sink = gate()
    assert not frames.take("wmbus/cellar/raw", json_frame(), retained=False, now=1.0)
    assert sink.lines == [FRAME.encode() + b"\n"]
    assert frames.rssi_for("76348799", now=1.0) is None


def test_an_rssi_belongs_to_its_own_frame() -> None:
    """A frame whose telegram never came (a wrong key) leaves its RSSI behind: the meter's
    next frame, without one and seconds later, does not get it."""
    frames, _sink = gate()
    frames.take("wmbus/a/raw", json_frame(-70), retained=False, now=1.0)
    frames.flush(2.0)
    other = FRAME[:24] + "FF" + FRAME[26:]
    frames.take("wmbus/a/raw", json_frame(None, other), retained=False, now=2.0 + RSSI_AGE + 1)
    assert frames.rssi_for("76348799", now=2.0 + RSSI_AGE + 1) is None


def test_a_long_transport_header_names_the_meter_too() -> None:
    """A frame relayed with a long transport header (CI 0x72): the RSSI is kept under both
    the sender's address and the meter's, as wmbusmeters may print either."""
    relayed = "1E44AE4C9956341268077249872710B42E0003780000040C150A000022"
    frame = parse_message(relayed.encode(), "hex")
    assert frame is not None
    assert meter_ids(frame) == ("12345699", "10278749")


class FrozenClock:
    """The rate limiter's clock, stopped: its buckets refill not at all during a test."""

    @staticmethod
    def monotonic() -> float:
        return 1000.0

    @staticmethod
    def time() -> float:
        return 1000.0


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener, "time", FrozenClock)


@pytest.mark.usefixtures("frozen")
def test_a_copy_over_its_topics_rate_does_not_hide_the_next() -> None:
    """Gateway A is past its rate: its copy is dropped for that, and gateway B's copy of the
    same frame is handed on, not dropped as a duplicate of a frame that never went on."""
    frames, sink = gate()
    busy = frames.stats("wmbus/a/raw")
    while busy.admit():
        pass
    frames.take("wmbus/a/raw", json_frame(), retained=False, now=1.0)
    frames.take("wmbus/b/raw", json_frame(), retained=False, now=1.0)
    assert busy.rate_limited == 1
    assert sink.lines == [FRAME.encode() + b"\n"]


def test_a_deeply_nested_payload_is_malformed() -> None:
    assert parse_message(b"[" * 2000 + b"]" * 2000, "json") is None
    assert parse_message(b'{"data":' + b"[" * 1000 + b"]" * 1000 + b"}", "json") is None


def test_rtl_wmbus_lines_carry_their_own_rssi() -> None:
    """rtl_wmbus lines go on as they came (wmbusmeters reads their RSSI): the best one."""
    frames, sink = gate("rtlwmbus")
    weak = f"C1;1;1;2024-05-01 10:00:00.000;-88;;;0x{FRAME}".encode()
    strong = f"C1;1;1;2024-05-01 10:00:00.010;-61;;;0x{FRAME}".encode()
    assert frames.take("wmbus/a/raw", weak, retained=False, now=1.0)
    assert not frames.take("wmbus/b/raw", strong, retained=False, now=1.01)
    frames.flush(2.0)
    assert sink.lines == [strong + b"\n"]
    assert frames.rssi_for("76348799", now=2.0) is None  # (wmbusmeters has it from the line)


def test_what_is_dropped_is_counted() -> None:
    frames, sink = gate("hex", full=True)
    frames.take("t", FRAME.encode(), retained=True, now=1.0)
    frames.take("t", b"F" * (MAX_PAYLOAD + 1), retained=False, now=1.0)
    frames.take("t", b"junk", retained=False, now=1.0)
    frames.take("t", FRAME.encode(), retained=False, now=1.0)  # wmbusmeters' pipe is full
    stats = frames.topics["t"]
    assert (stats.retained, stats.too_long, stats.malformed, stats.undelivered) == (1, 1, 1, 1)
    assert stats.accepted == 0
    assert sink.lines == []


def test_topics_and_pending_frames_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wildcard over many topics: the first MAX_SOURCES are counted one by one, the rest
    together; a flood of distinct frames never holds more than MAX_REMEMBERED (the rates
    lifted: they would stop it sooner)."""
    frames, sink = gate()
    for n in range(MAX_SOURCES + 50):
        frames.take(f"wmbus/{n}/raw/{'x' * 1000}", b"x", retained=False, now=1.0)
    assert len(frames.topics) == MAX_SOURCES + 1
    assert frames.topics["other"].malformed == 50
    assert max(len(topic) for topic in frames.topics) <= MAX_TOPIC_KEY
    monkeypatch.setattr(listener, "RATE", float("inf"))
    monkeypatch.setattr(listener, "BURST", float("inf"))
    frames, sink = gate()
    for n in range(MAX_REMEMBERED + 10):
        other = FRAME[:20] + f"{n:06X}" + FRAME[26:]
        frames.take(f"wmbus/{n % 40}/raw", json_frame(-70, other), retained=False, now=1.0)
    assert len(frames._held) <= MAX_REMEMBERED
    assert len(sink.lines) == 10  # the oldest went on early, not lost


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        ("wmbus/raw", None),
        ("wmbus/+/raw", None),
        ("wmbus/#", None),
        ("#", None),
        ("wmbus/#/raw", "invalid_topic"),
        ("wmbus/ab+/raw", "invalid_topic"),
        ("wmbus/raw#", "invalid_topic"),
        ("", "invalid_topic"),
        ("$SYS/#", "invalid_topic"),
        ("wmbus/raw\nother", "invalid_topic"),
        ("w" * 300, "invalid_topic"),
    ],
)
def test_topic_filters(topic: str, problem: str | None) -> None:
    assert topic_problem(topic) == problem


@pytest.mark.usefixtures("frozen")
def test_a_wildcard_over_many_topics_has_one_budget() -> None:
    """Messages on ever new topics are looked at no faster than GATE_LOOKS topics' may be:
    past the gate's budget they are counted unread; one noisy topic uses up only its own."""
    frames, _sink = gate()
    per_topic = int(listener.BURST * listener.PARSE_FACTOR)
    for _ in range(per_topic + 10):
        frames.take("wmbus/noisy/raw", b"x", retained=False, now=1.0)
    assert frames.topics["wmbus/noisy/raw"].rate_limited == 10
    frames.take("wmbus/quiet/raw", json_frame(), retained=False, now=1.0)
    assert frames.topics["wmbus/quiet/raw"].accepted == 1
    many = 20 * per_topic  # 20 more topics, each within its own budget
    for n in range(many):
        frames.take(f"wmbus/{n % 20}/raw", b"x", retained=False, now=1.0)
    totals = frames.totals()
    looked = per_topic * GATE_LOOKS  # the gate's budget: the noisy, the quiet, the rest
    assert totals["malformed"] == looked - 1  # (the quiet topic's frame was accepted)
    assert totals["rate_limited"] == 10 + many - (looked - per_topic - 1)


def test_each_telegram_gets_its_own_frames_rssi() -> None:
    """Two frames of one meter handed on together (distinct, each with an RSSI): its two
    telegrams get theirs in turn."""
    frames, _sink = gate()
    frames.take("wmbus/a/raw", json_frame(-80), retained=False, now=1.0)
    frames.take(
        "wmbus/a/raw", json_frame(-60, FRAME[:24] + "EE" + FRAME[26:]), retained=False, now=1.1
    )
    frames.flush(5.0)
    assert frames.rssi_for("76348799", now=5.0) == -80
    assert frames.rssi_for("76348799", now=5.0) == -60
    assert frames.rssi_for("76348799", now=5.0) is None

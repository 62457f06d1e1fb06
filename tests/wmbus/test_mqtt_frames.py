"""MQTT gateways' messages as wmbusmeters' stdin lines (wmbus/mqtt_frames.py): the formats
gateways publish, messages that are not one frame, and one frame heard by two gateways."""

from __future__ import annotations

import json

import pytest

from custom_components.wmbusmeters.wmbus.mqtt_frames import (
    MAX_PAYLOAD,
    Duplicates,
    Frame,
    parse_message,
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

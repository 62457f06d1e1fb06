"""Nothing a user types reaches a shell, another meter's line, or an extra config line: the
values wmbusmeters' configuration is written from are checked first."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from custom_components.wmbusmeters.wmbus import (
    InvalidDeviceError,
    InvalidDriverError,
    InvalidKeyError,
    InvalidMeterIdError,
    MeterConfig,
    ReceiverConfig,
    WmbusConfigError,
)
from custom_components.wmbusmeters.wmbus.listener import valid_line

KEY = "0123456789ABCDEF" * 2
INJECTED = "\nshell=touch /tmp/x"


@pytest.mark.parametrize(
    ("make", "clean", "hostile", "error"),
    [
        (MeterConfig, "76348799", "76348799" + INJECTED, InvalidMeterIdError),
        (
            lambda v: MeterConfig("76348799", v),
            "multical21",
            "multical21" + INJECTED,
            InvalidDriverError,
        ),
        (lambda v: MeterConfig("76348799", "multical21", v), KEY, KEY + INJECTED, InvalidKeyError),
        (
            ReceiverConfig,
            "/dev/ttyUSB0",
            "/dev/ttyUSB0" + INJECTED,
            InvalidDeviceError,
        ),
        (ReceiverConfig, "/dev/ttyUSB0", "/dev/ttyUSB0:im871a", InvalidDeviceError),
        (ReceiverConfig, "auto", "auto; rm -rf /", InvalidDeviceError),
        (
            lambda v: ReceiverConfig("/dev/ttyUSB0", device_type=v),
            "im871a",
            "im871a" + INJECTED,
            InvalidDeviceError,
        ),
        (
            lambda v: ReceiverConfig("/dev/ttyUSB0", device_type=v),
            "cul",
            "cul:c1",
            InvalidDeviceError,
        ),
        (
            ReceiverConfig,
            "/dev/serial/by-id/usb-a",
            "/dev/serial/by-id/usb a",
            InvalidDeviceError,
        ),
    ],
)
def test_values_that_could_add_a_line_are_refused(
    make: Callable[[str], object], clean: str, hostile: str, error: type[Exception]
) -> None:
    """Every value written after `key=` is checked first: the same value without the hostile
    part is accepted, so it is that part that is refused."""
    make(clean)
    with pytest.raises(error):
        make(hostile)


def test_a_refused_key_is_not_echoed() -> None:
    """The error of a malformed key never carries the key (it is almost a secret)."""
    with pytest.raises(InvalidKeyError) as err:
        MeterConfig("76348799", "multical21", KEY[:-1] + "G")
    assert KEY[:16] not in str(err.value)
    assert KEY[16:-1] not in str(err.value)


@pytest.mark.parametrize(
    "make",
    [
        # Wired M-Bus values are written into a meter file and the device line: only numbers.
        lambda: MeterConfig(
            "12345678",
            "sensostar",
            poll_interval=60,
            primary_address="5\nshell=x",  # type: ignore[arg-type]
        ),
        lambda: MeterConfig("12345678", "sensostar", poll_interval="60s\nshell=x"),  # type: ignore[arg-type]
        lambda: MeterConfig("12345678", "sensostar", poll_interval=True),
        lambda: MeterConfig("12345678", "auto", poll_interval=60),
        lambda: ReceiverConfig("/dev/ttyUSB0", device_type="mbus", baud_rate="2400\nshell=x"),  # type: ignore[arg-type]
        lambda: ReceiverConfig("stdin", device_type="rtlwmbus:CMD(sh)"),
    ],
)
def test_wired_and_network_values_that_could_add_a_line_are_refused(
    make: Callable[[], object],
) -> None:
    """A tampered entry or subentry value never becomes part of wmbusmeters' configuration."""
    with pytest.raises(WmbusConfigError):
        make()


@pytest.mark.parametrize(
    "line",
    [
        b"C1;1;1;2026-11-25 16:31:15;92;98;76348799;0x2a44\rshell=x",
        b"C1;1;1;x;y;z;76348799;0x" + b"2a" * 20 + b";extra",
        b"2a442d2c" * 5 + b" \x00",
        b"C1;1;1;$(reboot);92;98;76348799;0x" + b"2a" * 20,
    ],
)
def test_network_lines_that_are_not_one_telegram_are_refused(line: bytes) -> None:
    """Only a whole line of the chosen format reaches wmbusmeters' stdin."""
    assert not valid_line(line, "rtlwmbus")
    assert not valid_line(line, "hex")

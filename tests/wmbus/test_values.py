"""Readings within the caller's limits (ValueLimits): none by default, each one on its own."""

from __future__ import annotations

import math
from typing import Any

import pytest

from custom_components.wmbusmeters.wmbus import NO_LIMITS, Message, Telegram, ValueLimits
from custom_components.wmbusmeters.wmbus.events import clean_readings, clean_value
from custom_components.wmbusmeters.wmbus.parse import parse_stdout

ODD = [math.nan, math.inf, -math.inf, 1e300, 10**300, "x" * 1000, True, None, [1, 2], {"a": 1}]


@pytest.mark.parametrize("value", ODD, ids=repr)
def test_no_limits_keep_every_value(value: Any) -> None:
    """Without limits nothing is refused: what wmbusmeters printed is passed on."""
    kept, refused = clean_value(value, NO_LIMITS)
    assert kept is value
    assert not refused


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (math.nan, True),
        (math.inf, True),
        (-math.inf, True),
        (1e300, True),
        (-(10**300), True),
        (10**15, False),
        (-1e15, False),
        (6.408, False),
        (True, False),  # a flag, not a number
        ("x" * 255, False),
        ("x" * 256, True),
        (None, False),
    ],
    ids=repr,
)
def test_each_limit(value: Any, refused: bool) -> None:
    """A number past max_number (NaN and infinities included) or text past max_text is None."""
    limits = ValueLimits(max_text=255, max_number=1e15)
    assert clean_value(value, limits) == ((None, True) if refused else (value, False))


def test_names_and_field_count() -> None:
    """A name too long or not printable, and the fields past max_fields, are left out and
    named (a long name cut)."""
    obj = {"id": "1", "a": 1, "b\x00": 2, "c" * 10: 3, "d": 4, "e": 5}
    assert clean_readings(obj) == ({"a": 1, "b\x00": 2, "c" * 10: 3, "d": 4, "e": 5}, ())
    limits = ValueLimits(max_name=4, max_fields=2, printable_names=True)
    assert clean_readings(obj, limits) == ({"a": 1, "d": 4}, ("b\x00", "cccc", "e"))


def test_a_telegram_line_within_limits() -> None:
    """parse_stdout hands its limits on; a driver or media name is cut to max_name."""
    line = (
        b'{"_":"telegram","media":"cold water","meter":"multical21","id":"76348799",'
        b'"total_m3":NaN,"status":"OK"}'
    )
    free = parse_stdout(line)
    assert isinstance(free, Telegram)
    assert math.isnan(free.readings["total_m3"])
    assert free.driver == "multical21"
    limited = parse_stdout(line, ValueLimits(max_number=1e15, max_name=8))
    assert isinstance(limited, Telegram)
    assert limited.readings == {"total_m3": None, "status": "OK"}
    assert limited.refused == ("total_m3",)
    assert (limited.driver, limited.media) == ("multical", "cold wat")
    assert isinstance(parse_stdout(b"No such driver x", ValueLimits(max_text=1)), Message)

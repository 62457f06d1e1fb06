"""What the runner reports: telegrams, typed events from wmbusmeters' messages, its own state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import re
from typing import Any

#: JSON keys that describe the telegram rather than a reading (CONTRACT.md).
NON_READING_KEYS = frozenset({"_", "media", "meter", "driver", "name", "id", "device"})
#: Fields --listfields documents that the default JSON does not print (other timestamp forms).
UNPRINTED_FIELDS = frozenset({"timestamp_ut", "timestamp_lt", "timestamp_utc"})


def is_reading(field: str) -> bool:
    """Whether a JSON key or a documented field is a reading (an entity), not telegram data."""
    return field not in NON_READING_KEYS and field not in UNPRINTED_FIELDS


#: The wmbusmeters name of the catch-all meter (config.render_lines).
CATCH_ALL_NAME = "any"


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """What a reading may be. A value past a limit becomes None and its field is named in
    Telegram.refused; a field name past one is left out (and named, cut). The defaults limit
    nothing: what a program can store or show is the program's choice, not wmbusmeters'.
    """

    #: Longest text value, in characters.
    max_text: int | None = None
    #: Largest magnitude of a number. Once set, NaN and +-Infinity (which wmbusmeters may
    #: print and json reads) are refused too: they are within no bound.
    max_number: float | None = None
    #: Longest field name; also where a driver or media name is cut.
    max_name: int | None = None
    #: Most reading fields one telegram may carry; the rest are left out.
    max_fields: int | None = None
    #: Leave out fields whose name is not printable text.
    printable_names: bool = False


#: No limit at all: values as wmbusmeters printed them.
NO_LIMITS = ValueLimits()
_HEX = frozenset("0123456789abcdefABCDEF")


def clean_value(value: Any, limits: ValueLimits = NO_LIMITS) -> tuple[Any, bool]:
    """A reading within `limits`, and whether it was refused (then None)."""
    kind = type(value)
    if kind is float or kind is int:
        bound = limits.max_number
        # NaN compares false with everything: outside any bound.
        if bound is None or -bound <= value <= bound:
            return value, False
        return None, True
    if kind is str and limits.max_text is not None and len(value) > limits.max_text:
        return None, True
    return value, False


def clean_readings(
    obj: dict[str, Any], limits: ValueLimits = NO_LIMITS
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The reading fields of a JSON telegram within `limits`; and the fields whose value (or
    name) was refused."""
    readings: dict[str, Any] = {}
    refused: list[str] = []
    max_name = limits.max_name
    max_fields = limits.max_fields
    printable = limits.printable_names
    for key, value in obj.items():
        if key in NON_READING_KEYS:
            continue
        if (
            (max_name is not None and len(key) > max_name)
            or (printable and not key.isprintable())
            or (max_fields is not None and len(readings) >= max_fields)
        ):
            refused.append(key[:max_name])
            continue
        clean, bad = clean_value(value, limits)
        if bad:
            refused.append(key)
        readings[key] = clean
    return readings, tuple(refused)


@dataclass(frozen=True, slots=True)
class Telegram:
    """One decoded telegram, as wmbusmeters printed it."""

    meter_id: str
    driver: str
    media: str
    timestamp: str | None
    #: Every reading field (JSON key) with its value, `timestamp` and `rssi_dbm` included.
    readings: dict[str, Any]
    #: Heard through the catch-all meter (ReceiverConfig.listen_all), not a configured one.
    discovered: bool = False
    #: Fields whose values were outside the limits (clean_value): their readings are None.
    refused: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: dict[str, Any], limits: ValueLimits = NO_LIMITS) -> Telegram | None:
        """Build from a JSON object line; None when it is not a telegram."""
        meter_id = obj.get("id")
        if (
            obj.get("_") != "telegram"
            or not isinstance(meter_id, str)
            or len(meter_id) != 8
            or not all(c in _HEX for c in meter_id)
        ):
            return None
        readings, refused = clean_readings(obj, limits)
        name = obj.get("name")
        if isinstance(name, str) and _CONFIGURED_NAME.fullmatch(name):
            # A configured meter is named after its id (MeterConfig.safe_name): a wired one
            # polled at its primary address may report another id than the one it was set
            # up with, and its readings still belong to that meter.
            meter_id = name[1:]
        return cls(
            meter_id=meter_id.lower(),
            driver=str(obj.get("meter") or obj.get("driver") or "")[: limits.max_name],
            media=str(obj.get("media") or "")[: limits.max_name],
            timestamp=obj.get("timestamp") if isinstance(obj.get("timestamp"), str) else None,
            readings=readings,
            discovered=obj.get("name") == CATCH_ALL_NAME,
            refused=refused,
        )


_CONFIGURED_NAME = re.compile(r"m[0-9a-f]{8}")


class DecryptionProblem(StrEnum):
    """Why wmbusmeters could not read a meter's telegrams."""

    WRONG_KEY = "wrong_key"
    MISSING_KEY = "missing_key"
    NOT_ENCRYPTED = "not_encrypted"


@dataclass(frozen=True, slots=True)
class DecryptionFailed:
    """wmbusmeters ignores this meter for the rest of its run (2.0.0 says so once per run)."""

    meter_id: str
    problem: DecryptionProblem
    line: str


@dataclass(frozen=True, slots=True)
class DeviceNotFound:
    """The radio device is missing or not working."""

    line: str


@dataclass(frozen=True, slots=True)
class Message:
    """Any other line wmbusmeters printed: a warning, an error, a config complaint."""

    stream: str  # "stdout" or "stderr"
    level: str  # "info", "warning" or "error"
    line: str


type RunnerEvent = DecryptionFailed | DeviceNotFound | Message


class RunnerState(StrEnum):
    """Where the supervised process is."""

    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RunnerStatus:
    """A state change, with why and (while backing off) when the next start is due."""

    state: RunnerState
    reason: str | None = None
    #: Clock time of the next start, while backing off.
    retry_at: float | None = None
    returncode: int | None = None
    #: Unexpected ends in a row, with no stable run between (what a crash loop is).
    failures: int = 0

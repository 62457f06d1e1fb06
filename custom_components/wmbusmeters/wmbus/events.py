"""What the runner reports: telegrams, typed events from wmbusmeters' messages, its own state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import math
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

#: Bounds of a value a meter can really send. A wM-Bus register holds at most 12 BCD digits or
#: a 64-bit integer scaled to a unit; nothing real reaches 10^15, while Home Assistant, its
#: recorder and its JSON (64-bit integers only) fail on what lies beyond.
MAX_NUMBER = 1e15
#: Home Assistant's limit for a state.
MAX_TEXT = 255
#: A field name becomes part of a unique id and an entity id.
MAX_FIELD_NAME = 64
#: More fields than any driver has (the largest print under 100): the rest of a telegram that
#: claims more is garbage, not entities.
MAX_FIELDS = 250
_HEX = frozenset("0123456789abcdefABCDEF")


def clean_value(value: Any) -> tuple[Any, bool]:
    """A reading as Home Assistant can take it, and whether it was refused (then None).

    Non-finite or absurdly large numbers (NaN, Infinity, 1e300, a 300-digit integer) and text
    longer than a state can be become None: shown as unknown, never stored or restored.
    """
    kind = type(value)
    if kind is float:
        if math.isfinite(value) and -MAX_NUMBER <= value <= MAX_NUMBER:
            return value, False
        return None, True
    if kind is int:
        if -MAX_NUMBER <= value <= MAX_NUMBER:
            return value, False
        return None, True
    if kind is str and len(value) > MAX_TEXT:
        return None, True
    return value, False


def clean_readings(obj: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The reading fields of a JSON telegram, cleaned; and the fields whose value (or name) was
    refused."""
    readings: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in obj.items():
        if key in NON_READING_KEYS:
            continue
        if len(key) > MAX_FIELD_NAME or not key.isprintable() or len(readings) >= MAX_FIELDS:
            refused.append(key[:MAX_FIELD_NAME])
            continue
        clean, bad = clean_value(value)
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
    #: Fields whose values Home Assistant could not take (clean_value), shown as unknown.
    refused: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Telegram | None:
        """Build from a JSON object line; None when it is not a telegram."""
        meter_id = obj.get("id")
        if (
            obj.get("_") != "telegram"
            or not isinstance(meter_id, str)
            or len(meter_id) != 8
            or not all(c in _HEX for c in meter_id)
        ):
            return None
        readings, refused = clean_readings(obj)
        name = obj.get("name")
        if isinstance(name, str) and _CONFIGURED_NAME.fullmatch(name):
            # A configured meter is named after its id (MeterConfig.safe_name): a wired one
            # polled at its primary address may report another id than the one it was set
            # up with, and its readings still belong to that meter.
            meter_id = name[1:]
        return cls(
            meter_id=meter_id.lower(),
            driver=str(obj.get("meter") or obj.get("driver") or "")[:MAX_FIELD_NAME],
            media=str(obj.get("media") or "")[:MAX_FIELD_NAME],
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

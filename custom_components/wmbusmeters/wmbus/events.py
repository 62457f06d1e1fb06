"""What the runner reports: telegrams, typed events from wmbusmeters' messages, its own state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
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

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Telegram | None:
        """Build from a JSON object line; None when it is not a telegram."""
        meter_id = obj.get("id")
        if obj.get("_") != "telegram" or not isinstance(meter_id, str):
            return None
        return cls(
            meter_id=meter_id.lower(),
            driver=str(obj.get("meter") or obj.get("driver") or ""),
            media=str(obj.get("media") or ""),
            timestamp=obj.get("timestamp") if isinstance(obj.get("timestamp"), str) else None,
            readings={k: v for k, v in obj.items() if k not in NON_READING_KEYS},
            discovered=obj.get("name") == CATCH_ALL_NAME,
        )


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

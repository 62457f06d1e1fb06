"""Turn wmbusmeters 2.0.0's output lines into telegrams and typed events."""

from __future__ import annotations

import json
import re
from typing import Any

from .events import (
    NO_LIMITS,
    DecryptionFailed,
    DecryptionProblem,
    DeviceNotFound,
    Message,
    RunnerEvent,
    Telegram,
    ValueLimits,
)

_ID = r"([0-9A-Fa-f]{8})"
_DECRYPTION_PATTERNS = (
    # "decrypted content failed check, did you use the correct decryption key? ..." and
    # "decrypted payload crc failed check, did you use the correct decryption key? ..."
    (
        re.compile(
            r"did you use the correct decryption key\?.*?ignoring telegrams from id: " + _ID
        ),
        DecryptionProblem.WRONG_KEY,
    ),
    (
        re.compile(r"no key to decrypt payload!.*?ignoring telegrams from id: " + _ID),
        DecryptionProblem.MISSING_KEY,
    ),
    (
        re.compile(r"telegram should have been (?:fully )?encrypted, but was not! id: " + _ID),
        DecryptionProblem.NOT_ENCRYPTED,
    ),
)
_DEVICE_MISSING = ("[ALARM SpecifiedDeviceNotFound]", "No wmbus device detected")
_INFO_PREFIXES = (
    "Started config",
    "Started auto",
    "(meter) newly created meter",
    # Not errors: "Notice! Other wmbusmeters (pid ...) is running", and the listen-all mode.
    "Notice!",
    "No meters configured",
)
# 32 hex digits standing alone look like a key: never keep them.
_KEY_LIKE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32}(?![0-9A-Fa-f])")


def redact(line: str) -> str:
    """Hide anything shaped like an AES key."""
    return _KEY_LIKE.sub("<redacted>", line)


#: A wired meter that did not answer a poll: news of that meter (the caller may call it
#: unavailable after a few misses), not an error of the receiver.
_POLL_MISSED = re.compile(r"\(meter\) \S+ \S+ did not send a response!")


def parse_stderr(line: str) -> RunnerEvent:
    """Classify one stderr line (already decoded, without the newline)."""
    if _POLL_MISSED.fullmatch(line):
        return Message("stderr", "info", line)
    for pattern, problem in _DECRYPTION_PATTERNS:
        if match := pattern.search(line):
            return DecryptionFailed(match.group(1).lower(), problem, line)
    if line.startswith(_DEVICE_MISSING):
        return DeviceNotFound(line)
    if line.startswith(_INFO_PREFIXES):
        return Message("stderr", "info", line)
    return Message("stderr", "warning", line)


def parse_stdout(line: bytes, limits: ValueLimits = NO_LIMITS) -> Telegram | Message | None:
    """A JSON telegram (its readings within `limits`), or a plain-text message (config
    warnings, fatal start-up errors).

    Returns None for a JSON line that is not a telegram. Raises ValueError for a line that is
    neither valid UTF-8 nor printable text.
    """
    if line.startswith(b"{"):
        obj: Any = json.loads(line)  # ValueError (JSONDecodeError, UnicodeDecodeError) on garbage
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        return Telegram.from_json(obj, limits)
    text = line.decode("utf-8").strip()  # UnicodeDecodeError is a ValueError
    if not text:
        return None
    if not text.isprintable():
        raise ValueError("not text")
    level = (
        "error"
        if text.startswith(("No such driver", "Usage error", "Could not", "Not a valid"))
        else "info"
        if _POLL_MISSED.fullmatch(text)
        else "warning"
    )
    return Message("stdout", level, text)

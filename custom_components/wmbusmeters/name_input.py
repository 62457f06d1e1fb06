"""A meter's name as users type it: shown in Home Assistant only, never given to wmbusmeters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .const import CONF_NAME

#: Longer names make entity ids nobody can read (and a 5,000-character one was accepted).
MAX_NAME = 64


def read_name(user_input: Mapping[str, Any], errors: dict[str, str], default: str) -> str | None:
    """The name (the default when left empty), or None with an error: control characters
    (a pasted newline, a NUL) and names over MAX_NAME characters are refused."""
    name = str(user_input.get(CONF_NAME, "")).strip()
    if not name.isprintable():
        errors[CONF_NAME] = "invalid_name"
        return None
    if len(name) > MAX_NAME:
        errors[CONF_NAME] = "name_too_long"
        return None
    return name or default

"""The AES key field, shared by the meter, discovery and repair forms."""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.selector import TextSelector, TextSelectorConfig, TextSelectorType

from .compat import vol
from .const import CONF_KEY
from .wmbus import WmbusConfigError, normalize_key


def key_field() -> dict[Any, TextSelector]:
    """An optional, masked key field (empty: no key)."""
    return {
        vol.Optional(CONF_KEY, default=""): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
    }


def read_key(user_input: dict[str, Any], errors: dict[str, str]) -> str | None:
    """The key as stored (32 upper-case hex digits or ""), or None with a form error."""
    try:
        return normalize_key(user_input.get(CONF_KEY, ""))
    except WmbusConfigError:
        errors[CONF_KEY] = "invalid_key"
        return None

"""strings.json, English and Danish say the same things with the same placeholders."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

BASE = Path(__file__).parent.parent / "custom_components" / "wmbusmeters"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def load(name: str) -> dict[str, str]:
    return flatten(json.loads((BASE / name).read_text()))


@pytest.mark.parametrize("language", ["en", "da"])
def test_translation_complete(language: str) -> None:
    """Every string has a translation with the same placeholders; no reference left over."""
    strings = load("strings.json")
    translated = load(f"translations/{language}.json")
    assert translated.keys() == strings.keys()
    english = load("translations/en.json")
    for key, text in translated.items():
        assert "[%key:" not in text, key
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), key


def test_danish_is_danish() -> None:
    """Danish texts are translated, not copied (codes like C1 and product names aside)."""
    english = load("translations/en.json")
    danish = load("translations/da.json")
    same = [
        k
        for k in danish
        if danish[k] == english[k]
        and len(danish[k]) > 12
        and not k.startswith("selector.device_type.options.")  # dongle product names
    ]
    assert same == []


def test_every_error_and_translation_key_has_text() -> None:
    """Error keys the code can raise exist in strings.json."""
    strings = load("strings.json")
    from custom_components.wmbusmeters.wmbus import config, probe  # noqa: PLC0415

    for module in (config, probe):
        for obj in vars(module).values():
            key = getattr(obj, "translation_key", None)
            if (
                isinstance(obj, type)
                and isinstance(key, str)
                and key not in ("invalid_config", "invalid_link_mode")
            ):
                assert any(k.endswith(f"error.{key}") for k in strings), key

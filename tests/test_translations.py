"""strings.json, English and Danish say the same things with the same placeholders."""

from __future__ import annotations

import json
from pathlib import Path
import re
import shutil
import subprocess
import sys
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


#: The languages beside English (scripts/translations keeps them in step with strings.json).
LANGUAGES = ("da", "de", "sv", "nb", "nl", "pl", "fi")
#: Words that stay as they are in every language: names, codes, units.
NAMES = re.compile(
    r"wmbusmeters|Home Assistant|HACS|MQTT|w?M-Bus|RTL-SDR|rtl_wmbus|rtl_433|ESP32|ESPHome|"
    r"Kamstrup|KEM2?|AES|USB|TCP|UDP|IP|JSON|hex|RSSI|dBm|LoRa|[CTSN]1[a-f]?(?:-m)?|"
    r"IMST|Amber|Radiocrafts|\(Metis\)|\b[A-Za-z]*\d+[A-Za-z0-9]*\b|"
    r"[a-z_]+:[a-z]+|`[^`]*`|"
    r"\{\w+\}|[0-9.,:%/-]+|[A-Z0-9]{2,}",
)
#: Words that are the language's own as well as English (Home Assistant's translation in that
#: language uses them too: Status, Problem, Port): a label made of one of them may stay.
SAME_WORDS = {
    "da": {"Driver", "Port", "Problem", "Status", "Telegram"},
    "de": {"Name", "Port", "Problem", "Status", "Topic"},
    "sv": {"Problem", "Status", "Telegram"},
    "nb": {"Driver", "Port", "Problem", "Status", "Telegram"},
    "nl": {"Driver", "Meter", "Protocol", "Status", "Telegram", "Topic", "Volume"},
    "pl": {"Problem", "Status"},
    "fi": set(),
}
SCRIPT = Path(__file__).parent.parent / "scripts" / "translations"


def test_languages_are_the_scripts() -> None:
    """The test covers the languages the script keeps in step, and every file there is one."""
    listed = re.search(r"^LANGUAGES = \((.*?)\)", SCRIPT.read_text(), re.MULTILINE)
    assert listed is not None
    assert tuple(re.findall(r'"(\w+)"', listed.group(1))) == LANGUAGES
    files = {p.stem for p in (BASE / "translations").glob("*.json")}
    assert files == {"en", *LANGUAGES}


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
def test_translation_complete(language: str) -> None:
    """Every string has a translation with the same placeholders, as valid JSON; no reference
    left over, none empty."""
    strings = load("strings.json")
    translated = load(f"translations/{language}.json")
    assert translated.keys() == strings.keys()
    english = load("translations/en.json")
    for key, text in translated.items():
        assert "[%key:" not in text, key
        assert text.strip(), key
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), key
        for mark in ("**", "`", "\n"):  # (bold, code, line breaks: the markdown's shape)
            assert text.count(mark) == english[key].count(mark), (key, mark)


@pytest.mark.parametrize("language", LANGUAGES)
def test_translated_not_copied(language: str) -> None:
    """Texts are translated, not copied from English: one left as it is is made of names,
    codes and units only (wmbusmeters, MQTT, C1, `auto`, a dongle's maker and model, ...), or
    a word the language shares with English (SAME_WORDS)."""
    english = load("translations/en.json")
    translated = load(f"translations/{language}.json")
    same = [
        key
        for key, text in translated.items()
        if text == english[key]
        and text not in SAME_WORDS[language]
        and NAMES.sub("", text).strip(" .,;:()→-\n")
    ]
    assert same == []


def test_translations_in_step() -> None:
    """scripts/translations finds nothing to do: no language lacks a text or translates an
    English text that changed since."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_changed_english_text_is_found(tmp_path: Path) -> None:
    """Change one English text (and remove another) in a copy: the script names that key in
    every language, then drops the removed key from them, and the check still fails until
    each language is translated again and accepted."""
    root = tmp_path / "repo"
    shutil.copytree(BASE, root / "custom_components" / "wmbusmeters")
    shutil.copytree(SCRIPT.parent.parent / "i18n", root / "i18n")
    strings_path = root / "custom_components" / "wmbusmeters" / "strings.json"
    strings = json.loads(strings_path.read_text())
    strings["config"]["abort"]["already_configured"] = "Changed English."
    del strings["config"]["abort"]["reconfigure_successful"]
    strings_path.write_text(json.dumps(strings))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--root", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    check = run("--check")
    assert check.returncode == 1
    for language in LANGUAGES:
        assert f"{language}: config.abort.already_configured: the English changed" in check.stderr
        assert f"{language}: config.abort.reconfigure_successful: not in strings.json" in (
            check.stderr
        )
    assert run().returncode == 1  # writes en.json, drops the removed key
    german = json.loads((strings_path.parent / "translations" / "de.json").read_text())
    assert "reconfigure_successful" not in german["config"]["abort"]
    english = json.loads((strings_path.parent / "translations" / "en.json").read_text())
    assert english["config"]["abort"]["already_configured"] == "Changed English."
    assert run("--accept", *LANGUAGES).returncode == 0
    assert run("--check").returncode == 0


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

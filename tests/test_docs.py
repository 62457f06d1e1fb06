"""The README is what users read in HACS: its table of supported meters must be what the
bundled wmbusmeters (3.0.0) lists, and what it says of the integration must hold."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
import re
import shutil

import pytest

from custom_components.wmbusmeters.wmbus.config import DONGLE_TYPES

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _driver_table() -> object:
    spec = importlib.util.spec_from_file_location(
        "driver_table", REPO / "scripts" / "driver_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_supported_meters_table_is_what_the_binary_lists() -> None:
    """scripts/driver-table's output for wmbusmeters 3.0.0 is what README.md holds (run
    scripts/driver-table after a wmbusmeters upgrade)."""
    command = shutil.which("wmbusmeters-3.0.0")
    assert command, "wmbusmeters 3.0.0 is not on PATH: run the tests through scripts/test"
    table = _driver_table()
    block = await table.current_block(command)  # type: ignore[attr-defined]
    assert block in README
    assert "`kamwater`" in block  # a driver users have


async def test_alarms_table_is_what_the_integration_gives() -> None:
    """The README's alarm sensors per kind of meter are what the catalogue gives each driver
    of wmbusmeters 3.0.0 (run scripts/driver-table after a change of the rule or an upgrade)."""
    command = shutil.which("wmbusmeters-3.0.0")
    assert command, "wmbusmeters 3.0.0 is not on PATH: run the tests through scripts/test"
    block = await _driver_table().current_alarms_block(command)  # type: ignore[attr-defined]
    assert block in README
    assert "| Water |" in block
    assert "`kamwater`" in block


def test_history_table_is_what_the_rule_finds() -> None:
    """The README's meters that bring their past are what wmbus/history.py finds in the
    telegrams 3.0.0 printed for upstream's driver tests (run scripts/driver-table after a
    change of the rule)."""
    table = _driver_table()
    block = table.render_history()  # type: ignore[attr-defined]
    assert block in README
    drivers, most = table.history_counts()  # type: ignore[attr-defined]
    assert drivers > 100
    assert most["evo868"] >= 12
    assert "kamwater" in most
    assert "qcaloric" not in most  # a heat cost allocator's set-date value is a period's


def test_readme_names_every_dongle_type_and_action_field() -> None:
    """Every dongle type the form offers is in the supported-dongles table; the restart
    action's fields are documented; the Develop commands are on the first screen."""
    for device_type in DONGLE_TYPES:
        assert f"`{device_type}`" in README, device_type
    services = (REPO / "custom_components" / "wmbusmeters" / "services.yaml").read_text()
    for field in re.findall(r"^    (\w+):$", services, re.M):
        assert f"`{field}`" in README, field
    first_screen = "\n".join(README.splitlines()[:25])
    assert "scripts/develop" in first_screen
    assert "scripts/test" in first_screen


@pytest.mark.parametrize("path", ["hacs.json"])
def test_hacs_minimum_is_the_oldest_tested_home_assistant(path: str) -> None:
    """hacs.json lets HACS install only on Home Assistant versions the tests run on."""
    minimum = json.loads((REPO / path).read_text())["homeassistant"]
    pins = (REPO / "requirements" / "ha-2026.2.txt").read_text()
    tested = re.search(r"^homeassistant==(\S+)$", pins, re.M)
    assert tested is not None
    assert tuple(map(int, minimum.split("."))) <= tuple(map(int, tested.group(1).split(".")))
    assert minimum.startswith("2026.2")


def test_readme_install_names_the_repository_of_the_manifest() -> None:
    """The custom repository a user adds in HACS is the one the manifest documents."""
    manifest = json.loads(
        (REPO / "custom_components" / "wmbusmeters" / "manifest.json").read_text()
    )
    assert f"`{manifest['documentation']}`" in README

"""Diagnostics and the restart service action."""

from __future__ import annotations

from collections.abc import Callable
import json
import logging
from pathlib import Path
import re
import shutil

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.wmbusmeters.compat import find_device, get_config_entry
from custom_components.wmbusmeters.const import DOMAIN

from .common import meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed

RIGHT_KEY = "28F64A24988064A079AA2C807D6102AE"
#: A named receiver the action cannot restart: HA's own errors where it has them (2026.10).
if get_config_entry is not None:
    NOT_FOUND = {"service_config_entry_not_found"}
    WRONG_DOMAIN = {"service_config_entry_wrong_domain"}
    NOT_LOADED = {"service_config_entry_not_loaded"}
else:
    NOT_FOUND = WRONG_DOMAIN = {"unknown_receiver"}
    NOT_LOADED = {"receiver_not_loaded"}


async def test_no_key_anywhere(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    wmbusmeters: str,
    wmbus_version: str,
    encrypted: Path,
    caplog: pytest.LogCaptureFixture,
    run_until_played: RunUntilPlayed,
) -> None:
    """A configured key is in no diagnostics, no log line, no process argument."""
    caplog.set_level(logging.DEBUG)
    assert await async_setup_component(hass, "diagnostics", {})
    wrong = "0123456789ABCDEF0123456789ABCDEF"
    entry = receiver_entry(
        wmbusmeters,
        encrypted,
        [
            meter("Vand", "multical21", "76348799", RIGHT_KEY),
            meter("Other", "multical21", "44556677", wrong),
        ],
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    assert hass.states.get("sensor.vand_total").state == "6.408"
    runner = entry.runtime_data.supervisor.runner

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    device = find_device(dr.async_get(hass), (DOMAIN, "76348799"), entry.entry_id)
    assert device is not None
    device_diagnostics = await get_diagnostics_for_device(hass, hass_client, entry, device)
    text = json.dumps([diagnostics, device_diagnostics]) + caplog.text + " ".join(runner.argv)
    for key in (RIGHT_KEY, wrong):
        assert key not in text
        assert key.lower() not in text
    assert diagnostics["runner"]["argv"] == [wmbusmeters, f"--useconfig={runner.config_dir}"]
    assert diagnostics["runner"]["version"].split("-")[0] == wmbus_version
    assert "key=**REDACTED**" in diagnostics["wmbusmeters_config"]["wmbusmeters.d/m76348799"]
    assert device_diagnostics["meter"]["last_telegram"]["readings"]["total_m3"] == 6.408
    await hass.config_entries.async_unload(entry.entry_id)


async def test_restart_service(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, run_until_played: RunUntilPlayed
) -> None:
    """Restart one receiver or all; unknown, foreign or unloaded entries are refused."""
    sim = tmp_path / "simulation_quiet.txt"
    sim.write_text("")
    entry = receiver_entry(wmbusmeters, sim)
    await setup_receiver(hass, entry)
    await run_until_played(entry)  # an empty file: wmbusmeters ends, backoff before replay
    runner = entry.runtime_data.supervisor.runner
    before = runner.counters.restarts

    await hass.services.async_call(
        DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
    )
    assert runner.counters.restarts == before + 1
    await hass.services.async_call(DOMAIN, "restart", {}, blocking=True)
    assert runner.counters.restarts == before + 2

    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "restart", {"config_entry_id": "nope"}, blocking=True
        )
    assert err.value.translation_key in NOT_FOUND
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "restart", {"config_entry_id": other.entry_id}, blocking=True
        )
    assert err.value.translation_key in WRONG_DOMAIN
    await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert err.value.translation_key in NOT_LOADED
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "restart", {}, blocking=True)
    assert err.value.translation_key == "no_receiver"


async def test_restart_service_times_out(
    hass: HomeAssistant,
    wmbusmeters: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_until_played: RunUntilPlayed,
) -> None:
    """wmbusmeters does not come back (its command vanished): a translated error, not a hang."""
    command = tmp_path / "wmbusmeters"
    shutil.copy(wmbusmeters, command)
    sim = tmp_path / "simulation_quiet.txt"
    sim.write_text("")
    entry = receiver_entry(str(command), sim)
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    command.unlink()
    monkeypatch.setattr("custom_components.wmbusmeters.services.RESTART_TIMEOUT", 0.5)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "restart_failed"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_snapshot(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    snapshot: SnapshotAssertion,
    run_until_played: RunUntilPlayed,
) -> None:
    """The receiver's diagnostics, with the run-dependent parts made stable."""
    assert await async_setup_component(hass, "diagnostics", {})
    sim = simulation("c1_water_multical21")
    entry = receiver_entry(wmbusmeters, sim, [meter("Tap", "multical21", "76348799", "A" * 32)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    text = text.replace(str(sim.parent), "<tmp>").replace(entry.entry_id, "<entry>")
    text = text.replace(wmbusmeters, "<wmbusmeters>").replace(hass.config.config_dir, "<config>")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d]*(Z|\+00:00)", "<time>", text)
    assert json.loads(text) == snapshot
    await hass.config_entries.async_unload(entry.entry_id)

"""Upgrading wmbusmeters (2.0.0 -> 3.0.0) keeps what users built: devices, entities, history.

Both real binaries, on the same recorded telegrams. 3.0.0 merged multical21 into kamwater and
renamed fields (upstream's CHANGES; wmbus/upgrades.py keeps them as data).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
import logging
from pathlib import Path
import shutil

from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    get_last_statistics,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.wmbusmeters.compat import find_device
from custom_components.wmbusmeters.const import DOMAIN

from .common import meter, receiver_entry, setup_receiver
from .conftest import BINARIES, RepairFix, RunUntilPlayed

TAP = "76348799"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_db_url: str, enable_custom_integrations: None) -> None:
    """conftest's, after the recorder's database: it must be ready before `hass` is."""


def binary(version: str) -> str:
    path = shutil.which(BINARIES[version])
    assert path, f"{BINARIES[version]} is not on PATH: run the tests through scripts/test"
    return path


def entity_id(hass: HomeAssistant, field: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(Platform.SENSOR, DOMAIN, f"{TAP}_{field}")


async def switch_binary(
    hass: HomeAssistant, entry: MockConfigEntry, version: str, run_until_played: RunUntilPlayed
) -> None:
    """The same installation, its wmbusmeters upgraded (the add-on, a source build)."""
    await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(entry, data={**entry.data, "command": binary(version)})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await run_until_played(entry)


async def test_upgrade_to_3_keeps_device_entities_and_statistics(
    recorder_mock: object,
    hass: HomeAssistant,
    simulation: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    run_until_played: RunUntilPlayed,
) -> None:
    """A multical21 meter read by 2.0.0, then by 3.0.0: the subentry's driver follows
    (kamwater), the device and the total's entity and statistics stay, the renamed temperature
    keeps its entity id under the new field, and nothing is left "unavailable"."""
    caplog.set_level(logging.WARNING)
    entry = receiver_entry(
        binary("2.0.0"), simulation("c1_water_multical21"), [meter("Tap", "multical21", TAP)]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    total = entity_id(hass, "total_m3")
    temperature = entity_id(hass, "external_temperature_c")
    assert total == "sensor.tap_total"
    assert temperature == "sensor.tap_external_temperature"
    assert hass.states.get(total).state == "6.408"
    assert hass.states.get(temperature).state == "19"
    device = find_device(dr.async_get(hass), (DOMAIN, TAP), entry.entry_id)
    assert device is not None
    assert device.model == "multical21"

    # A month of the total's long-term statistics, as the recorder compiled them.
    start = dt_util.utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=30)
    metadata = StatisticMetaData(
        has_sum=True,
        mean_type=StatisticMeanType.NONE,
        name=None,
        source="recorder",
        statistic_id=total,
        unit_class="volume",
        unit_of_measurement="m³",
    )
    async_import_statistics(
        hass, metadata, [StatisticData(start=start, state=6.0, sum=0.0, last_reset=None)]
    )
    await async_wait_recording_done(hass)

    await switch_binary(hass, entry, "3.0.0", run_until_played)

    subentry = next(iter(entry.subentries.values()))
    assert subentry.data["driver"] == "kamwater"
    upgraded = find_device(dr.async_get(hass), (DOMAIN, TAP), entry.entry_id)
    assert upgraded is not None
    assert upgraded.id == device.id
    assert upgraded.model == "kamwater"
    receiver = find_device(dr.async_get(hass), (DOMAIN, entry.entry_id), entry.entry_id)
    assert receiver is not None
    assert receiver.sw_version == "3.0.0"
    # The same entity ids, with the readings 3.0.0 decodes.
    assert entity_id(hass, "total_m3") == total
    assert hass.states.get(total).state == "6.408"
    assert entity_id(hass, "min_external_temperature_last_month_c") == temperature
    assert entity_id(hass, "external_temperature_c") is None
    assert hass.states.get(temperature).state == "19"
    assert [
        s.entity_id
        for s in hass.states.async_all(Platform.SENSOR)
        if s.state == "unavailable" and s.entity_id.startswith("sensor.tap")
    ] == []
    stats = await get_instance(hass).async_add_executor_job(
        get_last_statistics, hass, 1, total, True, {"sum"}
    )
    assert stats[total][0]["sum"] == 0.0
    assert not ir.async_get(hass).issues
    assert [
        r.getMessage() for r in caplog.records if r.name.startswith(("custom", "homeassistant"))
    ] == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_driver_the_binary_lacks_gets_a_repair(
    hass: HomeAssistant,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
    repair_fix: RepairFix,
) -> None:
    """A driver 3.0.0 removed (wme5): read with auto meanwhile (the other meters keep working),
    a fixable repair offers upstream's replacement; picking a driver clears it."""
    entry = receiver_entry(
        binary("3.0.0"),
        simulation("c1_water_multical21"),
        [meter("Tap", "kamwater", TAP), meter("Old", "wme5", "44556677")],
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    issue_id = "unknown_driver_44556677"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {"name": "Old", "driver": "wme5"}
    # Both meters decode: wmbusmeters was not stopped by the unknown driver.
    assert hass.states.get("sensor.tap_total").state == "6.408"
    assert hass.states.get("sensor.old_total").state not in (None, "unavailable", "unknown")
    rendered = (
        entry.runtime_data.supervisor.runner.config_dir / "wmbusmeters.d" / "m44556677"
    ).read_text()
    assert "driver=auto" in rendered.splitlines()

    flow = await repair_fix.start(issue_id)
    assert flow["step_id"] == "pick_driver"
    options = [o["value"] for o in flow["data_schema"][0]["selector"]["select"]["options"]]
    assert "wme5" not in options
    assert "kamwater" in options
    result = await repair_fix.submit(flow["flow_id"], {"driver": "kamwater"})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    old = next(s for s in entry.subentries.values() if s.unique_id == "44556677")
    assert old.data["driver"] == "kamwater"
    await entry.runtime_data.supervisor.runner.wait_running()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_removed_field_is_reported_and_removed_on_request(
    hass: HomeAssistant,
    simulation: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    run_until_played: RunUntilPlayed,
    repair_fix: RepairFix,
) -> None:
    """3.0.0 dropped waterstarm's `current_status` (upstream: deprecated since 2022): after the
    upgrade its entity is listed in a fixable repair instead of keeping its last value
    silently; confirming removes that entity and no other."""
    woter = meter("Woter", "waterstarm", "20096221", "BEDB81B52C29B5C143388CBB0D15A051")
    entry = receiver_entry(
        binary("2.0.0"), simulation("t1_water_mixed", "simulation_t1.txt"), [woter]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    registry = er.async_get(hass)
    sensors = {
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.unique_id.startswith("20096221_")
    }
    assert "sensor.woter_current_status" in sensors, (
        entry.runtime_data.supervisor.runner.stderr_tail,
        entry.runtime_data.supervisor.runner.counters,
        entry.runtime_data.supervisor.runner.status,
    )
    assert not ir.async_get(hass).issues  # on 2.0.0 every field is documented or sent

    await switch_binary(hass, entry, "3.0.0", run_until_played)

    issue_id = "fields_removed_20096221"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_placeholders == {"name": "Woter"}
    assert "sensor.woter_current_status" in caplog.text
    flow = await repair_fix.start(issue_id)
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["entities"] == "- sensor.woter_current_status"
    assert flow["description_placeholders"]["version"] == "3.0.0"
    result = await repair_fix.submit(flow["flow_id"], {})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert registry.async_get("sensor.woter_current_status") is None
    assert hass.states.get("sensor.woter_current_status") is None
    remaining = {
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.unique_id.startswith("20096221_")
    }
    assert remaining == sensors - {"sensor.woter_current_status"}
    assert hass.states.get("sensor.woter_total").state == "0.106"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(entry.entry_id)

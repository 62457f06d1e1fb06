"""The add-on's entities taken over by an import (addon_import.async_take_over): the
meter's sensors keep their entity ids, and with them their history and long-term statistics,
which go on in the same series under the real recorder (its own compile, on a frozen clock).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest

from custom_components.wmbusmeters.const import DOMAIN

from .conftest import RunUntilPlayed
from .test_addon_import import KEY, read_addon
from .test_history import compile_until, hourly


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_db_url: str, enable_custom_integrations: None) -> None:
    """conftest's, after the recorder's database: it must be ready before `hass` is."""


@pytest.fixture
def enable_statistics() -> bool:
    """The recorder compiles statistics on its own schedule (off in plain recorder tests)."""
    return True


async def test_the_addons_entities_are_taken_over_with_their_statistics(
    recorder_mock: object,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    wmbusmeters: str,
    tmp_path: Path,
    radio: str,
    run_until_played: RunUntilPlayed,
) -> None:
    """The add-on's MQTT sensors of the meter, recorded for hours (6.0 then 6.2 m³): after the
    import the meter's total is this integration's sensor under the same entity id, and its
    statistics go on in the same series (the next change is the meter's 0.208 m³: no reset,
    no spike). Its derived `status_*` binary sensor and a sensor shown in another unit stay
    the add-on's, as the summary says."""
    await hass.config.async_set_time_zone("Europe/Copenhagen")
    # The add-on's sensors are MQTT's; their statistics the sensor platform's recorder part.
    assert await async_setup_component(hass, "sensor", {})
    registry = er.async_get(hass)
    mqtt = {
        "total_m3": ("sensor", "mainwater_total", "m³", "water", "total"),
        "flow_temperature_c": (
            "sensor",
            "mainwater_flow_temperature",
            "°C",
            "temperature",
            "measurement",
        ),
        "target_m3": ("sensor", "mainwater_target", "L", "water", "total"),
        "status_leak": ("binary_sensor", "mainwater_status_leak", None, "problem", None),
    }
    for field, (domain, object_id, unit, device_class, state_class) in mqtt.items():
        registry.async_get_or_create(
            domain,
            "mqtt",
            f"wmbusmeters_76348799_{field}",
            suggested_object_id=object_id,
            unit_of_measurement=unit,
            original_device_class=device_class,
            capabilities={"state_class": state_class} if state_class else None,
        )
    total = "sensor.mainwater_total"
    attributes = {"unit_of_measurement": "m³", "device_class": "water", "state_class": "total"}
    start = dt_util.utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    freezer.move_to(start + timedelta(minutes=1))
    hass.states.async_set(total, "6.0", attributes)
    await compile_until(hass, freezer, start + timedelta(hours=1, minutes=30))
    hass.states.async_set(total, "6.2", attributes)
    await compile_until(hass, freezer, start + timedelta(hours=3, minutes=1))
    before = await hourly(hass, total)
    assert before[-1]["sum"] == pytest.approx(0.2)

    summary = await read_addon(
        hass,
        tmp_path,
        wmbusmeters,
        radio,
        {"meter-0001": f"name=MainWater\nid=76348799\nkey={KEY}\ndriver=multical21\n"},
    )
    text = summary["description_placeholders"]
    assert text["takeovers"] == (
        "- sensor.mainwater_total (total\\_m3)\n"
        "- sensor.mainwater_flow_temperature (flow\\_temperature\\_c)"
    )
    assert "binary\\_sensor.mainwater\\_status\\_leak: derived from the status" in text["skipped"]
    assert (
        "sensor.mainwater\\_target: this integration shows this field otherwise" in text["skipped"]
    )
    result = await hass.config_entries.flow.async_configure(summary["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = hass.config_entries.async_get_entry(result["result"].entry_id)
    assert entry is not None
    await hass.async_block_till_done()
    await run_until_played(entry)

    taken = registry.async_get(total)
    assert taken is not None
    assert (taken.platform, taken.unique_id) == (DOMAIN, "76348799_total_m3")
    assert hass.states.get(total).state == "6.408"
    assert registry.async_get("sensor.mainwater_flow_temperature").platform == DOMAIN
    # Not taken: left as they were (the add-on's), and no copy of ours took their ids.
    assert registry.async_get("binary_sensor.mainwater_status_leak").platform == "mqtt"
    assert registry.async_get("sensor.mainwater_target").platform == "mqtt"
    assert [e.entity_id for e in registry.entities.values() if e.platform == "mqtt"] == [
        "sensor.mainwater_target",
        "binary_sensor.mainwater_status_leak",
    ]

    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=2))
    after = await hourly(hass, total)
    assert after[: len(before)] == before
    new = after[len(before) :]
    assert [round(row["change"], 6) for row in new] == [0.208] + [0.0] * (len(new) - 1)
    assert all(row["sum"] >= before[-1]["sum"] for row in new)
    await hass.config_entries.async_unload(entry.entry_id)

"""The add-on's entities taken over while the MQTT integration runs (its client mocked by
the test harness; the add-on's discovery payloads as its multical21 template publishes them):
the MQTT entity leaves (and clears its retained discovery topic), this integration's sensor
takes its entity id, and the add-on's retained readings no longer reach it."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, restore_state
from homeassistant.helpers.entity import entity_sources
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.wmbusmeters.const import DOMAIN

from .conftest import RunUntilPlayed
from .test_addon_import import KEY, read_addon

DEVICE = {
    "identifiers": ["wmbusmeters_76348799"],
    "manufacturer": "Kamstrup",
    "model": "multical21",
    "name": "MainWater",
    "sw_version": "76348799",
}
TOPIC = "homeassistant/sensor/wmbusmeters/76348799_total_m3/config"


async def discover(hass: HomeAssistant) -> str:
    """The add-on's discovery of the meter's total, and its retained reading (6.2 m³)."""
    payload = {
        "device": DEVICE,
        "state_class": "total",
        "device_class": "water",
        "name": "MainWater total",
        "state_topic": "wmbusmeters/MainWater",
        "unique_id": "wmbusmeters_76348799_total_m3",
        "unit_of_measurement": "m³",
        "value_template": "{{ value_json.total_m3 }}",
    }
    async_fire_mqtt_message(hass, TOPIC, json.dumps(payload), retain=True)
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, "wmbusmeters/MainWater", '{"total_m3": 6.2}', retain=True)
    await hass.async_block_till_done()
    total = er.async_get(hass).async_get_entity_id(
        "sensor", "mqtt", "wmbusmeters_76348799_total_m3"
    )
    assert total is not None
    assert hass.states.get(total).state == "6.2"
    return total


async def end_mqtt(hass: HomeAssistant) -> None:
    """MQTT's client is the harness's mock: its one-shot housekeeping timer runs out."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2))
    await hass.async_block_till_done()


async def test_not_while_mqtt_is_disconnected(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, wmbusmeters: str, tmp_path: Path, radio: str
) -> None:
    """The broker is away: the add-on's entity cannot clear its discovery topic, so it is not
    taken (it would come back, and its retained reading would land on the new sensor). The
    step says so, and nothing is removed or created."""
    total = await discover(hass)
    summary = await read_addon(
        hass,
        tmp_path,
        wmbusmeters,
        radio,
        {"meter-0001": "name=MainWater\nid=76348799\ndriver=auto\n"},
    )
    with patch("homeassistant.components.mqtt.is_connected", return_value=False):
        result = await hass.config_entries.flow.async_configure(summary["flow_id"], {})
    assert result["errors"] == {"base": "mqtt_not_ready"}
    assert er.async_get(hass).async_get(total).platform == "mqtt"
    assert hass.config_entries.async_entries(DOMAIN) == []
    await end_mqtt(hass)


async def test_a_live_mqtt_entity_is_taken_over(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    wmbusmeters: str,
    tmp_path: Path,
    radio: str,
    run_until_played: RunUntilPlayed,
) -> None:
    total = await discover(hass)
    registry = er.async_get(hass)
    # What the user set on it comes along.
    registry.async_update_entity(total, name="Water, main", icon="mdi:water")

    summary = await read_addon(
        hass,
        tmp_path,
        wmbusmeters,
        radio,
        {"meter-0001": f"name=MainWater\nid=76348799\nkey={KEY}\ndriver=multical21\n"},
    )
    assert total in summary["description_placeholders"]["takeovers"]
    mqtt_mock.async_publish.reset_mock()
    result = await hass.config_entries.flow.async_configure(summary["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = hass.config_entries.async_get_entry(result["result"].entry_id)
    assert entry is not None
    await hass.async_block_till_done()
    await run_until_played(entry)

    # MQTT let go of it and cleared its discovery topic (it does not come back).
    assert [c.args[:2] for c in mqtt_mock.async_publish.call_args_list] == [(TOPIC, None)], (
        mqtt_mock.async_publish.call_args_list
    )
    taken = registry.async_get(total)
    assert taken is not None
    assert (taken.platform, taken.unique_id) == (DOMAIN, "76348799_total_m3")
    assert (taken.name, taken.icon) == ("Water, main", "mdi:water")
    assert entity_sources(hass)[total]["domain"] == DOMAIN
    # The add-on's saved value (6.2) is not this sensor's to restore.
    assert total not in restore_state.async_get(hass).last_states
    assert hass.states.get(total).state == "6.408"
    # The add-on's retained reading, sent again: no longer reaches the sensor.
    async_fire_mqtt_message(hass, "wmbusmeters/MainWater", '{"total_m3": 1.0}', retain=True)
    await hass.async_block_till_done()
    assert hass.states.get(total).state == "6.408"
    await hass.config_entries.async_unload(entry.entry_id)
    await end_mqtt(hass)

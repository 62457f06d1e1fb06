"""What reaches a receiver's platforms, and when: telegrams heard before the platforms follow
a meter, an entry changed after the receiver stopped, an entity renamed by the user, a meter
added to a receiver that has run for hours. The real wmbusmeters runs (on a quiet simulation
file); telegrams are handed in as the runner hands them on (its on_telegram callback)."""

from __future__ import annotations

from datetime import timedelta
import logging
from pathlib import Path
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.wmbusmeters.const import DOMAIN, SUBENTRY_METER
from custom_components.wmbusmeters.wmbus import Telegram

from .common import meter, receiver_entry, setup_receiver

TAP = "76348799"
OTHER = "12345678"


def tap(**readings: object) -> Telegram:
    return Telegram(TAP, "multical21", "water", None, dict(readings))


def hear(entry: MockConfigEntry, telegram: Telegram) -> None:
    """What the runner does with a decoded telegram."""
    entry.runtime_data.supervisor.runner._on_telegram(telegram)


def unique_ids(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    return {
        e.unique_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }


def other_meter() -> ConfigSubentry:
    return ConfigSubentry(
        data=meter("Other", "multical21", OTHER)["data"],
        subentry_type=SUBENTRY_METER,
        title="Other",
        unique_id=OTHER,
    )


async def test_fields_heard_before_the_platforms_follow_get_their_entities(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """wmbusmeters starts before the platforms: two telegrams with different fields arrive
    in between. Each field gets its entity when it comes again (before: a field offered to
    no platform was never offered again in that run)."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", TAP)])
    forward = hass.config_entries.async_forward_entry_setups

    async def late_platforms(*args: object, **kwargs: object) -> None:
        hear(entry, tap(total_m3=1.5, status="OK"))
        hear(entry, tap(target_m3=1.0))
        await forward(*args, **kwargs)  # type: ignore[arg-type]

    with patch.object(hass.config_entries, "async_forward_entry_setups", late_platforms):
        await setup_receiver(hass, entry)
    hear(entry, tap(total_m3=1.6, status="LEAK"))
    await hass.async_block_till_done()
    assert {f"{TAP}_total_m3", f"{TAP}_target_m3", f"{TAP}_problem"} <= unique_ids(hass, entry)
    assert hass.states.get("sensor.tap_total").state == "1.6"
    assert hass.states.get("binary_sensor.tap_problem").state == "on"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_an_entry_changed_after_a_failed_unload_starts_nothing(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """The receiver stopped, but its platforms could not unload (they keep listening): a
    meter added then gets no meter state, no entity and no process. Before: the stopped
    coordinator took the meters back and the platforms registered entities for them."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    with patch.object(hass.config_entries, "async_unload_platforms", return_value=False):
        assert not await hass.config_entries.async_unload(entry.entry_id)
    before = unique_ids(hass, entry)
    hass.config_entries.async_add_subentry(entry, other_meter())
    await hass.async_block_till_done()
    data = entry.runtime_data
    assert data.meters.by_id == {}
    assert unique_ids(hass, entry) == before
    assert not data.supervisor.runner.running


async def test_a_renamed_entity_keeps_taking_values(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The user gives a reading a new entity id: HA adds the same entity back, and the next
    telegrams update it, with no second entity for the field. Before: each telegram tried to
    add another one ("does not generate unique IDs", an error per telegram)."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    hear(entry, tap(total_m3=1.5))
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    registry.async_update_entity("sensor.tap_total", new_entity_id="sensor.kitchen_water")
    await hass.async_block_till_done()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        for total in (1.6, 1.7):
            hear(entry, tap(total_m3=total))
            await hass.async_block_till_done()
    assert hass.states.get("sensor.kitchen_water").state == "1.7"
    assert hass.states.get("sensor.tap_total") is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # Deleted, it comes back with its next value.
    registry.async_remove("sensor.kitchen_water")
    await hass.async_block_till_done()
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{TAP}_total_m3") is None
    hear(entry, tap(total_m3=1.8))
    await hass.async_block_till_done()
    entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{TAP}_total_m3")
    assert entity_id is not None
    assert hass.states.get(entity_id).state == "1.8"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_meter_added_late_is_not_lost_at_once(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path, freezer: FrozenDateTimeFactory
) -> None:
    """A meter added to a receiver that has run for three hours has its own two hours to be
    heard: the next minute's check does not call it lost. Before: its silence counted from the
    receiver's start, so it showed unavailable within a minute."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    freezer.tick(timedelta(hours=3))
    hass.config_entries.async_add_subentry(entry, other_meter())
    await hass.async_block_till_done()
    data = entry.runtime_data
    data.coordinator.watch._check_silence(dt_util.utcnow() + timedelta(minutes=1))
    assert not data.availability.meter_available(TAP)  # never heard in three hours
    assert data.availability.meter_available(OTHER)
    await hass.config_entries.async_unload(entry.entry_id)

"""Meters become devices and sensors, from the real wmbusmeters 2.0.0 on recorded simulations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.wmbusmeters.compat import find_device
from custom_components.wmbusmeters.const import DOMAIN, EVENT_TELEGRAM

from .common import device_subentry, meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed, fixture_text

# Recorded cases and the simulation file name their command line used.
CASES = [
    "c1_water_multical21",
    "heat_multical603",
    "electricity_amiplus_t1",
    "gas_t1",
    "hca_qcaloric_c1",
    "t1_water_mixed",
    "s1_auto",
]
SNAPSHOT_ENTRY_ID = "01KSNAPSH0TRECE1VER0000000"
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")


def case_meters(case: str) -> tuple[str, list[ConfigSubentryData]]:
    """The simulation file name and the meters of a recorded case's command line."""
    args = fixture_text(f"{case}.cmd.txt").split()
    args = [a for a in args if not a.startswith("--")]
    sim, rest = args[0], args[1:]
    meters = [
        meter(name, driver, meter_id, "" if key == "NOKEY" else key)
        for name, driver, meter_id, key in zip(
            rest[::4], rest[1::4], rest[2::4], rest[3::4], strict=True
        )
    ]
    return sim, meters


def stable_time(data: Any, path: Any) -> Any:
    """Wall-clock timestamps made stable: wmbusmeters stamps a simulated telegram when it
    decodes it, so the last-telegram state differs from run to run."""
    if isinstance(data, str) and _TIMESTAMP.match(data):
        return "<timestamp>"
    return data


@pytest.mark.parametrize("case", CASES)
async def test_fixture_meters(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    snapshot: SnapshotAssertion,
    caplog: pytest.LogCaptureFixture,
    case: str,
    run_until_played: RunUntilPlayed,
) -> None:
    """Every meter of every recorded case: entities, units, classes and values."""
    caplog.set_level(logging.WARNING)
    sim, meters = case_meters(case)
    entry = receiver_entry(wmbusmeters, simulation(case, sim), meters)
    await setup_receiver(hass, entry)
    await run_until_played(entry)

    # Entities and states are in test_platform_snapshot; here: which start disabled.
    disabled = sorted(
        reg.unique_id.replace(entry.entry_id, "<entry>")
        for reg in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if reg.disabled_by is not None
    )
    assert disabled == snapshot(name="disabled_by_default")
    devices = {
        next(iter(d.identifiers))[1].replace(entry.entry_id, "<entry>"): (
            d.name,
            d.model,
            d.manufacturer,
            d.serial_number,
        )
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    }
    assert devices == snapshot(name="devices")
    # The sensor component warns about any unit/class/state-class mix it does not accept.
    rejected = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("homeassistant.components.sensor")
    ]
    assert rejected == []
    # Every entity is a field the driver documents or the meter sent: no removal notice.
    assert not [
        issue_id
        for (domain, issue_id) in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith("fields_removed_")
    ]
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", [Platform.SENSOR, Platform.BINARY_SENSOR, Platform.BUTTON])
@pytest.mark.parametrize("case", CASES)
async def test_platform_snapshot(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    snapshot: SnapshotAssertion,
    case: str,
    platform: Platform,
    run_until_played: RunUntilPlayed,
) -> None:
    """Every entity of every recorded case, platform by platform: registry entry and state."""
    sim, meters = case_meters(case)
    # A fixed entry id: the receiver's own entities carry it in their unique ids.
    entry = receiver_entry(wmbusmeters, simulation(case, sim), meters, entry_id=SNAPSHOT_ENTRY_ID)
    with patch("custom_components.wmbusmeters.PLATFORMS", [platform]):
        await setup_receiver(hass, entry)
        await run_until_played(entry)
        await snapshot_platform(
            hass,
            entity_registry,
            snapshot.with_defaults(matcher=stable_time),
            entry.entry_id,
        )
        await hass.config_entries.async_unload(entry.entry_id)


async def test_device_and_event(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """The meter's device is linked to the receiver; each telegram is a bus event without keys."""
    events: list[Event] = async_capture_events(hass, EVENT_TELEGRAM)
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Køkken", kamstrup, "76348799")]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)

    registry = dr.async_get(hass)
    device = find_device(registry, (DOMAIN, "76348799"), entry.entry_id)
    receiver = find_device(registry, (DOMAIN, entry.entry_id), entry.entry_id)
    assert device is not None
    assert receiver is not None
    assert device.via_device_id == receiver.id
    assert device.serial_number == "76348799"
    assert device.model == kamstrup
    assert device.manufacturer == "Kamstrup"
    assert device_subentry(device, entry.entry_id) == next(iter(entry.subentries))

    assert len(events) == 2  # the simulation has two telegrams for this meter
    data = events[0].data
    assert data["meter_id"] == "76348799"
    assert data["name"] == "Køkken"
    assert data["driver"] == kamstrup
    assert data["media"] == "cold water"
    assert data["fields"]["total_m3"] == 6.408
    assert "key" not in data
    assert hass.states.get("sensor.kokken_total").state == "6.408"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_removing_meter_removes_device(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """Removing a meter subentry removes its device and entities, and restarts wmbusmeters."""
    entry = receiver_entry(
        wmbusmeters,
        simulation("c1_water_multical21"),
        [meter("Tap", "multical21", "76348799"), meter("Garden", "multical21", "44556677")],
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    subentry_id = next(
        s.subentry_id for s in entry.subentries.values() if s.unique_id == "44556677"
    )

    assert hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()
    assert find_device(dr.async_get(hass), (DOMAIN, "44556677"), entry.entry_id) is None
    assert not [
        e
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.unique_id.startswith("44556677")
    ]
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


def restore_tap_total(hass: HomeAssistant, total: float) -> None:
    """The Tap meter's total as HA saved it before a restart."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State("sensor.tap_total", str(total)),
                {"native_value": total, "native_unit_of_measurement": "m³"},
            )
        ],
    )


async def setup_quiet_tap(hass: HomeAssistant, wmbusmeters: str, quiet: Path) -> MockConfigEntry:
    """The Tap meter (multical21 76348799) on a radio that has heard nothing yet since HA
    restarted; its total was registered by the run before (the registry outlives a restart)."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", "76348799")])
    entry.add_to_hass(hass)
    er.async_get(hass).async_get_or_create(
        Platform.SENSOR,
        DOMAIN,
        "76348799_total_m3",
        suggested_object_id="tap_total",
        config_entry=entry,
        config_subentry_id=next(iter(entry.subentries)),
        original_device_class="water",
        unit_of_measurement="m³",
        capabilities={"state_class": "total_increasing"},
        translation_key="total",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_restore_after_restart(hass: HomeAssistant, wmbusmeters: str, quiet: Path) -> None:
    """After an HA restart, a meter's last reading is shown before it sends again."""
    restore_tap_total(hass, 6.4)
    entry = await setup_quiet_tap(hass, wmbusmeters, quiet)
    state = hass.states.get("sensor.tap_total")
    assert state is not None
    assert state.state == "6.4"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_zero_total_does_not_overwrite_reading(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """A 0 total after a real one (restart, short telegram) leaves the reading as it was."""
    restore_tap_total(hass, 6.4)
    entry = await setup_quiet_tap(hass, wmbusmeters, quiet)
    coordinator = entry.runtime_data.coordinator
    coordinator.handle_telegram(_telegram(total_m3=0, target_m3=0))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "6.4"
    coordinator.handle_telegram(_telegram(total_m3=6.5))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "6.5"
    # A short telegram without the total keeps it too.
    coordinator.handle_telegram(_telegram(flow_temperature_c=12))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "6.5"
    assert hass.states.get("sensor.tap_flow_temperature").state == "12"
    await hass.config_entries.async_unload(entry.entry_id)


def _telegram(**readings: Any) -> Any:
    from custom_components.wmbusmeters.wmbus import Telegram  # noqa: PLC0415

    return Telegram(
        meter_id="76348799",
        driver="multical21",
        media="cold water",
        timestamp="2026-11-23T20:55:54Z",
        readings={**readings, "timestamp": "2026-11-23T20:55:54Z"},
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")  # "last telegram" is off
async def test_odd_values_do_not_break_entities(
    hass: HomeAssistant,
    wmbusmeters: str,
    caplog: pytest.LogCaptureFixture,
    quiet: Path,
) -> None:
    """Numbers as text, text as numbers, a numeric timestamp: shown sensibly, nothing raises."""
    from custom_components.wmbusmeters.wmbus import Telegram  # noqa: PLC0415

    entry = await setup_quiet_tap(hass, wmbusmeters, quiet)
    readings = {
        "total_m3": "6.7",
        "current_status": 3,
        "flow_temperature_c": "n/a",
        "timestamp": 1_795_000_000,
    }
    entry.runtime_data.coordinator.handle_telegram(
        Telegram("76348799", "multical21", "cold water", "", readings)
    )
    await hass.async_block_till_done()
    # The registered total stays a number; new fields are what their first value is.
    assert hass.states.get("sensor.tap_total").state == "6.7"
    assert hass.states.get("sensor.tap_total").attributes["unit_of_measurement"] == "m³"
    assert hass.states.get("sensor.tap_current_status").state == "3"
    # Text, named after its whole field name: no unit to leave out.
    flow_temperature = hass.states.get("sensor.tap_flow_temperature_c")
    assert flow_temperature.state == "n/a"
    assert "unit_of_measurement" not in flow_temperature.attributes  # a string is no number
    assert hass.states.get("sensor.tap_last_telegram").state == "unknown"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    # The next ordinary telegram is taken as usual.
    entry.runtime_data.coordinator.handle_telegram(_telegram(total_m3=6.8))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "6.8"
    assert hass.states.get("sensor.tap_last_telegram").state == "2026-11-23T20:55:54+00:00"
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("driver", ["lansendw", "auto"])
async def test_door_contact_status_is_an_enum_not_a_problem(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    driver: str,
    run_until_played: RunUntilPlayed,
) -> None:
    """A Lansen door/window contact's status (OPEN/CLOSED) is an enum sensor, also when
    wmbusmeters finds the driver itself; its problem sensor follows the error flags, so an
    open door is no "problem"."""
    from custom_components.wmbusmeters.wmbus import Telegram  # noqa: PLC0415

    entry = receiver_entry(
        wmbusmeters, simulation("t1_water_mixed"), [meter("Door", driver, "00010205")]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    status = hass.states.get("sensor.door_status")
    assert status.state == "OPEN"  # the real binary's last telegram of this meter
    assert status.attributes["device_class"] == "enum"
    assert status.attributes["options"] == ["OPEN", "CLOSED"]
    problem = hass.states.get("binary_sensor.door_problem")
    assert problem.state == "on"
    assert problem.attributes["status"] == "ERROR_FLAGS_1 PERMANENT_ERROR UNKNOWN_60"

    def send(**readings: Any) -> None:
        entry.runtime_data.coordinator.handle_telegram(
            Telegram("00010205", "lansendw", "reserved", "", {**readings, "a_counter": 24})
        )

    send(status="OPEN", error_flags="OK")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.door_status").state == "OPEN"
    assert hass.states.get("binary_sensor.door_problem").state == "off"
    for odd in ("AJAR", ""):  # not a documented value: unknown, nothing raises
        send(status="CLOSED", error_flags="OK")
        send(status=odd, error_flags="OK")
        await hass.async_block_till_done()
        assert hass.states.get("sensor.door_status").state == "unknown"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_availability_follows_silence(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    run_until_played: RunUntilPlayed,
) -> None:
    """Silent past the 2-hour floor: unavailable, logged once; heard again: back, logged once."""
    caplog.set_level(logging.INFO)
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Tap", "multical21", "76348799")]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    assert hass.states.get("sensor.tap_total").state == "6.408"

    for _ in range(3):
        freezer.tick(3600)
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "unavailable"
    assert sum("not heard for" in r.getMessage() for r in caplog.records) == 1

    # Pushed at once (callbacks). Not after a wait: three hours ended wmbusmeters' backoff,
    # so it plays the file again, and its 6.408 may come in any wait.
    entry.runtime_data.coordinator.handle_telegram(_telegram(total_m3=6.5))
    assert hass.states.get("sensor.tap_total").state == "6.5"
    assert sum("heard again" in r.getMessage() for r in caplog.records) == 1
    await hass.config_entries.async_unload(entry.entry_id)


async def test_new_field_becomes_entity(hass: HomeAssistant, wmbusmeters: str, quiet: Path) -> None:
    """A field the driver does not document gets its entity when it first arrives."""
    entry = await setup_quiet_tap(hass, wmbusmeters, quiet)
    assert hass.states.get("sensor.tap_leak_volume") is None
    entry.runtime_data.coordinator.handle_telegram(_telegram(leak_volume_l=12.5))
    await hass.async_block_till_done()
    state = hass.states.get("sensor.tap_leak_volume")
    assert state is not None
    assert state.state == "12.5"
    assert state.attributes["unit_of_measurement"] == "L"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_meter_changes_restart_once(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """Three meters added in a row restart wmbusmeters once, with all three, without a reload."""
    from homeassistant.config_entries import ConfigSubentry  # noqa: PLC0415

    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    runner = entry.runtime_data.supervisor.runner
    coordinator = entry.runtime_data.coordinator
    before = runner.counters.restarts
    for name, meter_id in (("A", "76348799"), ("B", "44556677"), ("C", "52525252")):
        hass.config_entries.async_add_subentry(
            entry,
            ConfigSubentry(
                data={"name": name, "driver": "auto", "meter_id": meter_id, "key": ""},
                subentry_type="meter",
                title=name,
                unique_id=meter_id,
            ),
        )
    waiter = asyncio.ensure_future(runner.wait_running())
    await asyncio.wait_for(waiter, 10)
    await run_until_played(entry)
    assert runner.counters.restarts == before + 1
    assert [m.meter_id for m in runner.config.meters] == ["76348799", "44556677", "52525252"]
    assert entry.runtime_data.coordinator is coordinator  # not reloaded
    assert hass.states.get("sensor.b_total").state == "20.015"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_null_reading_is_unknown(
    hass: HomeAssistant,
    wmbusmeters: str,
    caplog: pytest.LogCaptureFixture,
    quiet: Path,
) -> None:
    """3.0.0 prints `null` for a value the meter does not have: unknown, never 0 nor the old
    reading, also for a total; a field that has had no value yet gets no entity until its first
    real value, which describes it."""
    restore_tap_total(hass, 6.4)
    entry = await setup_quiet_tap(hass, wmbusmeters, quiet)
    coordinator = entry.runtime_data.coordinator
    coordinator.handle_telegram(_telegram(total_m3=None, flow_temperature_c=None))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "unknown"
    assert hass.states.get("sensor.tap_flow_temperature") is None
    coordinator.handle_telegram(_telegram(total_m3=6.5, flow_temperature_c=12))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_total").state == "6.5"
    flow_temperature = hass.states.get("sensor.tap_flow_temperature")
    assert flow_temperature.state == "12"
    assert flow_temperature.attributes["unit_of_measurement"] == "°C"
    assert "Error" not in caplog.text
    await hass.config_entries.async_unload(entry.entry_id)


async def test_telegram_before_the_platforms_listen(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """wmbusmeters starts before the platforms are set up: a telegram heard in between still
    gets its entities and values at once, not only with the meter's next telegram."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", "76348799")])
    forward = hass.config_entries.async_forward_entry_setups

    async def heard_first(config_entry: Any, platforms: Any) -> None:
        config_entry.runtime_data.coordinator.handle_telegram(
            _telegram(total_m3=6.408, status="LEAK")
        )
        await forward(config_entry, platforms)

    with patch.object(hass.config_entries, "async_forward_entry_setups", heard_first):
        await setup_receiver(hass, entry)
    assert hass.states.get("sensor.tap_total").state == "6.408"
    assert hass.states.get("sensor.tap_status").state == "LEAK"
    assert hass.states.get("binary_sensor.tap_problem").state == "on"
    await hass.config_entries.async_unload(entry.entry_id)

"""A meter's alarms as binary sensors, on the real wmbusmeters (2.0.0 and 3.0.0) playing
upstream's own test telegrams (tests/fixtures/driver-tests/inputs.jsonl): exactly the alarms
a telegram raises are on, each sensor is there before the first alarm (an automation can wait
for it), and a leak runs an automation.

3.0.0 says which alarms a driver can raise itself (`--printdriver`); 2.0.0 cannot, and the
integration keeps what the 3.0.0 release source says (wmbus/driver_alarms.py): the same
sensors on both.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    mock_restore_cache_with_extra_data,
)

from custom_components.wmbusmeters.alarms import ALARMS
from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import Telegram
from custom_components.wmbusmeters.wmbus.alarms import AlarmKind
from custom_components.wmbusmeters.wmbus.driver_alarms import DRIVER_ALARMS

from .common import meter, receiver_entry, setup_receiver, until
from .conftest import RunUntilPlayed

INPUTS = Path(__file__).parent / "fixtures" / "driver-tests" / "inputs.jsonl"


def upstream(name: str, meter_id: str, index: int = 0) -> tuple[str, str, str]:
    """Upstream's test telegram of that name and meter: (driver, key, hex)."""
    found = [
        case
        for line in INPUTS.read_text().splitlines()
        if (case := json.loads(line))["args"][0] == name and case["args"][2] == meter_id
    ]
    _, driver, _, key = found[index]["args"]
    return driver, "" if key == "NOKEY" else key, found[index]["telegram"].replace("_", "")


def with_status(telegram: str, old: str, new: str) -> str:
    """An upstream telegram with one byte changed: `old` (its tail) ends in `new`."""
    assert telegram.endswith(old)
    return telegram.removesuffix(old) + new


# gwfwater's "Watertwo" ends in its manufacturer block: type 01, status byte 00, then E3. No
# upstream telegram has a burst: 08 is BROKEN_PIPE in the driver's own table (both versions).
_GWF, _, _WATERTWO = upstream("Watertwo", "19680750")
BURST = with_status(_WATERTWO, "0F0100E3", "0F0108E3")
# OK again, with another battery byte: wmbusmeters drops a telegram it has just had.
OK_AGAIN = with_status(_WATERTWO, "0F0100E3", "0F0100E2")


@dataclass(frozen=True)
class Case:
    """A meter and its telegrams, in order; the alarms its last one raises."""

    driver: str
    meter_id: str
    key: str
    telegrams: tuple[str, ...]
    on: frozenset[AlarmKind]


def case(name: str, meter_id: str, on: set[AlarmKind], *more: str) -> Case:
    driver, key, telegram = upstream(name, meter_id)
    return Case(driver, meter_id, key, (telegram, *more), frozenset(on))


CASES = {
    # "LEAKAGE_OR_NO_USAGE POWER_LOW"
    "leak": case("Water", "22996221", {AlarmKind.LEAK, AlarmKind.BATTERY_LOW}),
    # OK, then BROKEN_PIPE
    "burst": Case(_GWF, "19680750", "", (_WATERTWO, BURST), frozenset({AlarmKind.BURST})),
    # "TAMPER"
    "tamper": case("WarmWater3", "24360570", {AlarmKind.TAMPER}),
    # "BATTERY_LOW POWER_LOW"
    "battery": case("Wateroo", "20221031", {AlarmKind.BATTERY_LOW}),
    # "WRONG_FLOW_DIRECTION"
    "reverse flow": case("303_wrong_flow", "83076912", {AlarmKind.REVERSE_FLOW}),
    # BROKEN_PIPE, then OK: off again
    "burst over": Case(_GWF, "19680750", "", (BURST, _WATERTWO), frozenset()),
    # A driver without a status field: no alarm sensor (and no problem sensor)
    "no status": case("W2", "02035240", set()),
}


def write_simulation(path: Path, telegrams: tuple[str, ...]) -> Path:
    path.write_text("".join(f"telegram=|{telegram}|\n" for telegram in telegrams))
    return path


def alarm_entities(hass: HomeAssistant, meter_id: str) -> dict[AlarmKind, str]:
    """The meter's alarm sensors: kind -> entity id."""
    registry = er.async_get(hass)
    return {
        kind: entity_id
        for kind, description in ALARMS.items()
        if (
            entity_id := registry.async_get_entity_id(
                Platform.BINARY_SENSOR, DOMAIN, f"{meter_id}_{description.key}"
            )
        )
    }


@pytest.mark.parametrize("name", CASES)
async def test_upstream_telegrams_turn_on_their_alarms(
    hass: HomeAssistant,
    wmbusmeters: str,
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
    name: str,
) -> None:
    """Each meter has the alarm sensors its driver can raise (the same on both versions), and
    after its telegrams exactly those its last one raises are on."""
    test = CASES[name]
    sim = write_simulation(tmp_path / "simulation_alarms.txt", test.telegrams)
    entry = receiver_entry(wmbusmeters, sim, [meter("Water", test.driver, test.meter_id, test.key)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)

    sensors = alarm_entities(hass, test.meter_id)
    assert set(sensors) == DRIVER_ALARMS.get(test.driver, frozenset())
    assert test.on <= sensors.keys()
    states = {kind: hass.states.get(entity_id).state for kind, entity_id in sensors.items()}
    assert states == {kind: "on" if kind in test.on else "off" for kind in sensors}
    problem = hass.states.get("binary_sensor.water_problem")
    if sensors:
        assert problem is not None
        assert problem.state == ("on" if test.on else "off")
    else:
        assert problem is None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_burst_on_then_off(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, run_until_played: RunUntilPlayed
) -> None:
    """OK, burst, OK: the sensor (there before the meter is heard) goes on with the burst
    and off with the next OK."""
    sim = write_simulation(tmp_path / "simulation_burst.txt", ())
    entry = receiver_entry(wmbusmeters, sim, [meter("Water", _GWF, "19680750")])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    assert hass.states.get("binary_sensor.water_burst").state == "unknown"
    seen: list[str] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is not None and state.state in ("on", "off") and seen[-1:] != [state.state]:
            seen.append(state.state)

    async_track_state_change_event(hass, "binary_sensor.water_burst", changed)
    write_simulation(sim, (_WATERTWO, BURST, OK_AGAIN))
    await hass.services.async_call(
        DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await until(hass, lambda: len(seen) == 3, "the burst sensor to go on and off again")
    assert seen == ["off", "on", "off"]
    await hass.config_entries.async_unload(entry.entry_id)


async def test_leak_runs_an_automation(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, run_until_played: RunUntilPlayed
) -> None:
    """The leak sensor is there before the meter has said anything, so an automation can be
    set up on it; the leak telegram runs the automation. After a reload with a silent radio
    the sensors are the same and the leak stays on (a meter may not send for hours): the
    automation reminds of it once more, as the README says."""
    driver, key, leak = upstream("Water", "22996221")
    sim = write_simulation(tmp_path / "simulation_leak.txt", ())
    entry = receiver_entry(wmbusmeters, sim, [meter("Water", driver, "22996221", key)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    before = alarm_entities(hass, "22996221")
    assert before[AlarmKind.LEAK] == "binary_sensor.water_leak"
    assert hass.states.get("binary_sensor.water_leak").state == "unknown"

    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                # As the README has it.
                "trigger": {
                    "platform": "state",
                    "entity_id": "binary_sensor.water_leak",
                    "to": "on",
                },
                "action": {"event": "water_leak_alert", "event_data": {"meter": "Water"}},
            }
        },
    )
    alerts = async_capture_events(hass, "water_leak_alert")
    write_simulation(sim, (leak,))
    await hass.services.async_call(
        DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await until(hass, lambda: alerts, "the leak automation to run")
    assert [event.data for event in alerts] == [{"meter": "Water"}]
    assert hass.states.get("binary_sensor.water_leak").state == "on"
    assert hass.states.get("binary_sensor.water_burst") is None  # waterstarm has no burst

    write_simulation(sim, ())
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await run_until_played(entry)
    assert alarm_entities(hass, "22996221") == before
    assert hass.states.get("binary_sensor.water_leak").state == "on"
    assert len(alerts) == 2
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_leak_survives_a_restart(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path, run_until_played: RunUntilPlayed
) -> None:
    """Home Assistant restarted while the meter reported a leak: it is on again before the
    meter speaks (from the sensor's own saved data, not its state)."""
    driver, key, _ = upstream("Water", "22996221")
    mock_restore_cache_with_extra_data(
        hass,
        (
            (State("binary_sensor.water_leak", "unavailable"), {"alarm": True}),
            (State("binary_sensor.water_burst", "on"), {"alarm": False}),
        ),
    )
    entry = receiver_entry(wmbusmeters, quiet, [meter("Water", driver, "22996221", key)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    assert hass.states.get("binary_sensor.water_leak").state == "on"
    assert hass.states.get("binary_sensor.water_tamper").state == "unknown"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_changed_driver_changes_the_sensors(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, run_until_played: RunUntilPlayed
) -> None:
    """A meter set up with the wrong driver (waterstarm: leak, tamper, battery, reverse flow)
    and a leak restored, then given its right one (gwfwater): at once, before it is heard, it
    has gwfwater's sensors, the tamper sensor gwfwater cannot give is gone, and so is nothing
    else; its burst turns on; a reload keeps them."""
    sim = write_simulation(tmp_path / "simulation_driver.txt", ())
    mock_restore_cache_with_extra_data(
        hass, ((State("binary_sensor.water_tamper", "on"), {"alarm": True}),)
    )
    entry = receiver_entry(wmbusmeters, sim, [meter("Water", "waterstarm", "19680750")])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    assert set(alarm_entities(hass, "19680750")) == DRIVER_ALARMS["waterstarm"]
    assert AlarmKind.TAMPER in DRIVER_ALARMS["waterstarm"] - DRIVER_ALARMS[_GWF]
    assert hass.states.get("binary_sensor.water_tamper").state == "on"
    leak = alarm_entities(hass, "19680750")[AlarmKind.LEAK]

    subentry = next(iter(entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "driver": _GWF}
    )
    await until(
        hass,
        lambda: set(alarm_entities(hass, "19680750")) == DRIVER_ALARMS[_GWF],
        "gwfwater's alarm sensors",
    )
    assert hass.states.get("binary_sensor.water_tamper") is None
    assert alarm_entities(hass, "19680750")[AlarmKind.LEAK] == leak  # kept, same entity

    write_simulation(sim, (BURST,))
    await hass.services.async_call(
        DOMAIN, "restart", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await until(hass, lambda: has_state(hass, "binary_sensor.water_burst", "on"), "the burst")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await run_until_played(entry)
    assert set(alarm_entities(hass, "19680750")) == DRIVER_ALARMS[_GWF]
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_meter_on_auto_gets_the_sensors_of_its_driver(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, run_until_played: RunUntilPlayed
) -> None:
    """`auto` says nothing of a meter: its first telegram names gwfwater, and the meter gets
    gwfwater's alarm sensors (not only the burst it reports)."""
    sim = write_simulation(tmp_path / "simulation_auto.txt", (BURST,))
    entry = receiver_entry(wmbusmeters, sim, [meter("Water", "auto", "19680750")])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    await until(
        hass,
        lambda: set(alarm_entities(hass, "19680750")) == DRIVER_ALARMS[_GWF],
        "gwfwater's alarm sensors",
    )
    states = {
        kind: hass.states.get(entity_id).state
        for kind, entity_id in alarm_entities(hass, "19680750").items()
    }
    assert states == {kind: "on" if kind is AlarmKind.BURST else "off" for kind in states}
    await hass.config_entries.async_unload(entry.entry_id)


def has_state(hass: HomeAssistant, entity_id: str, state: str) -> bool:
    return (current := hass.states.get(entity_id)) is not None and current.state == state


async def test_sensors_added_later_are_told_the_status(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path, run_until_played: RunUntilPlayed
) -> None:
    """A status, a short telegram without one, a new driver with a sensor more: the next
    status, the same as before, reaches the new sensor too (it is not left unknown)."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Water", "waterstarm", "19680750")])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    coordinator = entry.runtime_data.coordinator

    def telegram(**readings: Any) -> Telegram:
        return Telegram("19680750", _GWF, "water", None, {"total_m3": 5.0, **readings})

    coordinator.handle_telegram(telegram(status="LEAKAGE_OR_NO_USAGE"))
    coordinator.handle_telegram(telegram())
    assert has_state(hass, "binary_sensor.water_leak", "on")
    subentry = next(iter(entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "driver": _GWF}
    )
    await until(hass, lambda: hass.states.get("binary_sensor.water_burst") is not None, "burst")
    assert has_state(hass, "binary_sensor.water_burst", "unknown")
    coordinator.handle_telegram(telegram(status="LEAKAGE_OR_NO_USAGE"))
    assert has_state(hass, "binary_sensor.water_burst", "off")
    assert has_state(hass, "binary_sensor.water_leak", "on")
    await hass.config_entries.async_unload(entry.entry_id)

"""A meter over its whole life, on the real wmbusmeters: added, removed, added again, renamed,
re-keyed, held by one receiver only; a receiver deleted without a trace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from pathlib import Path

from homeassistant.config_entries import SOURCE_USER, ConfigSubentry, ConfigSubentryData
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.wmbusmeters.alarms import ALARMS
from custom_components.wmbusmeters.compat import find_device
from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import Telegram
from custom_components.wmbusmeters.wmbus.driver_alarms import DRIVER_ALARMS

from .common import meter, receiver_entry, setup_receiver
from .conftest import RepairFix, RunUntilPlayed

TAP = "76348799"


def meter_entities(hass: HomeAssistant, meter_id: str) -> list[er.RegistryEntry]:
    """The registered entities of a meter, on any receiver."""
    return [
        entity
        for entity in er.async_get(hass).entities.values()
        if entity.platform == DOMAIN and entity.unique_id.startswith(f"{meter_id}_")
    ]


def tap_subentry(kamstrup: str, key: str = "") -> ConfigSubentry:
    data = meter("Tap", kamstrup, TAP, key)
    return ConfigSubentry(
        data=data["data"],
        subentry_type="meter",
        title=data["title"],
        unique_id=TAP,
    )


async def restarted(
    hass: HomeAssistant, entry: MockConfigEntry, run_until_played: RunUntilPlayed
) -> None:
    """Wait for wmbusmeters to start again and play its simulation."""
    await asyncio.wait_for(entry.runtime_data.supervisor.runner.wait_running(), 10)
    await run_until_played(entry)
    await hass.async_block_till_done()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def kitchen_and_cellar(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    kitchen_meters: list[ConfigSubentryData],
    cellar_meters: list[ConfigSubentryData],
) -> tuple[MockConfigEntry, MockConfigEntry]:
    """Two receivers hearing the same simulated neighbourhood, set up in this order."""
    kitchen = receiver_entry(
        wmbusmeters,
        simulation("c1_water_multical21", "simulation_a.txt"),
        kitchen_meters,
        title="Kitchen radio",
    )
    cellar = receiver_entry(
        wmbusmeters,
        simulation("c1_water_multical21", "simulation_b.txt"),
        cellar_meters,
        title="Cellar radio",
    )
    await setup_receiver(hass, kitchen)
    await setup_receiver(hass, cellar)
    return kitchen, cellar


async def test_remove_add_again_rename_rekey(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every step ends with the meter's full set of entities and no error in the log."""
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Tap", kamstrup, TAP)]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    full = sorted(e.unique_id for e in meter_entities(hass, TAP))
    assert len(full) >= 8
    assert hass.states.get("sensor.tap_total").state == "6.408"

    # Removed: device and entities go, wmbusmeters restarts without it.
    waiter = asyncio.ensure_future(restarted(hass, entry, run_until_played))
    assert hass.config_entries.async_remove_subentry(entry, next(iter(entry.subentries)))
    await waiter
    assert meter_entities(hass, TAP) == []
    assert entry.runtime_data.supervisor.runner.config.meters == ()

    # Added again: the whole set comes back, with values, under the new subentry.
    waiter = asyncio.ensure_future(restarted(hass, entry, run_until_played))
    hass.config_entries.async_add_subentry(entry, tap_subentry(kamstrup))
    await waiter
    assert sorted(e.unique_id for e in meter_entities(hass, TAP)) == full
    subentry_id = next(iter(entry.subentries))
    assert {e.config_subentry_id for e in meter_entities(hass, TAP)} == {subentry_id}
    assert hass.states.get("sensor.tap_total").state == "6.408"

    # Renamed: the device follows, the entities stay.
    hass.config_entries.async_update_subentry(
        entry,
        entry.subentries[subentry_id],
        title="Kitchen tap",
        data={**meter("Kitchen tap", kamstrup, TAP)["data"]},
    )
    await hass.async_block_till_done()
    device = find_device(dr.async_get(hass), (DOMAIN, TAP), entry.entry_id)
    assert device is not None
    assert device.name == "Kitchen tap"
    assert sorted(e.unique_id for e in meter_entities(hass, TAP)) == full

    # Re-keyed (the meter sends in the clear: a wrong key is refused by wmbusmeters, then
    # removed again): the entities are all still there and read again.
    subentry = entry.subentries[subentry_id]
    waiter = asyncio.ensure_future(restarted(hass, entry, run_until_played))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "key": "A" * 32}
    )
    await waiter
    waiter = asyncio.ensure_future(restarted(hass, entry, run_until_played))
    hass.config_entries.async_update_subentry(entry, subentry, data={**subentry.data, "key": ""})
    await waiter
    assert sorted(e.unique_id for e in meter_entities(hass, TAP)) == full
    assert hass.states.get("sensor.tap_total").state == "6.408"

    # Reconfigured to another driver (auto finds the same one): the same entities.
    waiter = asyncio.ensure_future(restarted(hass, entry, run_until_played))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "driver": "auto"}
    )
    await waiter
    assert entry.runtime_data.supervisor.runner.config.meters[0].driver == "auto"
    assert sorted(e.unique_id for e in meter_entities(hass, TAP)) == full
    assert errors(caplog) == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_meter_belongs_to_one_receiver(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, simulation: Callable[..., Path]
) -> None:
    """Adding a meter id another receiver has is refused, naming that receiver."""
    kitchen, cellar = await kitchen_and_cellar(
        hass, wmbusmeters, simulation, [meter("Tap", kamstrup, TAP)], []
    )
    result = await hass.config_entries.subentries.async_init(
        (cellar.entry_id, "meter"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {"name": "Tap again", "meter_id": TAP.upper(), "driver": "auto", "key": ""},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"meter_id": "meter_on_other_receiver"}
    assert result["description_placeholders"] == {"receiver": "Kitchen radio"}
    assert not cellar.subentries
    # Another id is fine there.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Garden", "meter_id": "44556677", "driver": "auto", "key": ""}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(kitchen.entry_id)
    await hass.config_entries.async_unload(cellar.entry_id)


async def test_meter_of_another_receiver_is_not_offered(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
    quiet: Path,
) -> None:
    """A receiver that hears a meter another receiver has does not offer it as new."""
    kitchen = receiver_entry(
        wmbusmeters, quiet, [meter("Tap", kamstrup, TAP)], title="Kitchen radio"
    )
    cellar = receiver_entry(wmbusmeters, simulation("c1_water_multical21"), title="Cellar radio")
    await setup_receiver(hass, kitchen)
    await setup_receiver(hass, cellar)
    await run_until_played(cellar)
    offered = {
        flow["context"]["unique_id"]
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    }
    assert f"meter_{TAP}" not in offered
    assert "meter_44556677" in offered  # the simulation's other meters are
    await hass.config_entries.async_unload(kitchen.entry_id)
    await hass.config_entries.async_unload(cellar.entry_id)


async def test_duplicate_saved_before_gets_a_repair(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
    repair_fix: RepairFix,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two receivers saved with one meter (before the flows refused it): no unique id clash;
    the first keeps it, the second gets a fixable issue whose fix removes its copy."""
    kitchen, cellar = await kitchen_and_cellar(
        hass,
        wmbusmeters,
        simulation,
        [meter("Tap", kamstrup, TAP)],
        [meter("Tap copy", kamstrup, TAP)],
    )
    await run_until_played(kitchen)
    await run_until_played(cellar)
    assert "unique ID" not in caplog.text
    assert errors(caplog) == []
    assert {e.config_entry_id for e in meter_entities(hass, TAP)} == {kitchen.entry_id}
    assert hass.states.get("sensor.tap_total").state == "6.408"
    issue_id = f"duplicate_meter_{cellar.entry_id}_{TAP}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "name": "Tap copy",
        "meter_id": TAP,
        "receiver": "Cellar radio",
        "owner": "Kitchen radio",
    }

    # Restarting the receiver keeps the issue (its cause is still there).
    await hass.config_entries.async_reload(cellar.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    flow = await repair_fix.start(issue_id)
    assert flow["step_id"] == "confirm"
    flow = await repair_fix.submit(flow["flow_id"], {})
    assert flow["type"] == "create_entry"
    await hass.async_block_till_done()
    assert not cellar.subentries
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert {e.config_entry_id for e in meter_entities(hass, TAP)} == {kitchen.entry_id}
    await hass.config_entries.async_unload(kitchen.entry_id)
    await hass.config_entries.async_unload(cellar.entry_id)


async def test_deleting_receiver_leaves_no_issue_and_no_config(
    hass: HomeAssistant, wmbusmeters: str, encrypted: Path, run_until_played: RunUntilPlayed
) -> None:
    """Its meters' repair issues and its rendered configuration (with keys) go with it."""
    entry = receiver_entry(wmbusmeters, encrypted, [meter("Vand", "auto", TAP, "A" * 32)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, f"decryption_failed_{TAP}") is not None
    config_dir = entry.runtime_data.supervisor.runner.config_dir
    assert config_dir.exists()

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert [issue_id for (domain, issue_id) in registry.issues if domain == DOMAIN] == []
    assert not config_dir.exists()


def described(state: State) -> tuple[object, object, object]:
    return tuple(
        state.attributes.get(a) for a in ("unit_of_measurement", "device_class", "state_class")
    )  # type: ignore[return-value]


async def test_descriptions_settled_across_restart(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """A gas meter whose driver is a water meter's (apator08): described from its telegram
    once, and after a restart taken back as it was, never shown as water in between."""
    entry = receiver_entry(
        wmbusmeters, simulation("gas_t1"), [meter("Gasso", "apator08", "004444dd")]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    first = {
        s.entity_id: described(s)
        for s in hass.states.async_all("sensor")
        if s.entity_id.startswith("sensor.gasso_")
    }
    assert first["sensor.gasso_total"] == ("m³", "gas", "total_increasing")
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    seen: dict[str, set[tuple[object, object, object]]] = {}

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is not None and state.entity_id in first and state.state != "unavailable":
            seen.setdefault(state.entity_id, set()).add(described(state))

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await run_until_played(entry)
    assert seen == {entity_id: {description} for entity_id, description in first.items()}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_documented_fields_a_meter_never_sends_get_no_entity(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, quiet: Path
) -> None:
    """The driver documents a status and more; this meter sends only its total: only the total
    (and the last-telegram time) become reading entities, nothing stays "unknown" for good.
    (Its alarm sensors are there from the start by design, to be automated on before the
    first alarm: tests/test_alarms.py.)"""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", kamstrup, TAP)])
    await setup_receiver(hass, entry)
    entry.runtime_data.coordinator.handle_telegram(
        Telegram(
            TAP,
            kamstrup,
            "cold water",
            "2026-11-25T10:00:00Z",
            {"total_m3": 6.4, "timestamp": "2026-11-25T10:00:00Z"},
        )
    )
    await hass.async_block_till_done()
    assert sorted(e.unique_id for e in meter_entities(hass, TAP) if e.domain == "sensor") == [
        f"{TAP}_timestamp",
        f"{TAP}_total_m3",
    ]
    alarms = [e for e in meter_entities(hass, TAP) if e.domain == "binary_sensor"]
    assert {e.unique_id for e in alarms} == {
        f"{TAP}_{ALARMS[kind].key}" for kind in DRIVER_ALARMS[kamstrup]
    }
    assert {hass.states.get(e.entity_id).state for e in alarms} == {"unknown"}
    assert [
        s.entity_id
        for s in hass.states.async_all()
        if s.entity_id.startswith(("sensor.tap_", "binary_sensor.tap_"))
        and s.state == "unknown"
        and s.entity_id not in {e.entity_id for e in alarms}
    ] == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_zero_is_shown_where_it_is_a_reading(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """A heat cost allocator's new period starts at 0 and a countdown runs out at 0: both are
    shown; a water total's 0 is a glitch and is not (tests/test_sensor.py)."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Radiator", "qcaloric", "78563412")])
    await setup_receiver(hass, entry)
    coordinator = entry.runtime_data.coordinator

    def telegram(hca: int, countdown: int) -> Telegram:
        readings = {"current_consumption_hca": hca, "seconds_to_mode_change_counter": countdown}
        return Telegram("78563412", "qcaloric", "heat cost allocation", None, readings)

    coordinator.handle_telegram(telegram(127, 30))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.radiator_current_consumption").state == "127"
    counter = hass.states.get("sensor.radiator_seconds_to_mode_change")
    assert counter.attributes["state_class"] == "measurement"  # a countdown is no total
    coordinator.handle_telegram(telegram(0, 0))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.radiator_current_consumption").state == "0"
    assert hass.states.get("sensor.radiator_seconds_to_mode_change").state == "0"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_entity_registered_by_an_earlier_rule_is_described_again_once(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, quiet: Path
) -> None:
    """An earlier version registered a date under a unit-like name as a number of months (its
    state was "unknown" for good): its first value describes it again as a date, under the
    same entity id; a number as text in a numeric entity stays a number."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", kamstrup, TAP)])
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    for field, object_id, unit, device_class, state_class in (
        ("max_flow_date_month", "tap_max_flow_date", "m", None, "measurement"),
        ("total_m3", "tap_total", "m³", "water", "total_increasing"),
    ):
        registry.async_get_or_create(
            "sensor",
            DOMAIN,
            f"{TAP}_{field}",
            suggested_object_id=object_id,
            config_entry=entry,
            config_subentry_id=next(iter(entry.subentries)),
            original_device_class=device_class,
            unit_of_measurement=unit,
            capabilities={"state_class": state_class},
        )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tap_max_flow_date").attributes["unit_of_measurement"] == "m"

    readings = {"max_flow_date_month": "2024-01-31", "total_m3": "6.4"}
    entry.runtime_data.coordinator.handle_telegram(
        Telegram(TAP, kamstrup, "cold water", None, readings)
    )
    await hass.async_block_till_done()
    state = hass.states.get("sensor.tap_max_flow_date")
    assert state.state == "2024-01-31"
    assert state.attributes["device_class"] == "date"
    assert "unit_of_measurement" not in state.attributes
    assert registry.async_get("sensor.tap_max_flow_date").original_device_class == "date"
    total = hass.states.get("sensor.tap_total")
    assert (total.state, total.attributes["unit_of_measurement"]) == ("6.4", "m³")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_duplicate_is_read_by_the_other_receiver_once_the_owner_is_deleted(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """The copy a second receiver held becomes its meter when the first one is deleted."""
    kitchen, cellar = await kitchen_and_cellar(
        hass,
        wmbusmeters,
        simulation,
        [meter("Tap", kamstrup, TAP)],
        [meter("Tap", kamstrup, TAP)],
    )
    await run_until_played(cellar)
    assert cellar.runtime_data.supervisor.runner.config.meters == ()

    waiter = asyncio.ensure_future(restarted(hass, cellar, run_until_played))
    assert await hass.config_entries.async_remove(kitchen.entry_id)
    await waiter
    assert [m.meter_id for m in cellar.runtime_data.supervisor.runner.config.meters] == [TAP]
    assert {e.config_entry_id for e in meter_entities(hass, TAP)} == {cellar.entry_id}
    assert hass.states.get("sensor.tap_total").state == "6.408"
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"duplicate_meter_{cellar.entry_id}_{TAP}")
        is None
    )
    await hass.config_entries.async_unload(cellar.entry_id)


async def test_duplicate_removed_by_hand_clears_its_issue(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, simulation: Callable[..., Path]
) -> None:
    """The copy deleted from the receiver's page, not through the repair: the issue goes too."""
    kitchen, cellar = await kitchen_and_cellar(
        hass,
        wmbusmeters,
        simulation,
        [meter("Tap", kamstrup, TAP)],
        [meter("Tap", kamstrup, TAP)],
    )
    issue_id = f"duplicate_meter_{cellar.entry_id}_{TAP}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert hass.config_entries.async_remove_subentry(cellar, next(iter(cellar.subentries)))
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(kitchen.entry_id)
    await hass.config_entries.async_unload(cellar.entry_id)

"""What breaks after the first day: a HACS update, an ignored neighbour, a reconfigure, a
reload under traffic. One test per defect found at f99a215 (each fails there), on the real
wmbusmeters unless it says otherwise; the whole week in a row is tests/test_journey.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
import os
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorStateClass
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    ConfigEntryState,
)
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import DeviceNotFound, Telegram, bundled

from .common import (
    discover_im871a,
    discovery_flows,
    has_value,
    ignore_flow,
    meter,
    receiver_entry,
    setup_receiver,
    start_receiver_flow,
    until,
)
from .conftest import hacs_unpack
from .pty_dongle import Im871aEmulator, PtyDongle
from .test_network import free_port

DEMO = Path(__file__).parent.parent / "demo" / "simulation_demo.txt"
TAP = "76348799"


def integration_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the integration logged at WARNING or above."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("custom_components")
    ]


def orphans(hass: HomeAssistant) -> list[str]:
    """Registered entities of loaded receivers that no platform provides: HA shows them as
    "unavailable" with `restored: true` (added to an unloaded platform, or left behind)."""
    loaded = {e.entry_id for e in hass.config_entries.async_loaded_entries(DOMAIN)}
    found = []
    for entity in er.async_get(hass).entities.values():
        if entity.platform != DOMAIN or entity.config_entry_id not in loaded:
            continue
        if entity.disabled_by is not None:
            continue
        state = hass.states.get(entity.entity_id)
        if state is None or state.attributes.get("restored"):
            found.append(entity.entity_id)
    return found


async def offered(hass: HomeAssistant, meter_id: str) -> dict[str, Any]:
    """Wait for the discovery flow of a meter the radio hears; return it."""
    await until(hass, lambda: meter_id in discovery_flows(hass), f"meter {meter_id} offered")
    return discovery_flows(hass)[meter_id]


# -- 1. a HACS update ---------------------------------------------------------------------


async def test_a_hacs_update_keeps_a_bundled_receiver_running(
    hass: HomeAssistant, installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The receiver runs the release's static binary; HACS updates the integration (the zip
    unpacked over the folder: every exec bit gone) and Home Assistant restarts: the receiver
    loads and reads its meter. Before: "not executable", set-up retried forever."""
    monkeypatch.setattr(bundled, "BUNDLE_DIR", installed / "bin")
    command = await hass.async_add_executor_job(bundled.bundled_binary)
    assert command is not None
    simulation = tmp_path / "simulation_demo.txt"
    simulation.write_text(DEMO.read_text())
    entry = receiver_entry(command, simulation, [meter("Koldt vand", "kamwater", "44556677")])
    await setup_receiver(hass, entry)
    await until(hass, lambda: has_value(hass, "sensor.koldt_vand_total"), "the meter's total")
    assert await hass.config_entries.async_unload(entry.entry_id)

    await hass.async_add_executor_job(hacs_unpack, installed)
    assert not os.access(command, os.X_OK)  # as HACS leaves it
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    await until(hass, lambda: has_value(hass, "sensor.koldt_vand_total"), "the total again")
    # rtl_sdr and rtl_wmbus beside it are executable again too (an RTL-SDR stick needs them).
    assert os.access(Path(command).parent / "rtl_sdr", os.X_OK)
    assert await hass.config_entries.async_unload(entry.entry_id)


# -- 2. an ignored neighbour ----------------------------------------------------------------


@pytest.mark.usefixtures("socket_enabled")
async def test_an_ignored_neighbour_leaves_every_receiver_form_working(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    hass_ws_client: WebSocketGenerator,
    tmp_path: Path,
) -> None:
    """A neighbour's meter is offered and ignored (an entry of this domain with empty data);
    then the radio, network and M-Bus forms and a plugged-in dongle each answer with their
    own result. Before: KeyError ("Unknown error") in every one of them."""
    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21", "simulation_a.txt"))
    await setup_receiver(hass, entry)
    await ignore_flow(hass, hass_ws_client, (await offered(hass, TAP))["flow_id"])
    ignored = hass.config_entries.async_entries(DOMAIN, include_ignore=True)
    assert [e.source for e in ignored].count(SOURCE_IGNORE) == 1

    radio = await start_receiver_flow(hass, "radio")
    result = await hass.config_entries.flow.async_configure(
        radio["flow_id"],
        {
            "command": wmbusmeters,
            "device": str(simulation("c1_water_multical21", "simulation_b.txt")),
            "link_modes": [],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY

    network = await start_receiver_flow(hass, "network")
    result = await hass.config_entries.flow.async_configure(
        network["flow_id"],
        {
            "command": wmbusmeters,
            "listen_host": "127.0.0.1",
            "listen_port": free_port(),
            "listen_protocol": "tcp",
            "line_format": "hex",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY

    mbus = await start_receiver_flow(hass, "mbus")
    result = await hass.config_entries.flow.async_configure(
        mbus["flow_id"], {"command": wmbusmeters, "device": "auto", "baud_rate": "2400"}
    )
    assert result["errors"] == {"device": "not_a_serial_port"}

    dongle = PtyDongle(tmp_path)
    try:
        result = await discover_im871a(hass, str(dongle.path))
        assert result["step_id"] == "usb_confirm"
        hass.config_entries.flow.async_abort(result["flow_id"])
    finally:
        dongle.unplug()
    for loaded in hass.config_entries.async_loaded_entries(DOMAIN):
        assert await hass.config_entries.async_unload(loaded.entry_id)


# -- 3, 4. reconfigure ----------------------------------------------------------------------


async def test_reconfigure_from_an_rtl_sdr_stick_to_another_radio(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path]
) -> None:
    """An RTL-SDR receiver with its tuning moves to another radio: the tuning goes with the
    stick, and the receiver runs there. Before: the old tuning stayed and every set-up
    failed ("invalid RTL option")."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="wmbusmeters rtlwmbus",
        version=1,
        minor_version=2,
        data={
            "command": wmbusmeters,
            "device": "rtlwmbus",
            "device_type": "",
            "link_modes": [],
            "rtl_serial": "00000001",
            "rtl_ppm": 12,
            "rtl_frequency": 868.95,
        },
        unique_id="rtlwmbus",
        subentries_data=[meter("Tap", "auto", TAP)],
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    device = str(simulation("c1_water_multical21"))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": wmbusmeters, "device": device, "link_modes": []}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert not {"rtl_serial", "rtl_ppm", "rtl_frequency"} & entry.data.keys()
    assert entry.unique_id == device
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(hass, lambda: has_value(hass, "sensor.tap_total"), "the meter on the new radio")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_receiver_saved_with_a_stale_rtl_tuning_starts(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path]
) -> None:
    """A receiver that 0.1.0's reconfigure left with an RTL-SDR tuning on another radio sets up
    (the tuning of a stick that is not there is not given to wmbusmeters)."""
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Tap", "auto", TAP)]
    )
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, "rtl_serial": "abc", "rtl_ppm": 3, "rtl_frequency": 868.95}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    await until(hass, lambda: has_value(hass, "sensor.tap_total"), "the meter's total")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_cannot_give_two_receivers_one_radio(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path]
) -> None:
    """`auto` and `rtlwmbus` are one radio each: a second receiver cannot be moved onto the
    one another receiver has. Before: saved, two wmbusmeters fought over the dongle and two
    entries shared a unique id."""
    for device in ("auto", "rtlwmbus"):
        first = receiver_entry(wmbusmeters, device, title=f"first {device}")
        first.add_to_hass(hass)
        second = receiver_entry(
            wmbusmeters, simulation("c1_water_multical21", f"simulation_{device}.txt")
        )
        second.add_to_hass(hass)
        result = await second.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"command": wmbusmeters, "device": device, "link_modes": []}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"device": "device_in_use"}
    unique_ids = [e.unique_id for e in hass.config_entries.async_entries(DOMAIN)]
    assert len(unique_ids) == len(set(unique_ids))


async def test_reconfigure_onto_an_ignored_dongle_takes_it(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    hass_ws_client: WebSocketGenerator,
    tmp_path: Path,
) -> None:
    """A plugged-in iM871A was offered and ignored; later a receiver is moved onto it: the
    receiver gets it and the ignored entry goes, so no two entries share the port's unique
    id. Before: both kept it."""
    dongle = PtyDongle(tmp_path)
    stick = Im871aEmulator(dongle)
    stick.start()
    try:
        result = await discover_im871a(hass, str(dongle.path))
        await ignore_flow(hass, hass_ws_client, result["flow_id"])
        entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
        entry.add_to_hass(hass)
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                "command": wmbusmeters,
                "device": str(dongle.path),
                "device_type": "im871a",
                "link_modes": ["c1", "t1"],
            },
        )
        assert result["reason"] == "reconfigure_successful", result
        await hass.async_block_till_done()
        entries = hass.config_entries.async_entries(DOMAIN)
        assert [e.entry_id for e in entries] == [entry.entry_id]
        assert entry.unique_id == str(dongle.path)
    finally:
        stick.stop()
        dongle.unplug()


# -- 5. the USB confirm step ----------------------------------------------------------------


async def test_usb_confirm_takes_a_raw_tty_and_offers_no_wired_bus(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path
) -> None:
    """The dongle type dropdown of a discovered port: rawtty (no link modes of its own) shows
    the form again with its error; mbus, a wired master with a form of its own, is not
    offered. Before: KeyError for both."""
    dongle = PtyDongle(tmp_path)
    try:
        result = await discover_im871a(hass, str(dongle.path))
        schema = {str(key): key for key in result["data_schema"].schema}
        options = result["data_schema"].schema[schema["device_type"]].config["options"]
        assert "rawtty" in options
        assert "mbus" not in options
        answer = {"command": str(tmp_path / "nothing"), "device_type": "rawtty", "link_modes": []}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"command": "command_not_found"}
        with pytest.raises(InvalidData):
            await hass.config_entries.flow.async_configure(
                result["flow_id"], {**answer, "device_type": "mbus"}
            )
        # A raw tty needs no link modes and no detection: saved as it is.
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**answer, "command": wmbusmeters}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert (result["data"]["device_type"], result["data"]["link_modes"]) == ("rawtty", [])
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(result["result"].entry_id)
    finally:
        dongle.unplug()


# -- 6. a reload under traffic --------------------------------------------------------------


async def test_a_telegram_during_a_reload_leaves_no_orphan(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A telegram arrives while the receiver reloads, in the moment its sensors are being
    removed: after the reload every entity is provided again and none is an orphan.
    Before: the sensor factory took the telegram's fields as new and added them to the
    unloading platform ("unavailable" orphans, "does not generate unique IDs")."""
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Tap", kamstrup, TAP)]
    )
    await setup_receiver(hass, entry)
    await until(hass, lambda: has_value(hass, "sensor.tap_total"), "the meter's total")
    coordinator = entry.runtime_data.coordinator
    telegram = coordinator.meters.by_id[TAP].last_telegram
    assert telegram is not None
    injected: list[bool] = []

    @callback
    def on_removed(event: Event[EventStateChangedData]) -> None:
        # wmbusmeters' next line, read by the runner while the platform unloads.
        # An unloading platform's entity is left "unavailable", marked restored.
        new = event.data["new_state"]
        removed = new is None or bool(new.attributes.get("restored"))
        if event.data["entity_id"] == "sensor.tap_total" and removed and not injected:
            injected.append(True)
            coordinator.handle_telegram(telegram)

    remove = hass.bus.async_listen(EVENT_STATE_CHANGED, on_removed)
    assert await hass.config_entries.async_reload(entry.entry_id)
    remove()
    assert injected
    await until(hass, lambda: has_value(hass, "sensor.tap_total"), "the total after the reload")
    await hass.async_block_till_done()
    assert orphans(hass) == []
    assert not [m for m in integration_warnings(caplog) if "unique ID" in m]
    assert not [r for r in caplog.records if "does not generate unique IDs" in r.getMessage()]
    assert await hass.config_entries.async_unload(entry.entry_id)


# -- 7. smaller ones ------------------------------------------------------------------------


async def test_a_missing_radio_said_again_and_again_holds_one_wait(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """wmbusmeters saying "no device found" a thousand times (a dongle missing for days)
    leaves one wait for Home Assistant's start, not a thousand clean-ups on the entry, and
    one repair. Before: each line added one."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "auto", TAP)])
    await setup_receiver(hass, entry)
    before = len(entry._on_unload or [])
    runner = entry.runtime_data.supervisor.runner
    for _ in range(1000):
        runner._on_event(DeviceNotFound("No wmbus device found! Exiting!"))
    await hass.async_block_till_done()
    assert len(entry._on_unload or []) == before
    registry = ir.async_get(hass)
    issue_id = f"device_missing_{entry.entry_id}"
    assert registry.async_get_issue(DOMAIN, issue_id) is not None
    # Back (a telegram), then gone again: the repair comes again.
    runner._on_telegram(Telegram(TAP, "auto", "water", "", {"total_m3": 1.0}))
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    runner._on_event(DeviceNotFound("No wmbus device found! Exiting!"))
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, issue_id) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_pending_restart_is_dropped_when_the_receiver_unloads(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """A meter change is applied a moment later (debounced); the receiver unloads while it
    is applied: no wmbusmeters is started behind the unload. Before: the restart ran after
    the stop and left a process running."""
    entry = receiver_entry(wmbusmeters, quiet)
    await setup_receiver(hass, entry)
    coordinator = entry.runtime_data.coordinator
    supervisor = entry.runtime_data.supervisor
    checking = asyncio.Event()
    release = asyncio.Event()

    async def slow_check(_version: str) -> None:
        checking.set()
        await release.wait()

    with patch.object(coordinator.meters, "async_check_drivers", slow_check):
        task = hass.async_create_task(supervisor._async_apply())
        await asyncio.wait_for(checking.wait(), 30)
        assert await hass.config_entries.async_unload(entry.entry_id)
        release.set()
        await task
    assert not supervisor.runner.running
    assert supervisor.runner.pid is None
    # The restart button or action a moment after the unload starts nothing either.
    assert supervisor.restart() is False
    assert not supervisor.runner.running


async def test_a_crash_loop_is_one_warning(
    hass: HomeAssistant,
    fake_command: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FAKE wmbusmeters crashing at each start (the real one cannot be made to): one warning
    when it goes down, not one per backoff; the crash-loop repair still comes. Before: a
    WARNING at every restart, forever."""
    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "crash_with_long_error")
    entry = receiver_entry(fake_command, "auto")
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    runner._backoff_initial = runner._backoff_max = 0.01
    issue_id = f"crash_loop_{entry.entry_id}"
    registry = ir.async_get(hass)
    await until(hass, lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, "crash loop")
    await until(hass, lambda: runner.failures >= 8, "eight crashes")
    stopped = [m for m in integration_warnings(caplog) if m.startswith("wmbusmeters stopped")]
    assert len(stopped) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_receiver_entities_say_what_they_are(
    hass: HomeAssistant,
    wmbusmeters: str,
    quiet: Path,
) -> None:
    """ "Running" is a running sensor (not connectivity); the restart and telegram counters
    are totals that only grow (a restart of Home Assistant resets them)."""
    entry = receiver_entry(wmbusmeters, quiet, title="Radio")
    await setup_receiver(hass, entry)
    registry = er.async_get(hass)
    running = registry.async_get_entity_id("binary_sensor", DOMAIN, f"{entry.entry_id}_running")
    assert running is not None
    assert registry.async_get(running).original_device_class == BinarySensorDeviceClass.RUNNING  # type: ignore[union-attr]
    for key in ("restarts", "telegrams"):
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_{key}")
        assert entity_id is not None
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_leak_stays_on_across_a_restart(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, quiet: Path
) -> None:
    """A meter reported a leak, then Home Assistant restarted: its problem sensor shows the
    leak (and the status words) until the meter is heard again, hours later perhaps.
    Before: unknown."""
    registry = er.async_get(hass)
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", kamstrup, TAP)])
    entry.add_to_hass(hass)
    registry.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        f"{TAP}_problem",
        config_entry=entry,
        suggested_object_id="tap_problem",
    )
    # Saved while the meter was silent (unavailable): the status is in the entity's data.
    mock_restore_cache_with_extra_data(
        hass, [(State("binary_sensor.tap_problem", "unavailable"), {"status": "LEAK"})]
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get("binary_sensor.tap_problem")
    assert state is not None
    assert state.state == "on"
    assert state.attributes["status"] == "LEAK"
    # A reload (its entities were "unavailable" while it stopped): still the leak.
    assert await hass.config_entries.async_reload(entry.entry_id)

    def shown() -> tuple[str, object] | None:
        state = hass.states.get("binary_sensor.tap_problem")
        return (state.state, state.attributes.get("status")) if state else None

    await until(hass, lambda: shown() not in (None, ("unavailable", None)), "the sensor back")
    assert shown() == ("on", "LEAK")
    # Heard again, all well: off.
    entry.runtime_data.coordinator.handle_telegram(
        Telegram(TAP, kamstrup, "water", "", {"status": "OK", "total_m3": 1.0})
    )
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.tap_problem").state == "off"  # type: ignore[union-attr]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_last_telegram_stays_out_of_the_activity_log(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ "Last telegram" changes with every telegram: it is registered disabled, so it writes
    neither the device page's activity log nor a recorder row per telegram; the readings
    are there."""
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Tap", kamstrup, TAP)]
    )
    await setup_receiver(hass, entry)
    await until(hass, lambda: has_value(hass, "sensor.tap_total"), "the meter's total")
    registry = er.async_get(hass)
    entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{TAP}_timestamp")
    assert entity_id is not None
    assert registry.async_get(entity_id).disabled_by is er.RegistryEntryDisabler.INTEGRATION  # type: ignore[union-attr]
    assert hass.states.get(entity_id) is None
    # Later telegrams do not build it again each time (HA turns a disabled entity away).
    turned_away = len([r for r in caplog.records if "because it's disabled" in r.getMessage()])
    for second in range(3):
        stamp = f"2026-12-05T10:00:0{second}Z"
        entry.runtime_data.coordinator.handle_telegram(
            Telegram(TAP, kamstrup, "water", stamp, {"total_m3": 7.0, "timestamp": stamp})
        )
        await hass.async_block_till_done()
    again = [r for r in caplog.records if "because it's disabled" in r.getMessage()]
    assert again[turned_away:] == []
    assert await hass.config_entries.async_unload(entry.entry_id)

"""Wired M-Bus: an M-Bus master on a serial port, played by a pty whose far end answers as the
meters on the bus do (tests/pty_dongle.py MbusSlaves, with the RSP_UD frames recorded in
wmbusmeters' simulations/simulation_mbus.txt). The real wmbusmeters polls them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.wmbusmeters.const import DOMAIN

from .common import has_value, start_receiver_flow, until
from .pty_dongle import MbusSlaves, PtyDongle, mbus_frames

FRAMES = mbus_frames((Path(__file__).parent / "data" / "simulation_mbus.txt").read_text())
#: The first recorded frame: a Sensostar heat meter, id 10484075, 8608 kWh.
SENSOSTAR = FRAMES[0]
ENERGY = "sensor.heat_total"


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[MbusSlaves]:
    """An M-Bus master plugged in, with a Sensostar at primary address 5."""
    master = PtyDongle(tmp_path, "usb-FTDI_MBus_Master-if00-port0")
    slaves = MbusSlaves(master)
    slaves.add(5, SENSOSTAR)
    yield slaves
    slaves.stop()
    master.unplug()


async def add_bus(hass: HomeAssistant, wmbusmeters: str, bus: MbusSlaves) -> ConfigEntry:
    """The M-Bus receiver, added in the UI."""
    result = await start_receiver_flow(hass, "mbus")
    assert result["step_id"] == "mbus"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"command": wmbusmeters, "device": str(bus.master.path), "baud_rate": "2400"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["device_type"] == "mbus"
    assert result["data"]["baud_rate"] == 2400
    await hass.async_block_till_done()
    return result["result"]  # type: ignore[no-any-return]


async def add_wired_meter(hass: HomeAssistant, entry: ConfigEntry, **form: Any) -> dict[str, Any]:
    flow = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "meter"), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(  # type: ignore[no-any-return]
        flow["flow_id"], {"name": "Heat", "meter_id": "10484075", "key": "", **form}
    )


async def state_of(hass: HomeAssistant, entity_id: str, wanted: set[str]) -> str:
    """The entity's state once it is one of `wanted` ("value": any reading)."""

    def shown() -> str | None:
        state = hass.states.get(entity_id)
        if state is not None and (
            state.state in wanted or ("value" in wanted and has_value(hass, entity_id))
        ):
            return state.state
        return None

    await until(hass, shown, f"{entity_id} to be one of {sorted(wanted)}")
    return shown()  # type: ignore[return-value]


@pytest.mark.parametrize("primary", [5, None], ids=["primary", "secondary"])
async def test_wired_meter_is_polled(
    hass: HomeAssistant, wmbusmeters: str, bus: MbusSlaves, primary: int | None
) -> None:
    """Receiver and meter set up in the UI; wmbusmeters polls the meter every 2 s at its
    primary address (REQ_UD2 to 5) or its secondary one (a selection of 10484075, then
    REQ_UD2 to 253), and the answer's values become entities."""
    bus.start()
    entry = await add_bus(hass, wmbusmeters, bus)
    form: dict[str, Any] = {"driver": "sensostar", "poll_interval": 2}
    if primary is not None:
        form["primary_address"] = primary
    result = await add_wired_meter(hass, entry, **form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert await state_of(hass, ENERGY, {"value"}) == "8608"
    if primary is None:
        assert ("SELECT", "10484075") in bus.requests
        assert ("REQ_UD2", 0xFD) in bus.requests
    else:
        assert ("REQ_UD2", 5) in bus.requests
    # wmbusmeters is told the interval (its own timer then paces the polls, measured 2-4 s
    # apart), and it goes on polling: two more polls, each answered.
    runner = entry.runtime_data.supervisor.runner
    told = [p.read_text() for p in runner.config_dir.rglob("*") if p.is_file()]
    assert any("pollinterval=2s" in text.splitlines() for text in told)
    polls = sum(1 for kind, _ in bus.requests if kind == "REQ_UD2")
    telegrams = runner.counters.telegrams

    def polled_again() -> bool:
        return (
            sum(1 for kind, _ in bus.requests if kind == "REQ_UD2") >= polls + 2
            and runner.counters.telegrams >= telegrams + 2
        )

    await until(hass, polled_again, "two more polls of the meter, each answered")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_silent_meter_becomes_unavailable_and_recovers(
    hass: HomeAssistant, wmbusmeters: str, bus: MbusSlaves
) -> None:
    """A bus that stops answering: after the missed polls the meter shows unavailable (the
    receiver still runs: no restart, no crash), and it is back with the next answer."""
    bus.start()
    entry = await add_bus(hass, wmbusmeters, bus)
    await add_wired_meter(hass, entry, driver="sensostar", primary_address=5, poll_interval=2)
    assert await state_of(hass, ENERGY, {"value"}) == "8608"
    runner = entry.runtime_data.supervisor.runner
    restarts = runner.counters.restarts
    bus.answering = False
    await state_of(hass, ENERGY, {"unavailable"})
    assert entry.runtime_data.availability.receiving
    assert runner.counters.restarts == restarts
    assert runner.last_error is None
    bus.answering = True
    assert await state_of(hass, ENERGY, {"8608"}) == "8608"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_wired_meter_form_errors(
    hass: HomeAssistant, wmbusmeters: str, bus: MbusSlaves
) -> None:
    """A wired meter needs its driver (auto cannot be polled), a whole primary address and
    a poll interval of whole seconds (the boxes' limits keep out 251 and 1); the flow says
    which, translated."""
    entry = await add_bus(hass, wmbusmeters, bus)
    flow = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "meter"), context={"source": SOURCE_USER}
    )
    keys = {str(key) for key in flow["data_schema"].schema}
    assert {"primary_address", "poll_interval"} <= keys
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"],
        {
            "name": "Heat",
            "meter_id": "10484075",
            "driver": "auto",
            "key": "",
            "primary_address": 2.5,
            "poll_interval": 2.5,
        },
    )
    assert result["errors"] == {
        "driver": "driver_required",
        "primary_address": "invalid_primary_address",
        "poll_interval": "invalid_poll_interval",
    }
    await hass.config_entries.async_unload(entry.entry_id)


async def test_mbus_form_errors(hass: HomeAssistant, wmbusmeters: str, tmp_path: Path) -> None:
    """The M-Bus form refuses a port that is not there and a keyword (auto is no serial
    port)."""
    result = await start_receiver_flow(hass, "mbus")
    for device, error in (
        (str(tmp_path / "ttyUSB9"), "device_not_found"),
        ("auto", "not_a_serial_port"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"command": wmbusmeters, "device": device, "baud_rate": "2400"}
        )
        assert result["errors"] == {"device": error}


async def test_reconfigure_bus_speed(
    hass: HomeAssistant, wmbusmeters: str, bus: MbusSlaves
) -> None:
    """Reconfigure shows the port and speed; a new speed is saved and wmbusmeters restarts
    on it (its device line names the speed)."""
    entry = await add_bus(hass, wmbusmeters, bus)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["step_id"] == "reconfigure_mbus"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"command": wmbusmeters, "device": str(bus.master.path), "baud_rate": "9600"},
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["baud_rate"] == 9600
    # The restart is debounced (quick changes: one restart).
    await until(
        hass,
        lambda: entry.runtime_data.supervisor.runner.config.device_spec.endswith(":mbus:9600"),
        "wmbusmeters restarted on the port at 9600 bps",
    )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_removed_wired_meter_leaves_no_poll_watch(
    hass: HomeAssistant, wmbusmeters: str, bus: MbusSlaves
) -> None:
    """A wired meter deleted while it is watched: its watch ends with it (no timer left to
    mark a meter that is gone)."""
    bus.start()
    entry = await add_bus(hass, wmbusmeters, bus)
    await add_wired_meter(hass, entry, driver="sensostar", primary_address=5, poll_interval=60)
    watch = entry.runtime_data.coordinator.watch
    assert "10484075" in watch._poll_watch
    subentry_id = next(iter(entry.subentries))
    hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()
    assert watch._poll_watch == {}
    await hass.config_entries.async_unload(entry.entry_id)

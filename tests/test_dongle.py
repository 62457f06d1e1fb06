"""A serial dongle, emulated on a pty and read by the real wmbusmeters, set up through the UI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
import time
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.wmbusmeters import supervisor
from custom_components.wmbusmeters.const import DOMAIN

from .common import (
    has_value,
    meter,
    receiver_entry,
    setup_receiver,
    start_receiver_flow,
    until,
    until_sent,
)
from .conftest import DATA, RepairFix
from .pty_dongle import Im871aEmulator, PtyDongle, rawtty_telegrams, split_telegrams

#: Two room sensors' telegrams as a raw-telegram tty carries them (wmbusmeters' own sample).
ROOMS = rawtty_telegrams((DATA / "serial_rawtty_ok.hex").read_text())


async def send_until(
    hass: HomeAssistant, send: Callable[[], Awaitable[None]], *entity_ids: str
) -> None:
    """Let the emulated meters send, again and again as real ones do, until every entity
    has a value."""
    await until_sent(
        hass,
        send,
        lambda: all(has_value(hass, entity_id) for entity_id in entity_ids),
        f"a value of {', '.join(entity_ids)}",
    )


@pytest.fixture
def dongle(tmp_path: Path) -> Iterator[PtyDongle]:
    """A dongle plugged in for the test."""
    emulated = PtyDongle(tmp_path)
    yield emulated
    emulated.unplug()


async def receiver_form(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    result = await start_receiver_flow(hass)
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)  # type: ignore[return-value]


async def test_a_serial_port_needs_its_dongle_type_and_the_dongle(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle
) -> None:
    """A serial port alone is refused (wmbusmeters could never start on it); with a type, the
    type's link-mode rules apply; then wmbusmeters itself looks for that dongle on the port
    and nothing is saved while it finds none."""
    port = str(dongle.path)
    result = await receiver_form(
        hass, {"command": wmbusmeters, "device": port, "link_modes": ["c1"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"device_type": "device_type_required"}
    answer = {
        "command": wmbusmeters,
        "device": port,
        "device_type": "cul",
        "link_modes": ["c1", "t1"],
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
    assert result["errors"] == {"link_modes": "link_modes_unsupported"}
    assert result["description_placeholders"]["modes"] == "C1, S1, T1"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**answer, "device_type": "im871a"}
    )
    assert result["errors"] == {"base": "dongle_not_found"}
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_a_silent_dongle_raises_device_missing_without_a_restart_loop(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved dongle that stops answering (the port is still there): the device line is built
    from port, type and modes, the device-missing repair says so, and no restart loop
    follows while the port stays."""
    monkeypatch.setattr(supervisor, "REPLUG_CHECK_INTERVAL", timedelta(seconds=0.5))
    checks: list[str] = []
    check_replug = supervisor.ReceiverSupervisor._async_check_replug

    async def counted(self: supervisor.ReceiverSupervisor, now: datetime) -> None:
        await check_replug(self, now)
        checks.append(self.runner.config.device)

    monkeypatch.setattr(supervisor.ReceiverSupervisor, "_async_check_replug", counted)
    port = str(dongle.path)
    entry = receiver_entry(wmbusmeters, port, device_type="im871a", link_modes=["c1"])
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    assert runner.config.device_spec == f"{port}:im871a:c1"
    issue_id = f"device_missing_{entry.entry_id}"
    await until(
        hass,
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
        "the device-missing repair",
    )
    seen = len(checks)
    await until(hass, lambda: len(checks) >= seen + 3, "three more replug checks")
    assert checks[seen:] == [port] * (len(checks) - seen)  # (the port is there all along)
    assert runner.counters.restarts == 0
    await hass.config_entries.async_unload(entry.entry_id)


async def test_rtl_sdr_tuning_reaches_wmbusmeters(hass: HomeAssistant, wmbusmeters: str) -> None:
    """An RTL-SDR stick's serial, ppm and frequency from the form's section become
    wmbusmeters' own device syntax; a serial with a space (it would reach wmbusmeters'
    rtl_sdr shell line) and a fractional ppm are refused."""
    form = {"command": wmbusmeters, "device": "rtlwmbus", "link_modes": []}
    result = await receiver_form(hass, {**form, "rtl_sdr": {"rtl_serial": "stick 1"}})
    assert result["errors"] == {"base": "invalid_rtl_option"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "rtl_sdr": {"rtl_ppm": 1.5}}
    )
    assert result["errors"] == {"base": "invalid_rtl_option"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**form, "rtl_sdr": {"rtl_serial": "00000101", "rtl_ppm": -17, "rtl_frequency": 868.95}},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        **form,
        "device_type": "",
        "rtl_serial": "00000101",
        "rtl_ppm": -17,
        "rtl_frequency": 868.95,
    }
    await hass.async_block_till_done()
    entry = result["result"]
    assert (
        entry.runtime_data.supervisor.runner.config.device_spec
        == "rtlwmbus[00000101](ppm=-17):868.95M"
    )
    # No stick here: wmbusmeters starts on that line and reports the stick missing.
    issue_id = f"device_missing_{entry.entry_id}"
    await until(
        hass,
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
        "the device-missing repair",
    )
    assert entry.runtime_data.supervisor.runner.counters.restarts == 0
    await hass.config_entries.async_unload(entry.entry_id)


async def test_auto_keeps_no_type(hass: HomeAssistant, wmbusmeters: str) -> None:
    """A type chosen with auto (which finds the dongle itself) is not stored."""
    result = await receiver_form(
        hass,
        {"command": wmbusmeters, "device": "auto", "device_type": "cul", "link_modes": ["t1"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["device_type"] == ""
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_raw_telegram_dongle_end_to_end(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle
) -> None:
    """Receiver and meters added in the UI on an emulated raw-telegram dongle: the telegrams it
    sends become the meters' values."""
    result = await receiver_form(
        hass, {"command": wmbusmeters, "device": str(dongle.path), "device_type": "rawtty"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    for name, driver, meter_id in (
        ("Bedroom", "lansenth", "00010203"),
        ("Living room", "rfmamb", "11772288"),
    ):
        flow = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "meter"), context={"source": SOURCE_USER}
        )
        flow = await hass.config_entries.subentries.async_configure(
            flow["flow_id"], {"name": name, "meter_id": meter_id, "driver": driver, "key": ""}
        )
        assert flow["type"] is FlowResultType.CREATE_ENTRY
    await send_until(
        hass,
        lambda: dongle.send_raw_telegrams(ROOMS),
        "sensor.bedroom_temperature",
        "sensor.living_room_humidity",
    )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bedroom_temperature").state == "21.8"
    humidity = hass.states.get("sensor.living_room_humidity")
    assert (humidity.state, humidity.attributes["unit_of_measurement"]) == ("44.2", "%")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_receiver_saved_with_a_bare_port_is_repaired(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle, repair_fix: RepairFix
) -> None:
    """An entry saved (by an earlier version, 1.1) with a bare serial port: migrated to 1.2,
    it does not start wmbusmeters for nothing but raises a repair; a type wmbusmeters does not
    find there is refused, the right one starts it, and the telegrams flow."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Kitchen radio",
        version=1,
        minor_version=1,
        data={"command": wmbusmeters, "device": str(dongle.path), "link_modes": []},
        unique_id=str(dongle.path),
        subentries_data=[meter("Bedroom", "lansenth", "00010203")],
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.minor_version == 2
    assert entry.data["device_type"] == ""
    issue_id = f"device_type_missing_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"title": "Kitchen radio", "device": str(dongle.path)}

    flow = await repair_fix.start(issue_id)
    assert flow["step_id"] == "device_type"
    flow = await repair_fix.submit(flow["flow_id"], {"device_type": "im871a", "link_modes": []})
    assert flow["errors"] == {"link_modes": "link_modes_required"}
    # wmbusmeters looks for an iM871A on the port first: there is none (it carries raw
    # telegrams), so nothing is saved.
    flow = await repair_fix.submit(flow["flow_id"], {"device_type": "im871a", "link_modes": ["t1"]})
    assert flow["errors"] == {"base": "dongle_not_found"}
    assert entry.data["device_type"] == ""
    flow = await repair_fix.submit(flow["flow_id"], {"device_type": "rawtty", "link_modes": []})
    assert flow["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data["device_type"] == "rawtty"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await send_until(hass, lambda: dongle.send_raw_telegrams(ROOMS), "sensor.bedroom_temperature")
    assert hass.states.get("sensor.bedroom_temperature").state == "21.8"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_unplug_and_replug(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dongle pulled out: the device-missing repair appears and the meter goes unavailable;
    plugged in again (a new tty behind the same by-id name): it recovers by itself, the repair
    clears, values flow again. The seconds each takes are printed (run with -s)."""
    dongle = PtyDongle(tmp_path)
    entry = receiver_entry(
        wmbusmeters, dongle.path, [meter("Bedroom", "lansenth", "00010203")], device_type="rawtty"
    )
    await setup_receiver(hass, entry)

    async def until_value() -> None:
        # The dongle of the moment (replugging makes a new one).
        await send_until(
            hass, lambda: dongle.send_raw_telegrams(ROOMS), "sensor.bedroom_temperature"
        )

    await until_value()
    issue_id = f"device_missing_{entry.entry_id}"
    registry = ir.async_get(hass)

    unplugged = time.monotonic()
    dongle.unplug()
    await until(
        hass,
        lambda: registry.async_get_issue(DOMAIN, issue_id) is not None,
        "the device-missing repair",
    )
    to_repair = time.monotonic() - unplugged
    assert hass.states.get("sensor.bedroom_temperature").state == "unavailable"
    # A person replugs seconds later; here, once the integration has seen the port gone (its
    # replug check), or a replug before that check would be no replug to it.
    await until(
        hass,
        lambda: entry.runtime_data.supervisor._seen_unplugged,
        "the replug check to see the port gone",
    )

    dongle = PtyDongle(tmp_path)  # the same name, a new tty
    replugged = time.monotonic()
    await until_value()
    to_value = time.monotonic() - replugged
    assert hass.states.get("sensor.bedroom_temperature").state == "21.8"
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    with capsys.disabled():
        print(f"\nunplug -> repair {to_repair:.1f} s, replug -> first value {to_value:.1f} s")
    await hass.config_entries.async_unload(entry.entry_id)
    dongle.unplug()


@pytest.mark.parametrize(
    ("link_modes", "firmware", "expected"),
    [(["t1"], 0x13, 0x03), (["c1", "t1"], 0x15, None)],
    ids=["t1", "c1+t1"],
)
async def test_im871a_detected_configured_and_read(
    hass: HomeAssistant,
    wmbusmeters: str,
    dongle: PtyDongle,
    link_modes: list[str],
    firmware: int,
    expected: int | None,
) -> None:
    """An emulated IMST iM871A set up in the UI: the real wmbusmeters detects it, sets the link
    mode chosen in the form, and the telegrams the stick hears become values."""
    stick = Im871aEmulator(dongle, firmware=firmware)
    stick.start()
    try:
        result = await receiver_form(
            hass,
            {
                "command": wmbusmeters,
                "device": str(dongle.path),
                "device_type": "im871a",
                "link_modes": link_modes,
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        flow = await hass.config_entries.subentries.async_init(
            (entry.entry_id, "meter"), context={"source": SOURCE_USER}
        )
        await hass.config_entries.subentries.async_configure(
            flow["flow_id"],
            {"name": "Bedroom", "meter_id": "00010203", "driver": "lansenth", "key": ""},
        )

        async def hear_all() -> None:
            for telegram in split_telegrams(ROOMS):
                stick.hear(telegram)

        await send_until(hass, hear_all, "sensor.bedroom_temperature")
        assert hass.states.get("sensor.bedroom_temperature").state == "21.8"
        assert stick.link_mode is not None  # wmbusmeters set it
        if expected is not None:
            assert stick.link_mode == expected  # T1 in the stick's numbering
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        stick.stop()

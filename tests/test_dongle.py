"""A serial dongle, emulated on a pty and read by the real wmbusmeters, set up through the UI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.wmbusmeters.const import DOMAIN

from .conftest import DATA
from .pty_dongle import PtyDongle, rawtty_telegrams


@pytest.fixture
def dongle(tmp_path: Path) -> Iterator[PtyDongle]:
    """A dongle plugged in for the test."""
    emulated = PtyDongle(tmp_path)
    yield emulated
    emulated.unplug()


async def receiver_form(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)  # type: ignore[return-value]


async def test_a_serial_dongle_is_saved_with_its_type(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle
) -> None:
    """A serial port alone is refused (wmbusmeters could never start on it); with the dongle's
    type it is saved, and the device line wmbusmeters gets is built from both."""
    port = str(dongle.path)
    result = await receiver_form(
        hass, {"command": wmbusmeters, "device": port, "link_modes": ["c1"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"device_type": "device_type_required"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"command": wmbusmeters, "device": port, "device_type": "im871a", "link_modes": ["c1"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "command": wmbusmeters,
        "device": port,
        "device_type": "im871a",
        "link_modes": ["c1"],
    }
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.runtime_data.runner.config.device_spec == f"{port}:im871a:c1"
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
    data = rawtty_telegrams((DATA / "serial_rawtty_ok.hex").read_text())
    async with asyncio.timeout(30):
        while (
            (bedroom := hass.states.get("sensor.bedroom_temperature")) is None
            or bedroom.state in ("unknown", "unavailable")
            or hass.states.get("sensor.living_room_humidity") is None
        ):
            dongle.send(data)  # the meters send again and again, as real ones do
            await asyncio.sleep(0.3)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bedroom_temperature").state == "21.8"
    humidity = hass.states.get("sensor.living_room_humidity")
    assert (humidity.state, humidity.attributes["unit_of_measurement"]) == ("44.2", "%")
    await hass.config_entries.async_unload(entry.entry_id)

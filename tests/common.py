"""Helpers to build receivers and meters as the config flow stores them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.device_registry import DeviceEntry
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.wmbusmeters.const import DOMAIN


def meter(name: str, driver: str, meter_id: str, key: str = "") -> ConfigSubentryData:
    """A meter subentry, as the subentry flow creates it."""
    return ConfigSubentryData(
        data={"name": name, "driver": driver, "meter_id": meter_id, "key": key},
        subentry_type="meter",
        title=name,
        unique_id=meter_id,
    )


def receiver_entry(
    command: str,
    device: Path | str,
    meters: list[ConfigSubentryData] | None = None,
    options: dict[str, Any] | None = None,
    entry_id: str | None = None,
    title: str = "wmbusmeters test",
    device_type: str = "",
    link_modes: list[str] | None = None,
) -> MockConfigEntry:
    """A receiver config entry on a device (a simulation file in most tests), as the current
    flow saves it (1.2)."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=entry_id,
        title=title,
        version=1,
        minor_version=2,
        data={
            "command": command,
            "device": str(device),
            "device_type": device_type,
            "link_modes": link_modes or [],
        },
        options=options or {},
        unique_id=str(device),
        subentries_data=meters or [],
    )


async def setup_receiver(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up a receiver entry."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def device_subentry(device: DeviceEntry, entry_id: str) -> str | None:
    """The subentry a device belongs to (2026.10: one; 2026.2: a set per entry)."""
    if hasattr(device, "config_subentry_id"):
        return device.config_subentry_id  # type: ignore[no-any-return]
    subentries = device.config_entries_subentries[entry_id]
    return next(iter(subentries)) if len(subentries) == 1 else None


async def start_receiver_flow(hass: HomeAssistant, kind: str = "radio") -> dict[str, Any]:
    """The add-receiver flow at the form of one kind (the menu's radio, network or mbus)."""
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert menu["type"] is FlowResultType.MENU
    assert menu["menu_options"] == ["radio", "network", "mbus"]
    return await hass.config_entries.flow.async_configure(  # type: ignore[return-value]
        menu["flow_id"], {"next_step_id": kind}
    )

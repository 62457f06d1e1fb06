"""Helpers to build receivers and meters as the config flow stores them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from homeassistant.config_entries import (
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_USB,
    SOURCE_USER,
    ConfigSubentryData,
)
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.wmbusmeters.const import DOMAIN

from .wmbus.common import RESEND_EVERY, UNTIL_TIMEOUT, until_sent as sent_until, wait_woken


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
    assert menu["menu_options"] == ["radio", "network", "mqtt_raw", "mbus", "import_setup"]
    return await hass.config_entries.flow.async_configure(  # type: ignore[return-value]
        menu["flow_id"], {"next_step_id": kind}
    )


async def until(
    hass: HomeAssistant,
    condition: Callable[[], object],
    what: str,
    timeout: float = UNTIL_TIMEOUT,
) -> None:
    """Wait for `condition()` to be true: looked at after every event on Home Assistant's
    bus (a state written, an entity registered, a flow started) and, for what the bus does
    not carry, every 50 ms. Fails with `what` if it is not true within `timeout`.

    Tests wait with this for what they can observe, never for a fixed time. The clock is
    the event loop's own, so a test that freezes HA's time still times out.
    """
    woken = asyncio.Event()

    @callback
    def wake(_event: Event[Any]) -> None:
        woken.set()

    remove = hass.bus.async_listen(MATCH_ALL, wake)
    try:
        await wait_woken(woken, condition, what, timeout)
    finally:
        remove()


async def until_sent(
    hass: HomeAssistant,
    send: Callable[[], Awaitable[object] | object],
    condition: Callable[[], object],
    what: str,
    every: float = RESEND_EVERY,
) -> None:
    """`until(hass, condition, what)` while an emulated meter sends, again and again as real
    ones do (tests/wmbus/common.py until_sent)."""
    await sent_until(partial(until, hass), send, condition, what, every)


def has_value(hass: HomeAssistant, entity_id: str) -> bool:
    """Whether the entity shows a reading (not unknown, not unavailable)."""
    state = hass.states.get(entity_id)
    return state is not None and state.state not in ("unknown", "unavailable")


def im871a_info(device: str) -> UsbServiceInfo:
    """An iM871A as Home Assistant's USB integration reports it when plugged in."""
    return UsbServiceInfo(
        device=device,
        vid="10C4",
        pid="87ED",
        serial_number="0001",
        manufacturer="IMST GmbH",
        description="IMST USB-Stick",
    )


async def discover_im871a(hass: HomeAssistant, device: str) -> dict[str, Any]:
    """The discovery flow of an iM871A plugged in on `device` (its confirm form)."""
    return await hass.config_entries.flow.async_init(  # type: ignore[return-value]
        DOMAIN, context={"source": SOURCE_USB}, data=im871a_info(device)
    )


def discovery_flows(hass: HomeAssistant) -> dict[str, dict[str, Any]]:
    """Meters offered under Discovered (their flows in progress), by meter id."""
    return {
        flow["context"]["unique_id"].removeprefix("meter_"): flow  # type: ignore[misc]
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_INTEGRATION_DISCOVERY
    }


async def ignore_flow(hass: HomeAssistant, ws_client: WebSocketGenerator, flow_id: str) -> None:
    """The Ignore button of a discovered item: the frontend's websocket call."""
    assert await async_setup_component(hass, "config", {})
    client = await ws_client(hass)
    await client.send_json_auto_id(
        {"type": "config_entries/ignore_flow", "flow_id": flow_id, "title": "Neighbour"}
    )
    response = await client.receive_json()
    assert response["success"], response
    await hass.async_block_till_done()

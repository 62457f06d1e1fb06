"""Meters the receiver hears but nobody configured are offered; adding is a click (plus a key).

Against the real wmbusmeters 2.0.0: with a meter configured it drops other meters' telegrams,
so the receiver's configuration carries a catch-all meter (driver auto, id *); the configured
meter still gets its own telegrams, once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_INTEGRATION_DISCOVERY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.wmbusmeters.const import DOMAIN, EVENT_TELEGRAM

from .common import discovery_flows as offered, meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed


async def test_discovery_beside_configured_meter(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """Others are offered with driver and media; the configured meter is read once per telegram."""
    events = async_capture_events(hass, EVENT_TELEGRAM)
    entry = receiver_entry(
        wmbusmeters,
        simulation("c1_water_multical21", "simulation_c1.txt"),
        [meter("Tap", "multical21", "76348799")],
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    await hass.async_block_till_done()

    flows = offered(hass)
    assert "76348799" not in flows
    assert {"44556677", "52525252", "78563412", "66666666"} <= flows.keys()
    assert len([e for e in events if e.data["meter_id"] == "76348799"]) == 2  # not doubled
    assert hass.states.get("sensor.tap_total").state == "6.408"

    # One click (a name) adds the meter with the driver wmbusmeters found; it reads at once.
    flow = flows["44556677"]
    assert flow["context"]["title_placeholders"] == {"name": "44556677 (cold water)"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"name": "Garden", "key": ""}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "meter_added"
    garden = next(s for s in entry.subentries.values() if s.unique_id == "44556677")
    assert dict(garden.data) == {
        "name": "Garden",
        "driver": kamstrup,
        "meter_id": "44556677",
        "key": "",
    }
    waiter = entry.runtime_data.supervisor.runner.wait_running()
    await waiter
    await run_until_played(entry)
    assert hass.states.get("sensor.garden_total").state == "20.015"

    # Ignored: never offered again, not even after a restart of wmbusmeters and of the entry.
    flow = offered(hass)["52525252"]
    await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_IGNORE},
        data={"unique_id": flow["context"]["unique_id"], "title": "x"},
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await run_until_played(entry)
    await hass.async_block_till_done()
    assert "52525252" not in offered(hass)
    assert "78563412" in offered(hass)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_encrypted_neighbour_needs_a_key(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
) -> None:
    """An encrypted meter nearby is offered as encrypted; adding it asks for the key."""
    entry = receiver_entry(wmbusmeters, simulation("aes_wrong_key", "simulation_bad_keys.txt"))
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    await hass.async_block_till_done()
    flow = offered(hass)["03065716"]
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"name": "Radiator", "key": ""}
    )
    assert result["errors"] == {"key": "key_required"}
    assert result["description_placeholders"]["encrypted"] == "yes"
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"name": "Radiator", "key": "00112233445566778899AABBCCDDEEFF"}
    )
    assert result["reason"] == "meter_added"
    assert next(iter(entry.subentries.values())).data["key"] == "00112233445566778899AABBCCDDEEFF"
    await hass.config_entries.async_unload(entry.entry_id)


async def start_discovery(
    hass: HomeAssistant, entry_id: str, meter_id: str, encrypted: bool = False
) -> Any:
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data={
            "entry_id": entry_id,
            "meter_id": meter_id,
            "driver": "multical21",
            "media": "cold water",
            "manufacturer": "Kamstrup",
            "encrypted": encrypted,
        },
    )


async def test_discovery_edge_cases(hass: HomeAssistant, wmbusmeters: str, quiet: Path) -> None:
    """Already configured, receiver gone, a bad key: clear aborts and errors, nothing lost."""
    entry = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", "76348799")])
    await setup_receiver(hass, entry)

    result = await start_discovery(hass, entry.entry_id, "76348799")
    assert result["reason"] == "meter_configured"
    result = await start_discovery(hass, "gone", "44556677")
    assert result["reason"] == "receiver_removed"

    result = await start_discovery(hass, entry.entry_id, "44556677")
    assert result["step_id"] == "discovery_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "G", "key": "123"}
    )
    assert result["errors"] == {"key": "invalid_key"}
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.config_entries.async_remove(entry.entry_id)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "G", "key": ""}
    )
    assert result["reason"] == "receiver_removed"

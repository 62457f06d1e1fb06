"""Flow paths the other modules leave out (config-flow-test-coverage): too many allowed senders,
a bus speed no selector should let through, a repair opened after its meter was removed, and a
neighbour ignored and later added by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from homeassistant.config_entries import SOURCE_IGNORE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.issues import (
    async_raise_decryption_issue,
    async_raise_duplicate_meter_issue,
    async_raise_unknown_driver_issue,
)
from custom_components.wmbusmeters.validation import read_baud_rate
from custom_components.wmbusmeters.wmbus import DecryptionProblem

from .common import (
    discovery_flows,
    has_value,
    ignore_flow,
    meter,
    receiver_entry,
    setup_receiver,
    start_receiver_flow,
    until,
)
from .conftest import RepairFix
from .test_network import free_port

TAP = "76348799"


@pytest.mark.usefixtures("socket_enabled")
async def test_too_many_allowed_senders(hass: HomeAssistant, wmbusmeters: str) -> None:
    """33 allowed senders are refused on the field, with nothing saved."""
    result = await start_receiver_flow(hass, "network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "command": wmbusmeters,
            "listen_protocol": "tcp",
            "listen_host": "127.0.0.1",
            "listen_port": free_port(),
            "line_format": "hex",
            "allowed_sources": [f"192.168.1.{n}" for n in range(1, 34)],
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"allowed_sources": "too_many_sources"}
    assert hass.config_entries.async_entries(DOMAIN) == []


@pytest.mark.parametrize("rate", ["1200", "", None, "2400bps"])
def test_a_bus_speed_outside_the_three_is_an_error(rate: str | None) -> None:
    """The speed's dropdown offers 300, 2400 and 9600 only; whatever else reaches the reader
    (an API call past the form) is a field error, never stored."""
    errors: dict[str, str] = {}
    assert read_baud_rate({"baud_rate": rate}, errors) is None
    assert errors == {"baud_rate": "invalid_baud_rate"}
    assert read_baud_rate({"baud_rate": "9600"}, {}) == 9600


async def test_a_repair_opened_after_its_meter_left_says_so(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path, repair_fix: RepairFix
) -> None:
    """A key, driver or duplicate repair whose meter was removed meanwhile (another browser
    tab, a receiver not loaded to clear its issues) ends with "This meter has been removed"."""
    entry = receiver_entry(wmbusmeters, quiet)
    await setup_receiver(hass, entry)
    common = {"entry_id": entry.entry_id, "subentry_id": "gone", "meter_id": TAP, "name": "Tap"}
    async_raise_decryption_issue(hass, **common, problem=DecryptionProblem.WRONG_KEY)
    async_raise_unknown_driver_issue(hass, **common, driver="multical21")
    async_raise_duplicate_meter_issue(hass, **common, receiver="A", owner="B")
    issues = [f"decryption_failed_{TAP}", f"unknown_driver_{TAP}"]
    issues.append(f"duplicate_meter_{entry.entry_id}_{TAP}")
    for issue_id in issues:
        result = await repair_fix.start(issue_id)
        assert result["type"] == "abort", issue_id
        assert result["reason"] == "meter_removed", issue_id
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_an_ignored_neighbour_can_be_added_by_hand(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A meter ignored under Discovered is later added in the meter form: it is read; the
    ignored entry stays (nothing offers it again)."""
    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
    await setup_receiver(hass, entry)

    await until(hass, lambda: TAP in discovery_flows(hass), "the neighbour to be offered")
    await ignore_flow(hass, hass_ws_client, discovery_flows(hass)[TAP]["flow_id"])
    flow = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "meter"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"], meter("Tap", kamstrup, TAP)["data"]
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await until(hass, lambda: has_value(hass, "sensor.tap_total"), "the added meter's total")
    sources = [e.source for e in hass.config_entries.async_entries(DOMAIN)]
    assert sorted(sources) == sorted([SOURCE_USER, SOURCE_IGNORE])
    assert await hass.config_entries.async_unload(entry.entry_id)

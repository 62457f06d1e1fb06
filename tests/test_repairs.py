"""AES key problems become fixable repair issues; fixing the key makes the meter readable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.typing import (
    WebSocketGenerator,
)

from custom_components.wmbusmeters.const import DOMAIN

from .common import meter, receiver_entry, setup_receiver, until
from .conftest import RepairFix, RunUntilPlayed

RIGHT_KEY = "28F64A24988064A079AA2C807D6102AE"
ISSUE_ID = "decryption_failed_76348799"


async def notifications(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> list[dict[str, Any]]:
    """The persistent notifications, as the frontend reads them."""
    ws = await hass_ws_client(hass)
    await ws.send_json({"id": 1, "type": "persistent_notification/get"})
    result = await ws.receive_json()
    assert result["success"]
    return result["result"]  # type: ignore[no-any-return]


async def wait_for_state(hass: HomeAssistant, entity_id: str, value: str) -> None:
    await until(
        hass,
        lambda: (state := hass.states.get(entity_id)) is not None and state.state == value,
        f"{entity_id} to be {value}",
    )


@pytest.mark.parametrize(
    ("key", "step"),
    [("28F64A24988064A079AA2C807D6102AF", "wrong_key"), ("", "missing_key")],
)
async def test_fix_key_end_to_end(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    wmbusmeters: str,
    encrypted: Path,
    key: str,
    step: str,
    run_until_played: RunUntilPlayed,
    repair_fix: RepairFix,
) -> None:
    """Wrong or missing key: issue + notification; the fix flow's key makes values appear."""
    assert await async_setup_component(hass, "persistent_notification", {})
    entry = receiver_entry(wmbusmeters, encrypted, [meter("Vand", "multical21", "76348799", key)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)

    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "decryption_failed"
    assert issue.translation_placeholders == {"name": "Vand", "meter_id": "76348799"}
    notes = await notifications(hass, hass_ws_client)
    assert [n["notification_id"] for n in notes] == [f"wmbusmeters_{ISSUE_ID}"]
    assert "Vand" in notes[0]["title"]
    assert "/config/repairs" in notes[0]["message"]
    # Nothing decoded, so no reading (entities come with their first value).
    assert hass.states.get("sensor.vand_total") is None

    flow = await repair_fix.start(ISSUE_ID)
    assert flow["type"] == "form"
    assert flow["step_id"] == step
    # Typed, or from a key file.
    assert [field["name"] for field in flow["data_schema"]] == ["key", "key_file_section"]
    flow = await repair_fix.submit(flow["flow_id"], {"key": "not a key"})
    assert flow["errors"] == {"key": "invalid_key"}
    flow = await repair_fix.submit(
        flow["flow_id"], {"key": "28f6 4a24 9880 64a0 79aa 2c80 7d61 02ae"}
    )
    assert flow["type"] == "create_entry"
    assert next(iter(entry.subentries.values())).data["key"] == RIGHT_KEY

    # wmbusmeters restarts with the key and the meter's values appear; the issue clears itself.
    await wait_for_state(hass, "sensor.vand_total", "6.408")
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None
    assert await notifications(hass, hass_ws_client) == []
    await hass.config_entries.async_unload(entry.entry_id)


async def test_key_for_unencrypted_meter(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    run_until_played: RunUntilPlayed,
    repair_fix: RepairFix,
) -> None:
    """A key set for a meter that sends in the clear: the fix offers no key, and it reads."""
    entry = receiver_entry(
        wmbusmeters,
        simulation("aes_key_but_unencrypted", "simulation_aes_removed.msg"),
        [meter("Vand", "apator162", "88888888", "0" * 32)],
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    issue_id = "decryption_failed_88888888"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.data is not None
    assert issue.data["problem"] == "not_encrypted"

    flow = await repair_fix.start(issue_id)
    assert flow["step_id"] == "not_encrypted"
    flow = await repair_fix.submit(flow["flow_id"], {"key": ""})
    assert flow["type"] == "create_entry"
    assert next(iter(entry.subentries.values())).data["key"] == ""
    await wait_for_state(hass, "sensor.vand_total", "4.848")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    await hass.config_entries.async_unload(entry.entry_id)

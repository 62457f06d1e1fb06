"""The receiver's own device: running sensor, counters, restart button, and its repair issues."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import RunnerState

from .common import meter, receiver_entry, setup_receiver, until


async def test_receiver_entities_and_button(
    hass: HomeAssistant, wmbusmeters: str, quiet: Path
) -> None:
    """Running while wmbusmeters runs; the button restarts it."""
    entry = receiver_entry(wmbusmeters, quiet)
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    await until(
        hass,
        lambda: runner.status.state is RunnerState.BACKOFF,
        "the empty simulation played",
    )
    running = [
        s for s in hass.states.async_all("binary_sensor") if s.entity_id.endswith("_running")
    ]
    assert [s.state for s in running] == ["off"]
    restarts = next(s for s in hass.states.async_all("sensor") if s.entity_id.endswith("_restarts"))
    assert restarts.state == "0"
    button = next(s.entity_id for s in hass.states.async_all("button"))
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    await until(hass, lambda: runner.counters.restarts == 1, "the restart")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_device_missing_issue(
    hass: HomeAssistant, wmbusmeters: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dongle unplugged after setup: the real wmbusmeters reports it; an issue says so."""
    monkeypatch.setattr("custom_components.wmbusmeters.device_present", lambda device: True)
    entry = receiver_entry(
        wmbusmeters,
        "/dev/ttyUSB9",
        [meter("Tap", "multical21", "76348799")],
        device_type="im871a",
        link_modes=["c1"],
    )
    await setup_receiver(hass, entry)
    issue_id = f"device_missing_{entry.entry_id}"
    await until(
        hass,
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None,
        "the device-missing repair",
    )
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"title": entry.title, "device": "/dev/ttyUSB9"}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_command_missing_and_crash_loop(
    hass: HomeAssistant, fake_command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAKE wmbusmeters that crashes at once: after 5 crashes a crash-loop issue with its last
    message; then the command disappears: a command issue; back again: it clears."""
    command = Path(fake_command)
    fake = command.read_text()
    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "crash_on_start")
    entry = receiver_entry(str(command), "auto", options={})
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    runner._backoff_initial = runner._backoff_max = 0.01  # no real waiting between crashes
    registry = ir.async_get(hass)
    await until(
        hass,
        lambda: registry.async_get_issue(DOMAIN, f"crash_loop_{entry.entry_id}") is not None,
        "the crash-loop repair",
    )
    issue = registry.async_get_issue(DOMAIN, f"crash_loop_{entry.entry_id}")
    assert issue is not None
    assert "cannot open device" in issue.translation_placeholders["last_error"]

    command.unlink()
    await until(
        hass,
        lambda: registry.async_get_issue(DOMAIN, f"command_missing_{entry.entry_id}") is not None,
        "the command-missing repair",
    )
    command.write_text(fake)
    command.chmod(0o755)
    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "silent")
    await until(
        hass,
        lambda: registry.async_get_issue(DOMAIN, f"command_missing_{entry.entry_id}") is None,
        "the command-missing repair to clear",
    )
    await hass.config_entries.async_unload(entry.entry_id)

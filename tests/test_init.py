"""A receiver sets up, runs the real wmbusmeters, and unloads leaving nothing behind."""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .common import meter, receiver_entry, setup_receiver


async def test_setup_and_unload(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path]
) -> None:
    """Setup starts wmbusmeters; unload stops and reaps it."""
    device = simulation("c1_water_multical21")
    entry = receiver_entry(wmbusmeters, device, [meter("Tap", "multical21", "76348799")])
    await setup_receiver(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    runner = entry.runtime_data.supervisor.runner
    if runner.pid is None:
        await runner.wait_running()
    pid = runner.pid
    assert pid is not None

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert runner.pid is None
    # Reaped: no such process any more (not even a zombie).
    assert not os.path.exists(f"/proc/{pid}")


async def test_missing_command_retries(hass: HomeAssistant, tmp_path: Path) -> None:
    """A wmbusmeters that vanished: setup is retried later, not failed for good."""
    entry = receiver_entry(str(tmp_path / "nope"), "auto")
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert "does not exist" in str(entry.reason)


async def test_missing_device_retries(hass: HomeAssistant, wmbusmeters: str) -> None:
    """An unplugged dongle: setup is retried, with a message naming the device."""
    entry = receiver_entry(
        wmbusmeters, "/dev/serial/by-id/usb-im871a-gone", device_type="im871a", link_modes=["c1"]
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert "usb-im871a-gone" in str(entry.reason)

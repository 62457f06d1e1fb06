"""The release's binaries run only as the release built them: the zip carries
bin/<machine>/SHA256SUMS (scripts/release), and a bundled binary whose folder does not match is
never started, offered or retried; a repair says to download the integration again. The
release is unpacked as HACS does (tests/conftest.py hacs_unpack) and one byte of the binary
altered."""

from __future__ import annotations

import hashlib
from pathlib import Path
import platform
import shutil

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import RunnerState, bundled

from .common import receiver_entry, setup_receiver, start_receiver_flow, until

DEMO = Path(__file__).parent.parent / "demo" / "simulation_demo.txt"


def flip_a_byte(binary: Path) -> bytes:
    """One byte in the middle of the file changed, its size kept, the file replaced as an
    unpacker replaces it (a running binary cannot be written in place); returns the original."""
    data = binary.read_bytes()
    middle = len(data) // 2
    replacement = binary.with_name(binary.name + ".new")
    replacement.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    replacement.chmod(binary.stat().st_mode)
    replacement.replace(binary)
    return data


def issue(hass: HomeAssistant, entry_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"bundled_altered_{entry_id}")


def test_every_bundled_file_is_listed(installed: Path) -> None:
    """SHA256SUMS of each machine names every file of its folder, with its digest."""
    for machine in ("x86_64", "aarch64"):
        folder = installed / "bin" / machine
        listed = {}
        for line in (folder / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split("  ", 1)
            listed[name] = digest
        files = {
            p.relative_to(folder).as_posix(): p
            for p in folder.rglob("*")
            if p.is_file() and p.name != "SHA256SUMS"
        }
        assert set(listed) == set(files)
        assert {"wmbusmeters", "rtl_sdr", "rtl_wmbus"} <= set(listed)
        for name, path in files.items():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[name]


async def test_an_altered_binary_is_a_repair_not_a_start(
    hass: HomeAssistant, installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One byte of the release's wmbusmeters changed: the receiver does not start it (set-up
    error, no process, no retries), a repair says to download it again, and neither the
    receiver form nor the update entity offers it. Downloaded again (the folder replaced, as
    HACS does), the receiver starts and the repair is gone."""
    monkeypatch.setattr(bundled, "BUNDLE_DIR", installed / "bin")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    binary = installed / "bin" / platform.machine() / "wmbusmeters"
    simulation = tmp_path / "simulation_demo.txt"
    simulation.write_text(DEMO.read_text())
    original = flip_a_byte(binary)

    entry = receiver_entry(str(binary), str(simulation))
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    found = issue(hass, entry.entry_id)
    assert found is not None
    assert found.translation_placeholders == {"title": entry.title, "file": "wmbusmeters"}
    assert found.severity is ir.IssueSeverity.ERROR
    assert await hass.async_add_executor_job(bundled.bundled_binary) is None  # not offered
    # Typed into the receiver form (for another radio), it is not even asked its version.
    other = tmp_path / "simulation_other.txt"
    other.write_text(DEMO.read_text())
    form = await start_receiver_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], {"command": str(binary), "device": str(other), "link_modes": []}
    )
    assert result["errors"] == {"command": "bundled_altered"}

    binary.write_bytes(original)  # what a new download brings (in place: not running)
    assert await hass.config_entries.async_reload(entry.entry_id)
    runner = entry.runtime_data.supervisor.runner
    await until(hass, lambda: runner.status.state is RunnerState.RUNNING, "wmbusmeters to run")
    assert issue(hass, entry.entry_id) is None
    assert await hass.async_add_executor_job(bundled.bundled_binary) == str(binary)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_altered_while_running_stops_at_the_next_start(
    hass: HomeAssistant, installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The binary changes under a running receiver (a download stopped half-way): its next
    start (the restart button) does not run it; the receiver is set up again, which raises
    the repair and stays stopped, instead of retrying it."""
    monkeypatch.setattr(bundled, "BUNDLE_DIR", installed / "bin")
    binary = installed / "bin" / platform.machine() / "wmbusmeters"
    simulation = tmp_path / "simulation_demo.txt"
    simulation.write_text(DEMO.read_text())
    await hass.async_add_executor_job(bundled.bundled_binary)  # executable again
    entry = receiver_entry(str(binary), str(simulation))
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    await until(hass, lambda: runner.status.state is RunnerState.RUNNING, "wmbusmeters to run")

    flip_a_byte(binary)
    assert entry.runtime_data.supervisor.restart()
    await until(hass, lambda: entry.state is ConfigEntryState.SETUP_ERROR, "the receiver to stop")
    assert issue(hass, entry.entry_id) is not None
    assert runner.pid is None

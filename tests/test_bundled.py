"""The wmbusmeters a release ships beside the integration: found when none is on PATH, made
executable again after HACS' unzip, and run."""

from __future__ import annotations

import hashlib
from pathlib import Path
import platform
import shutil
import stat
import zipfile

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.wmbusmeters.wmbus import bundled

from .common import start_receiver_flow


@pytest.fixture
def unzipped_bundle(tmp_path: Path, wmbusmeters: str) -> Path:
    """A release's bin/ folder for this machine, holding the real wmbusmeters, unpacked with
    zipfile exactly as HACS does (so without its exec bit)."""
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as release:
        info = zipfile.ZipInfo(f"bin/{platform.machine()}/wmbusmeters")
        info.external_attr = 0o755 << 16
        data = Path(wmbusmeters).read_bytes()
        release.writestr(info, data)
        release.writestr(
            f"bin/{platform.machine()}/SHA256SUMS",
            f"{hashlib.sha256(data).hexdigest()}  wmbusmeters\n",
        )
    with zipfile.ZipFile(archive) as release:
        release.extractall(tmp_path / "integration")
    binary = tmp_path / "integration" / "bin" / platform.machine() / "wmbusmeters"
    assert not binary.stat().st_mode & stat.S_IXUSR  # zipfile drops it: what the code must fix
    return tmp_path / "integration" / "bin"


async def test_bundled_binary_is_offered_and_runs(
    hass: HomeAssistant,
    unzipped_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """No wmbusmeters on PATH: the receiver form suggests the bundled one, executable again;
    saved, it decodes the demo's telegrams."""
    monkeypatch.setattr(bundled, "BUNDLE_DIR", unzipped_bundle)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    result = await start_receiver_flow(hass)
    schema = result["data_schema"].schema
    command = next(key.description["suggested_value"] for key in schema if str(key) == "command")
    assert command == str(unzipped_bundle / platform.machine() / "wmbusmeters")
    assert Path(command).stat().st_mode & stat.S_IXUSR
    simulation = tmp_path / "simulation_demo.txt"
    simulation.write_text(
        (Path(__file__).parent.parent / "demo" / "simulation_demo.txt").read_text()
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": command, "device": str(simulation), "link_modes": []}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.runtime_data.coordinator.version  # it answered --version
    await hass.config_entries.async_unload(entry.entry_id)

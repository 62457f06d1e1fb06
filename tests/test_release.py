"""The HACS release zip (scripts/release), installed as HACS installs it: unpacked with Python's
zipfile (which drops the exec bit) into custom_components/wmbusmeters/. With no wmbusmeters on
PATH, its static 3.0.0 for this machine is offered, runs and decodes. scripts/test builds the
zip first and names it in WMBUS_RELEASE_ZIP."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
import platform
import re
import shutil
import stat
import sys
import tarfile
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import bundled

from .common import has_value, meter, receiver_entry, setup_receiver, start_receiver_flow, until

DEMO = Path(__file__).parent.parent / "demo" / "simulation_demo.txt"
STANDIN = Path(__file__).parent / "rtl_sdr_standin.py"
RTL_WMBUS_SOURCE = Path(__file__).parent.parent.parent / "shared/upstream/rtl-wmbus-b6a7705.tar.gz"
#: A recorded Multical 21 C1 telegram (wmbusmeters' simulations/simulation_c1.txt), no CRCs.
C1_TELEGRAM = (
    "2A442D2C998734761B168D2091D37CAC21576C7802FF207100041308190000441308190000615B7F616713"
)


def test_release_zip_is_the_integration_and_its_binaries(installed: Path) -> None:
    """At the zip's root the integration itself; a static binary and its licences per
    machine; hacs.json names the zip."""
    manifest = json.loads((installed / "manifest.json").read_text())
    assert manifest["domain"] == DOMAIN
    for machine in ("x86_64", "aarch64"):
        binary = installed / "bin" / machine / "wmbusmeters"
        assert 0 < binary.stat().st_size <= 8 * 1024 * 1024
        assert not binary.stat().st_mode & stat.S_IXUSR  # zipfile dropped it, as in HACS
        for helper in ("rtl_sdr", "rtl_wmbus"):
            assert (installed / "bin" / machine / helper).stat().st_size > 0
        # Static, as wmbusmeters is: no loader or wrapper beside them.
        assert not (installed / "bin" / machine / "rtl_wmbus.d").exists()
        licences = {p.name for p in (installed / "bin" / machine / "licenses").iterdir()}
        assert {
            "wmbusmeters-GPL-3.0.txt",
            "libusb-LGPL-2.1.txt",
            "libxml2-MIT.txt",
            "rtl-sdr-GPL-2.0.txt",
            "rtl-wmbus-BSD-2-Clause.txt",
            "glibc-LGPL-2.1.txt",
        } <= licences
    hacs = json.loads((Path(__file__).parent.parent / "hacs.json").read_text())
    assert hacs["zip_release"] is True
    assert hacs["filename"] == Path(os.environ["WMBUS_RELEASE_ZIP"]).name


async def test_release_binary_runs_where_none_is_installed(
    hass: HomeAssistant, installed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No wmbusmeters on PATH: the form offers the release's static binary for this machine
    (executable again); it answers 3.0.0 and the demo's water meter shows its total."""
    monkeypatch.setattr(bundled, "BUNDLE_DIR", installed / "bin")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    result = await start_receiver_flow(hass)
    command = next(
        key.description["suggested_value"]
        for key in result["data_schema"].schema
        if str(key) == "command"
    )
    assert command == str(installed / "bin" / platform.machine() / "wmbusmeters")
    # The form says which program will run, and its version.
    assert result["description_placeholders"]["program"] == command
    assert result["description_placeholders"]["version"] == "3.0.0"
    simulation = tmp_path / "simulation_demo.txt"
    simulation.write_text(DEMO.read_text())
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": command, "device": str(simulation), "link_modes": []}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.runtime_data.coordinator.version == "3.0.0"
    water = meter("Koldt vand", "kamwater", "44556677")
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(water["data"]),
            subentry_type="meter",
            title=water["title"],
            unique_id=water["unique_id"],
        ),
    )
    await until(
        hass,
        lambda: has_value(hass, "sensor.koldt_vand_total"),
        "a value of sensor.koldt_vand_total",
    )
    assert float(hass.states.get("sensor.koldt_vand_total").state) > 0
    await hass.config_entries.async_unload(entry.entry_id)


async def test_update_entity_switches_to_the_bundled_binary(
    hass: HomeAssistant,
    installed: Path,
    wmbusmeters: str,
    wmbus_version: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A receiver on the system's wmbusmeters (2.0.0 or a 3.0.0 build): the update entity
    compares it with the release's static 3.0.0; installing runs the bundled binary from then
    on (the system one is untouched) and the receiver keeps decoding."""
    monkeypatch.setattr(bundled, "BUNDLE_DIR", installed / "bin")
    simulation = tmp_path / "simulation_demo.txt"
    simulation.write_text(DEMO.read_text())
    system = Path(wmbusmeters).read_bytes()
    entry = receiver_entry(wmbusmeters, simulation)
    await setup_receiver(hass, entry)
    update = next(s for s in hass.states.async_all("update"))
    assert update.attributes["installed_version"] == entry.runtime_data.coordinator.version
    assert update.attributes["latest_version"] == "3.0.0"
    # Release notes: the changelog's section of the release that ships it (in the zip).
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "update/release_notes", "entity_id": update.entity_id})
    notes = (await client.receive_json())["result"]
    assert notes.startswith("## ")
    assert "wmbusmeters 3.0.0" in notes
    # The first release section that ships it (an "Unreleased" one above it does not).
    sections = (installed / "CHANGELOG.md").read_text().split("\n## ")[1:]
    shipping = next(part for part in sections if "wmbusmeters 3.0.0" in part)
    assert notes == f"## {shipping}".strip()
    if wmbus_version != "2.0.0":
        assert update.state == "off"  # the same version: nothing to install
        await hass.config_entries.async_unload(entry.entry_id)
        return
    assert update.state == "on"
    await hass.services.async_call(
        "update", "install", {"entity_id": update.entity_id}, blocking=True
    )
    await hass.async_block_till_done()
    bundled_path = str(installed / "bin" / platform.machine() / "wmbusmeters")
    assert entry.data["command"] == bundled_path
    assert entry.runtime_data.coordinator.version == "3.0.0"
    assert entry.runtime_data.supervisor.runner.command == bundled_path
    assert hass.states.get(update.entity_id).state == "off"
    assert Path(wmbusmeters).read_bytes() == system  # never replaced on disk
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("tuned", "rtl_wmbus_options"),
    [
        # wmbusmeters' default: 868.625 MHz, rtl_wmbus -s hears S1 and, 325 kHz up, C1/T1.
        ("868.625M", "-s -f"),
        # A frequency set in the receiver's RTL-SDR section: tuned there, no -s.
        ("868.95M", "-f"),
    ],
)
async def test_release_rtl_sdr_pipeline_decodes(
    installed: Path, tmp_path: Path, tuned: str, rtl_wmbus_options: str
) -> None:
    """The release's RTL-SDR path: rtl_sdr | rtl_wmbus | wmbusmeters, as wmbusmeters builds it
    for `rtlwmbus`, with the release's real static rtl_wmbus and wmbusmeters (exec bits
    restored after HACS' unzip). No stick exists here, so the release's rtl_sdr is replaced by
    a stand-in that plays a recorded C1 telegram as synthesized I/Q samples; and since
    wmbusmeters only starts the pipeline once librtlsdr sees a stick on USB, its own command is
    given as `rtlwmbus:CMD(...)`, which the integration never lets a user write."""
    telegrams = tmp_path / "telegrams.txt"
    telegrams.write_text(C1_TELEGRAM + "\n")
    reading = await first_reading(
        installed,
        tuned,
        rtl_wmbus_options,
        ["Tap", "kamwater", "76348799", "NOKEY"],
        {"RTL_SDR_STANDIN_TELEGRAMS": str(telegrams)},
    )
    assert reading["id"] == "76348799"
    assert reading["total_m3"] == 6.408
    assert reading["target_m3"] == 6.408


async def test_release_rtl_sdr_pipeline_decodes_a_recording(
    installed: Path, tmp_path: Path
) -> None:
    """The same pipeline on what a real stick recorded: rtl-wmbus' own sample
    (samples/rtlsdr_868.950M_1M6_samples2.cu8, 1.6 MS/s tuned to 868.95 MHz, as wmbusmeters
    samples with a frequency set) played by the stand-in rtl_sdr: the release's static
    rtl_wmbus demodulates the T1 telegram of meter 71200023 (a smoke detector no driver of
    3.0.0 reads: its media and id) and wmbusmeters prints it."""
    recording = await asyncio.to_thread(
        extract_sample, "rtlsdr_868.950M_1M6_samples2.cu8", tmp_path
    )
    reading = await first_reading(
        installed,
        "868.95M",
        "-f",
        ["Smoke", "auto", "71200023", "NOKEY"],
        {"RTL_SDR_STANDIN_RECORDING": str(recording)},
    )
    assert reading["id"] == "71200023"
    assert reading["media"] == "smoke detector"


def extract_sample(name: str, directory: Path) -> Path:
    """One of rtl-wmbus' recorded samples, from its source tarball (shared/upstream; a machine
    without it, such as a GitHub runner, downloads the tarball only for the build: skipped)."""
    if not RTL_WMBUS_SOURCE.is_file():
        pytest.skip(f"no {RTL_WMBUS_SOURCE.name} beside the repository (../shared/upstream)")
    out = directory / name
    with tarfile.open(RTL_WMBUS_SOURCE) as source:
        member = next(m for m in source.getmembers() if m.name.endswith(f"/samples/{name}"))
        extracted = source.extractfile(member)
        assert extracted is not None
        out.write_bytes(extracted.read())
    return out


async def first_reading(
    installed: Path, tuned: str, rtl_wmbus_options: str, meter_args: list[str], env: dict[str, str]
) -> dict[str, Any]:
    """The first JSON reading of the release's wmbusmeters on the stand-in's pipeline."""
    bin_dir = installed / "bin" / platform.machine()
    wmbusmeters = await asyncio.to_thread(bundled.bundled_binary, installed / "bin")
    assert wmbusmeters == str(bin_dir / "wmbusmeters")
    assert os.access(bin_dir / "rtl_wmbus", os.X_OK)
    (bin_dir / "rtl_sdr").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    (bin_dir / "rtl_sdr").chmod(0o755)
    # wmbusmeters' command for rtlwmbus (src/wmbus_rtlwmbus.cc), without its stderr file.
    pipeline = (
        f"{bin_dir}/rtl_sdr -d 0 -f {tuned} -s 1.6e6 - 2>/dev/null | "
        f"{bin_dir}/rtl_wmbus {rtl_wmbus_options}"
    )
    proc = await asyncio.create_subprocess_exec(
        wmbusmeters,
        "--format=json",
        f"rtlwmbus:CMD({pipeline})",
        *meter_args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **env},
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while True:
                line = await proc.stdout.readline()
                assert line, "wmbusmeters exited without a reading"
                if line.startswith(b"{"):
                    return json.loads(line)  # type: ignore[no-any-return]
    finally:
        os.killpg(proc.pid, 15)
        await proc.wait()


def test_every_binary_has_its_sources_and_licence(installed: Path) -> None:
    """Each program in bin/<machine>/ is listed in licenses/SOURCES.txt with its own source (a
    file with its sha256) and the libraries it links (Debian source packages with their
    versions), each with a licence file that is there; the README says where the sources are."""
    for machine in ("x86_64", "aarch64"):
        folder = installed / "bin" / machine
        programs = {
            p.name for p in folder.iterdir() if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"
        }
        assert programs == {"wmbusmeters", "rtl_sdr", "rtl_wmbus"}
        listed: dict[str, list[list[str]]] = {}
        for line in (folder / "licenses" / "SOURCES.txt").read_text().splitlines():
            if line and not line.startswith("#"):
                binary, kind, name, reference, licence = line.split("\t")
                listed.setdefault(binary, []).append([kind, name, reference, licence])
                assert (folder / "licenses" / licence).is_file(), licence
                if kind == "file":
                    assert re.fullmatch(r"[0-9a-f]{64}", reference), line
                else:
                    assert kind == "debian-source", line
                    assert reference, line
        assert set(listed) == programs
        # What each one links, by what the build links: its own source, then its libraries.
        expected = {
            "wmbusmeters": ("wmbusmeters-3.0.0", "libusb-1.0_", "libxml2_", "rtl-sdr", "gcc-"),
            "rtl_sdr": ("rtl-sdr_2.0.2", "libusb-1.0_", "rtl-sdr", "gcc-"),
            "rtl_wmbus": ("rtl-wmbus-b6a7705", "gcc-"),
        }
        for program, sources in listed.items():
            names = [name for _, name, *_ in sources]
            packages = {name for kind, name, *_ in sources if kind == "debian-source"}
            assert "glibc" in packages, program  # static glibc, its Debian source
            for prefix in expected[program]:
                assert any(n.startswith(prefix) for n in names), (program, prefix)
            if program != "rtl_wmbus":
                assert "rtl-sdr" in packages, program  # librtlsdr, Debian's
        readme = (folder / "licenses" / "README.txt").read_text()
        assert "wmbusmeters-sources.tar" in readme

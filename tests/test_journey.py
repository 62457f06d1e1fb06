"""A user's first week, in one run on the real wmbusmeters (2.0.0 and 3.0.0) and a real Home
Assistant: installed from the release zip as HACS installs it, a receiver with meters, a
neighbour ignored, a HACS update, every receiver form, reconfigures of the radio, reloads
while telegrams stream, a meter removed and added back, and every receiver deleted.

After each step the same checks: the receivers run, their meters show readings, the
integration logged nothing at WARNING or above that the step did not call for, no entity is
an orphan, no unique id is held twice, no repair issue, wmbusmeters process or configuration
folder is left over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import logging
import os
from pathlib import Path
import platform
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import RunnerState, bundled

from .common import discover_im871a, discovery_flows, ignore_flow, start_receiver_flow, until
from .conftest import hacs_unpack
from .pty_dongle import Im871aEmulator, PtyDongle
from .test_network import HEX as TAP_HEX, free_port

DEMO = Path(__file__).parent.parent / "demo" / "simulation_demo.txt"
WATER = "44556677"  # multical21 / kamwater in the demo radio
POWER = "10101010"  # amiplus
TAP = "76348799"  # a Multical 21 sent over the network
#: The demo's Multical 21 full frame (no CRCs), as an iM871A passes it on.
WATER_FRAME = bytes.fromhex(
    "2D442D2C776655441B168D2083B48D3A2046887802FF20000004132F4E000092013B3D01A1015B028101E7FF0F03"
)

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.timeout(600)]


class Journey:
    """The user's Home Assistant, and the checks made after every step."""

    def __init__(
        self,
        hass: HomeAssistant,
        caplog: pytest.LogCaptureFixture,
        config_dir: Path,
    ) -> None:
        self.hass = hass
        self.caplog = caplog
        self.config_dir = config_dir
        self._seen_records = 0
        #: Meters each receiver is expected to show readings for (entry id -> meter ids).
        self.meters: dict[str, set[str]] = {}

    # -- steps' helpers -------------------------------------------------------------------

    def receivers(self) -> list[ConfigEntry]:
        return [
            e for e in self.hass.config_entries.async_entries(DOMAIN) if e.source != SOURCE_IGNORE
        ]

    async def add_meter(self, entry: ConfigEntry, name: str, meter_id: str, driver: str) -> None:
        flow = await self.hass.config_entries.subentries.async_init(
            (entry.entry_id, "meter"), context={"source": SOURCE_USER}
        )
        result = await self.hass.config_entries.subentries.async_configure(
            flow["flow_id"], {"name": name, "meter_id": meter_id, "driver": driver, "key": ""}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        self.meters.setdefault(entry.entry_id, set()).add(meter_id)

    def meter_shows(self, meter_id: str) -> bool:
        """Some sensor of the meter shows a reading (an alarm sensor shows one before the
        reading sensors are all added)."""
        for entity in er.async_get(self.hass).entities.values():
            if (
                entity.platform == DOMAIN
                and entity.domain == "sensor"
                and entity.unique_id.startswith(f"{meter_id}_")
            ):
                state = self.hass.states.get(entity.entity_id)
                if state is not None and state.state not in ("unknown", "unavailable"):
                    return True
        return False

    # -- the checks -----------------------------------------------------------------------

    def _running(self, entry: ConfigEntry) -> bool:
        status = entry.runtime_data.supervisor.runner.status
        # A simulation that played to its end is replayed (exit 0, then a short pause).
        return status.state in (RunnerState.RUNNING, RunnerState.STARTING) or (
            status.state is RunnerState.BACKOFF and status.returncode == 0
        )

    def processes(self) -> dict[int, str]:
        """wmbusmeters processes of this test's receivers (their configuration folders)."""
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if str(self.config_dir).encode() in cmdline:
                    found[int(pid)] = cmdline.decode("utf-8", "replace")
        return found

    async def check(
        self, step: str, *, warnings: tuple[str, ...] = (), issues: tuple[str, ...] = ()
    ) -> None:
        """What must hold after every step; `warnings` and `issues` are what it called for."""
        hass = self.hass
        await hass.async_block_till_done()
        receivers = self.receivers()
        for entry in receivers:
            assert entry.state is ConfigEntryState.LOADED, (step, entry.title, entry.state)
            await until(hass, lambda e=entry: self._running(e), f"{step}: {entry.title} runs")
        for entry in receivers:
            for meter_id in self.meters.get(entry.entry_id, ()):
                await until(
                    hass, lambda m=meter_id: self.meter_shows(m), f"{step}: {meter_id} reads"
                )
        await hass.async_block_till_done()
        # Logged by the integration.
        records = self.caplog.records[self._seen_records :]
        self._seen_records = len(self.caplog.records)
        logged = [
            r.getMessage()
            for r in records
            if r.levelno >= logging.WARNING
            and (r.name.startswith("custom_components") or DOMAIN in r.getMessage())
            and "has not been tested by Home Assistant" not in r.getMessage()
        ]
        unexpected = [m for m in logged if not any(w in m for w in warnings)]
        assert unexpected == [], step
        # Orphans: registered entities of loaded receivers that no platform provides.
        registry = er.async_get(hass)
        entry_ids = {e.entry_id for e in receivers}
        for entity in registry.entities.values():
            if entity.platform != DOMAIN:
                continue
            assert entity.config_entry_id in entry_ids, (step, entity.entity_id)
            if entity.disabled_by is None:
                state = hass.states.get(entity.entity_id)
                assert state is not None, (step, entity.entity_id)
                assert not state.attributes.get("restored"), (step, entity.entity_id)
        devices = dr.async_get(hass).devices
        # 2026.10 iterates entries; 2026.2's is a dict of them.
        for item in devices:
            device = devices[item] if isinstance(item, str) else item
            if any(domain == DOMAIN for domain, _ in device.identifiers):
                # 2026.10: one entry per device; 2026.2: a set.
                owners = (
                    {device.config_entry_id}
                    if hasattr(device, "config_entry_id")
                    else set(device.config_entries)
                )
                assert owners & entry_ids, (step, device.name)
        # One unique id, one entry.
        unique_ids = [e.unique_id for e in hass.config_entries.async_entries(DOMAIN)]
        assert len(unique_ids) == len(set(unique_ids)), (step, unique_ids)
        # Issues.
        open_issues = sorted(
            issue.issue_id
            for (domain, _), issue in ir.async_get(hass).issues.items()
            if domain == DOMAIN
        )
        assert [i for i in open_issues if not i.startswith(issues)] == [], step

        # Processes: one per receiver, each its runner's own; folders of existing receivers.
        # (A process being started is not its runner's until the spawn returns: waited for.)
        def own() -> bool:
            pids = {e.runtime_data.supervisor.runner.pid for e in receivers} - {None}
            return set(self.processes()) <= pids

        await until(hass, own, f"{step}: only the receivers' own wmbusmeters to run")
        folders = {p.name for p in self.config_dir.iterdir()} if self.config_dir.exists() else set()
        assert folders <= entry_ids, (step, folders)


@contextlib.asynccontextmanager
async def streaming(port: int, line: bytes) -> AsyncIterator[list[int]]:
    """A remote radio sending the same telegram over TCP, ten a second, until the block
    ends; yields the count sent so far."""
    sent = [0]
    stop = asyncio.Event()

    async def send() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    while not stop.is_set():
                        writer.write(line)
                        await writer.drain()
                        sent[0] += 1
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 0.1)
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            # The port is closed while its receiver reloads: connect again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    task = asyncio.create_task(send())
    try:
        yield sent
    finally:
        stop.set()
        await task


async def reconfigure(hass: HomeAssistant, entry: ConfigEntry) -> Any:
    """The receiver's Reconfigure button."""
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )


async def test_a_week_with_the_integration(
    hass: HomeAssistant,
    wmbus_version: str,
    wmbusmeters: str,
    kamstrup: str,
    installed: Path,
    own_config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The journey above; 3.0.0 runs as HA OS users run it (the release's static binary),
    2.0.0 as a Core user with Debian's package (the release installed beside it)."""
    journey = Journey(hass, caplog, own_config_dir)
    monkeypatch.setattr(bundled, "BUNDLE_DIR", installed / "bin")
    if wmbus_version == "3.0.0":
        command = str(installed / "bin" / platform.machine() / "wmbusmeters")
        await hass.async_add_executor_job(bundled.bundled_binary)  # as the form does
    else:
        command = wmbusmeters
    radio = tmp_path / "simulation_demo.txt"
    radio.write_text(DEMO.read_text())
    dongles = [PtyDongle(tmp_path / "usb1", "usb-IMST_iM871A-if00"), PtyDongle(tmp_path / "usb2")]
    sticks = [Im871aEmulator(dongle) for dongle in dongles]
    for stick in sticks:
        stick.start()
    try:
        # 1. Install: a receiver through the UI, two meters.
        result = await start_receiver_flow(hass, "radio")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"command": command, "device": str(radio), "link_modes": []}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        main: ConfigEntry = result["result"]
        await journey.add_meter(main, "Koldt vand", WATER, kamstrup)
        await journey.add_meter(main, "Elmåler", POWER, "auto")
        await journey.check("install")

        # 2. A neighbour's meter is offered and ignored; it is not offered again.
        await until(hass, lambda: bool(discovery_flows(hass)), "a neighbour to be offered")
        neighbour, flow = next(iter(discovery_flows(hass).items()))
        await ignore_flow(hass, hass_ws_client, flow["flow_id"])
        heard = main.runtime_data.supervisor.runner.counters.telegrams
        await until(
            hass,
            lambda: main.runtime_data.supervisor.runner.counters.telegrams >= heard + 10,
            "the radio to play its telegrams again",
        )
        assert neighbour not in discovery_flows(hass)
        await journey.check("ignore a neighbour")

        # 3. A HACS update: the zip unpacked over the install (exec bits gone), then Home
        # Assistant restarts (the entry is set up again).
        await hass.async_add_executor_job(hacs_unpack, installed)
        assert await hass.config_entries.async_reload(main.entry_id)
        await journey.check("HACS update")

        # 4. Every receiver form opens and saves.
        result = await start_receiver_flow(hass, "radio")
        second_radio = tmp_path / "simulation_second.txt"
        second_radio.write_text(DEMO.read_text())
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {"command": command, "device": str(second_radio), "link_modes": []},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        port = free_port()
        result = await start_receiver_flow(hass, "network")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                "command": command,
                "listen_protocol": "tcp",
                "listen_host": "127.0.0.1",
                "listen_port": port,
                "line_format": "hex",
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        network: ConfigEntry = result["result"]
        await journey.add_meter(network, "Tap", TAP, kamstrup)
        wired_port = PtyDongle(tmp_path / "mbus", "usb-mbus_master-if00")
        result = await start_receiver_flow(hass, "mbus")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {"command": command, "device": str(wired_port.path), "baud_rate": "2400"},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        result = await discover_im871a(hass, str(dongles[0].path))
        assert result["step_id"] == "usb_confirm"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {"command": command, "device_type": "im871a", "link_modes": ["c1", "t1"]},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        line = f"{TAP_HEX}\n".encode()
        async with streaming(port, line):
            await journey.check("every receiver form")

            # 5. Reconfigure the radio: a dongle (type, link modes), an RTL-SDR stick with
            # its tuning, then another radio again.
            result = await reconfigure(hass, main)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"],
                {
                    "command": command,
                    "device": str(dongles[1].path),
                    "device_type": "im871a",
                    "link_modes": ["c1", "t1"],
                },
            )
            assert result["reason"] == "reconfigure_successful", result
            await until(
                hass,
                lambda: main.runtime_data.supervisor.runner.config.device == str(dongles[1].path),
                "wmbusmeters on the dongle",
            )
            await until(
                hass, lambda: main.runtime_data.availability.receiving, "the dongle to be opened"
            )
            sticks[1].hear(WATER_FRAME)
            journey.meters[main.entry_id] = {WATER}  # the dongle hears only the water meter
            await journey.check("reconfigure: a dongle")

            result = await reconfigure(hass, main)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"],
                {
                    "command": command,
                    "device": "rtlwmbus",
                    "link_modes": [],
                    "rtl_sdr": {"rtl_ppm": 5, "rtl_frequency": 868.95},
                },
            )
            assert result["reason"] == "reconfigure_successful", result
            await until(
                hass,
                lambda: main.runtime_data.supervisor.runner.config.rtl.ppm == 5,
                "the RTL tuning",
            )
            assert main.data["rtl_ppm"] == 5
            # No stick is plugged in here: wmbusmeters says so (what this step calls for).

            result = await reconfigure(hass, main)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"command": command, "device": str(radio), "link_modes": []}
            )
            assert result["reason"] == "reconfigure_successful", result
            assert not {"rtl_serial", "rtl_ppm", "rtl_frequency"} & main.data.keys()
            runner = main.runtime_data.supervisor.runner
            await until(hass, lambda: runner.config.device == str(radio), "the restart")
            await asyncio.wait_for(runner.wait_running(), 30)  # the RTL one has stopped
            journey.meters[main.entry_id] = {WATER, POWER}
            # Without a stick wmbusmeters says so, and takes its time to stop looking.
            await journey.check(
                "reconfigure: RTL-SDR, then another radio",
                warnings=("No wmbus device", "not found", "ignored SIGTERM", "stopped"),
                issues=("device_missing",),
            )

            # 6. Reloads while telegrams stream in (the network receiver's and the radio's).
            for entry in (network, main, network, main):
                assert await hass.config_entries.async_reload(entry.entry_id)
            runner = network.runtime_data.supervisor.runner
            await until(
                hass,
                lambda: runner.counters.telegrams > 0,
                "telegrams through the reloaded network receiver",
            )
            await journey.check("reload under traffic", issues=("device_missing",))

        # 7. A meter removed and added back: the same entities, readings again.
        entity_ids = sorted(
            e.entity_id
            for e in er.async_get(hass).entities.values()
            if e.platform == DOMAIN and e.unique_id.startswith(f"{WATER}_")
        )
        water = next(s for s in main.subentries.values() if s.unique_id == WATER)
        assert hass.config_entries.async_remove_subentry(main, water.subentry_id)
        journey.meters[main.entry_id].discard(WATER)
        await journey.check("remove a meter", issues=("device_missing",))
        assert not [
            e
            for e in er.async_get(hass).entities.values()
            if e.platform == DOMAIN and e.unique_id.startswith(f"{WATER}_")
        ]
        await journey.add_meter(main, "Koldt vand", WATER, kamstrup)
        await journey.check("add it back", issues=("device_missing",))
        again = sorted(
            e.entity_id
            for e in er.async_get(hass).entities.values()
            if e.platform == DOMAIN and e.unique_id.startswith(f"{WATER}_")
        )
        assert set(again) >= {i for i in entity_ids if i.endswith("_total")}

        # 8. Every receiver deleted: nothing of them is left.
        for entry in journey.receivers():
            await hass.config_entries.async_remove(entry.entry_id)
        await hass.async_block_till_done()
        journey.meters.clear()
        await journey.check("delete the receivers")
        assert journey.processes() == {}
        assert not [e for e in er.async_get(hass).entities.values() if e.platform == DOMAIN]
        assert not ir.async_get(hass).issues
        # The neighbour stays ignored (the user's choice outlives the receivers).
        assert [e.source for e in hass.config_entries.async_entries(DOMAIN)] == [SOURCE_IGNORE]
        wired_port.unplug()
    finally:
        for stick in sticks:
            stick.stop()
        for dongle in dongles:
            dongle.unplug()
        for entry in hass.config_entries.async_loaded_entries(DOMAIN):
            await hass.config_entries.async_unload(entry.entry_id)

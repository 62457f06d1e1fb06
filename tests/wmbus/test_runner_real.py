"""The runner against the real wmbusmeters, 2.0.0 and 3.0.0 (no Home Assistant involved)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import os
from pathlib import Path
import stat

import pytest

from custom_components.wmbusmeters.wmbus import (
    DEVICE_TYPES,
    DecryptionFailed,
    DecryptionProblem,
    DeviceNotFound,
    Message,
    MeterConfig,
    ReceiverConfig,
    RunnerEvent,
    RunnerState,
    RunnerStatus,
    Telegram,
    WmbusRunner,
    list_drivers,
    list_fields,
    probe_info,
    render_config,
)

from ..conftest import DATA, fixture_text
from ..pty_dongle import PtyDongle, rawtty_telegrams
from .common import Changes, until_sent

WRONG_KEY = "00112233445566778899AABBCCDDEEFF"


class Recorder:
    """Collects what a runner reports."""

    def __init__(self) -> None:
        self.telegrams: list[Telegram] = []
        self.events: list[RunnerEvent] = []
        self.statuses: list[RunnerStatus] = []
        self.changes = Changes()

    def runner(
        self, command: str, config: ReceiverConfig, tmp_path: Path, **kw: object
    ) -> WmbusRunner:
        return WmbusRunner(
            command,
            config,
            tmp_path / "conf",
            on_telegram=self.changes.record(self.telegrams),
            on_event=self.changes.record(self.events),
            on_status=self.changes.record(self.statuses),
            **kw,  # type: ignore[arg-type]
        )

    async def until(self, check: Callable[[], object], what: str) -> None:
        """Until `check()` holds (looked at after each report of the runner)."""
        await self.changes.until(check, what)

    def ended(self) -> bool:
        """The process ran and ended (a simulation plays once, then exits 0)."""
        return any(s.state in (RunnerState.BACKOFF, RunnerState.FAILED) for s in self.statuses)


def expected_readings(case: str, version: str) -> dict[str, dict[str, object]]:
    """Readings by meter id from the recorded stdout (last telegram wins), minus timestamps."""
    result: dict[str, dict[str, object]] = {}
    for line in fixture_text(f"{case}.stdout.jsonl", version).splitlines():
        obj = json.loads(line)
        drop = {"_", "media", "meter", "name", "id", "device", "timestamp"}
        result[obj["id"]] = {k: v for k, v in obj.items() if k not in drop}
    return result


async def run_case(
    wmbusmeters: str, tmp_path: Path, device: Path, meters: list[MeterConfig]
) -> Recorder:
    rec = Recorder()
    runner = rec.runner(wmbusmeters, ReceiverConfig(str(device), (), tuple(meters)), tmp_path)
    runner.start()
    try:
        await rec.until(rec.ended, "the process to end")
    finally:
        await runner.stop()
    return rec


# The Kamstrup water meter driver of each version (3.0.0 merged multical21 and flowiq2200).
KAMSTRUP_WATER = {"2.0.0": "multical21", "3.0.0": "kamwater"}


async def test_probes(wmbusmeters: str, wmbus_version: str) -> None:
    """Version, drivers and fields come from the binary itself, asked the way it understands
    (3.0.0 has --listdrivers where 2.0.0 had --listmeters)."""
    info = await probe_info(wmbusmeters)
    assert info.version.split("-")[0] == wmbus_version  # Debian's says 2.0.0-2
    assert info.list_drivers_option == (
        "--listmeters" if wmbus_version == "2.0.0" else "--listdrivers"
    )
    drivers = {d.name: d for d in await list_drivers(wmbusmeters, info)}
    assert "auto" in drivers
    kamstrup = drivers[KAMSTRUP_WATER[wmbus_version]]
    assert kamstrup.meter_type == "WaterMeter"
    assert "KAM" in kamstrup.manufacturers
    fields = [f.name for f in await list_fields(wmbusmeters, kamstrup.name)]
    assert {"total_m3", "target_m3", "flow_temperature_c", "status"} <= set(fields)
    # Without the probe's answer, list_drivers asks --help itself.
    assert [d.name for d in await list_drivers(wmbusmeters)] == list(drivers)


async def test_water_telegrams_decoded(
    wmbusmeters: str, wmbus_version: str, tmp_path: Path, simulation: Callable[..., Path]
) -> None:
    """C1 water meters: every value as the real binary prints it, mapped by meter id."""
    rec = await run_case(
        wmbusmeters,
        tmp_path,
        simulation("c1_water_multical21"),
        [
            MeterConfig("76348799", "multical21"),
            MeterConfig("44556677", "multical21"),
            MeterConfig("52525252", "flowiq2200"),
        ],
    )
    got = {
        t.meter_id: {k: v for k, v in t.readings.items() if k != "timestamp"} for t in rec.telegrams
    }
    assert got == expected_readings("c1_water_multical21", wmbus_version)
    tap = next(t for t in rec.telegrams if t.meter_id == "76348799")
    assert tap.driver == KAMSTRUP_WATER[wmbus_version]
    assert tap.media == "cold water"
    assert tap.readings["total_m3"] == 6.408
    assert tap.timestamp is not None
    assert not tap.discovered


@pytest.mark.parametrize(
    ("case", "key", "problem"),
    [
        ("aes_wrong_key", WRONG_KEY, DecryptionProblem.WRONG_KEY),
        ("aes_missing_key", "", DecryptionProblem.MISSING_KEY),
    ],
)
async def test_aes_events(
    wmbusmeters: str,
    tmp_path: Path,
    simulation: Callable[..., Path],
    case: str,
    key: str,
    problem: DecryptionProblem,
) -> None:
    """An encrypted Techem HCA with a wrong or no key: one typed event with its meter id."""
    rec = await run_case(
        wmbusmeters,
        tmp_path,
        simulation(case, "simulation_bad_keys.txt"),
        [MeterConfig("03065716", "fhkvdataiv", key)],
    )
    failures = [e for e in rec.events if isinstance(e, DecryptionFailed)]
    assert [(e.meter_id, e.problem) for e in failures] == [("03065716", problem)]
    assert rec.telegrams == []


async def test_key_but_unencrypted(
    wmbusmeters: str, tmp_path: Path, simulation: Callable[..., Path]
) -> None:
    """Keys for meters that send in the clear: each meter named with its own problem."""
    rec = await run_case(
        wmbusmeters,
        tmp_path,
        simulation("aes_key_but_unencrypted", "simulation_aes_removed.msg"),
        [
            MeterConfig("88888888", "apator162", "0" * 32),
            MeterConfig("76348799", "multical21", "28F64A24988064A079AA2C807D6102AE"),
            MeterConfig("77777777", "supercom587", "5065747220486F6C79737A6577736B69"),
        ],
    )
    problems = {(e.meter_id, e.problem) for e in rec.events if isinstance(e, DecryptionFailed)}
    assert problems == {
        ("88888888", DecryptionProblem.NOT_ENCRYPTED),
        ("76348799", DecryptionProblem.WRONG_KEY),
        ("77777777", DecryptionProblem.NOT_ENCRYPTED),
    }


async def test_device_missing(wmbusmeters: str, tmp_path: Path) -> None:
    """A dongle that is not there: a DeviceNotFound event; 2.0.0 keeps waiting for it."""
    rec = Recorder()
    config = ReceiverConfig(
        "/dev/ttyUSB9", ("c1",), (MeterConfig("76348799", "multical21"),), device_type="im871a"
    )
    runner = rec.runner(wmbusmeters, config, tmp_path)
    runner.start()
    try:
        await rec.until(
            lambda: any(isinstance(e, DeviceNotFound) for e in rec.events),
            "wmbusmeters to report the device missing",
        )
        assert runner.status.state is RunnerState.RUNNING
    finally:
        await runner.stop()
    after: RunnerStatus = runner.status  # (read again: stop() changed it)
    assert after.state is RunnerState.STOPPED


async def test_fatal_error_on_stdout(
    wmbusmeters: str, tmp_path: Path, simulation: Callable[..., Path]
) -> None:
    """A driver the binary does not know: its message on stdout is an event and the backoff
    reason."""
    rec = await run_case(
        wmbusmeters,
        tmp_path,
        simulation("c1_water_multical21"),
        [MeterConfig("76348799", "nosuchdriver")],
    )
    errors = [e for e in rec.events if isinstance(e, Message) and e.stream == "stdout"]
    assert errors, rec.events
    assert "nosuchdriver" in errors[0].line
    ended = next(s for s in rec.statuses if s.state is RunnerState.BACKOFF)
    assert ended.returncode not in (0, None)  # 2.0.0 exits 1, 3.0.0 5
    assert "nosuchdriver" in str(ended.reason)


async def test_listen_all_hears_unconfigured_meters(
    wmbusmeters: str, wmbus_version: str, tmp_path: Path, simulation: Callable[..., Path]
) -> None:
    """With the catch-all on, other meters arrive flagged as discovered; configured ones once."""
    rec = Recorder()
    config = ReceiverConfig(
        str(simulation("c1_water_multical21", "simulation_c1.txt")),
        (),
        (MeterConfig("76348799", "multical21"),),
        listen_all=True,
    )
    runner = rec.runner(wmbusmeters, config, tmp_path)
    runner.start()
    try:
        await rec.until(rec.ended, "the process to end")
    finally:
        await runner.stop()
    configured = [t for t in rec.telegrams if t.meter_id == "76348799"]
    assert configured
    assert not any(t.discovered for t in configured)
    discovered = {t.meter_id: t.driver for t in rec.telegrams if t.discovered}
    kamstrup = {"44556677": discovered["44556677"], "52525252": discovered["52525252"]}
    if wmbus_version == "2.0.0":
        assert kamstrup == {"44556677": "multical21", "52525252": "flowiq2200"}
    else:
        assert kamstrup == {"44556677": "kamwater", "52525252": "kamwater"}


def test_render_is_private_and_keys_stay_in_files(tmp_path: Path) -> None:
    """0700 directory, 0600 files, the key only in its meter file, never in argv."""
    key = "28F64A24988064A079AA2C807D6102AE"
    config = ReceiverConfig("auto", ("t1", "c1"), (MeterConfig("76348799", "multical21", key),))
    argv = render_config(config, tmp_path / "conf")
    assert argv == [f"--useconfig={tmp_path / 'conf'}"]
    conf = tmp_path / "conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o700
    assert stat.S_IMODE((conf / "wmbusmeters.d").stat().st_mode) == 0o700
    for path in (conf / "wmbusmeters.conf", conf / "wmbusmeters.d" / "m76348799"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "device=auto:c1,t1" in (conf / "wmbusmeters.conf").read_text().splitlines()
    assert f"key={key}" in (conf / "wmbusmeters.d" / "m76348799").read_text().splitlines()
    assert key not in " ".join(argv)
    # A meter removed later leaves no file (and no key) behind.
    render_config(ReceiverConfig("auto", ("c1",)), conf)
    assert os.listdir(conf / "wmbusmeters.d") == []


async def _start_on(wmbusmeters: str, tmp_path: Path, device_type: str) -> tuple[Path, str]:
    """What wmbusmeters says in two seconds on an emulated (silent) dongle of this type."""
    dongle = PtyDongle(tmp_path, f"usb-emulated-{device_type}")
    if device_type == "mbus":
        # A wired bus: a polled meter, no link modes, no catch-all.
        wired = MeterConfig("12345678", "sensostar", poll_interval=60)
        config = ReceiverConfig(str(dongle.path), (), (wired,), device_type="mbus")
    else:
        config = ReceiverConfig(
            str(dongle.path), ("c1", "t1"), (MeterConfig("12345678"),), device_type=device_type
        )
    args = render_config(config, tmp_path / device_type)
    proc = await asyncio.create_subprocess_exec(
        wmbusmeters,
        *args,
        "--exitafter=2s",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        dongle.unplug()
    return dongle.path, out.decode(errors="replace")


async def test_every_device_type_renders_a_device_the_binary_takes(
    wmbusmeters: str, tmp_path: Path
) -> None:
    """A serial path with each type: wmbusmeters takes the device line and looks for that dongle
    on that tty (an emulated one that stays silent), never "Not a valid device" nor "specify the
    expected device type"."""
    said = await asyncio.gather(*(_start_on(wmbusmeters, tmp_path, t) for t in DEVICE_TYPES))
    for device_type, (path, text) in zip(DEVICE_TYPES, said, strict=True):
        assert "Not a valid device" not in text, device_type
        assert "specify the expected device type" not in text, device_type
        if device_type == "rawtty":
            assert f"Started config rawtty on {path}" in text
        elif device_type == "mbus":
            assert f"Started config MBUS=mbus on {path}" in text
        else:
            assert f"Expected {device_type} on {path} but did not find it" in text


async def test_rawtty_dongle_on_a_pty(wmbusmeters: str, tmp_path: Path) -> None:
    """The runner on a raw-telegram tty (emulated on a pty): its telegrams are decoded."""
    dongle = PtyDongle(tmp_path)
    recorder = Recorder()
    config = ReceiverConfig(
        str(dongle.path),
        meters=(MeterConfig("00010203", "lansenth"), MeterConfig("11772288", "rfmamb")),
        device_type="rawtty",
    )
    runner = recorder.runner(wmbusmeters, config, tmp_path)
    runner.start()
    data = rawtty_telegrams((DATA / "serial_rawtty_ok.hex").read_text())
    try:
        await until_sent(  # again and again, as meters do
            recorder.changes,
            lambda: dongle.send_raw_telegrams(data),
            lambda: {t.meter_id for t in recorder.telegrams} == {"00010203", "11772288"},
            "a telegram of each room sensor",
        )
    finally:
        await runner.stop()
        dongle.unplug()
    rooms = {t.meter_id: t.readings for t in recorder.telegrams}
    assert rooms["00010203"]["current_temperature_c"] == 21.8
    assert rooms["11772288"]["current_relative_humidity_rh"] == 44.2

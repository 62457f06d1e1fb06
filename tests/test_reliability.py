"""Nothing a radio or a user sends stops a receiver (the fault campaign's findings, fast).

Faults the real wmbusmeters cannot be made to show on demand (non-finite numbers, floods,
crash loops) come from the FAKE wmbusmeters (tests/fake_wmbusmeters.py); the rest uses the
real binary. scripts/faults runs the long versions against a live Home Assistant.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import logging
from pathlib import Path
import time
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.json import json_dumps
import pytest

from custom_components.wmbusmeters import supervisor as supervisor_module
from custom_components.wmbusmeters.const import DOMAIN, EVENT_TELEGRAM
from custom_components.wmbusmeters.wmbus import RunnerState

from .common import meter, receiver_entry, setup_receiver, start_receiver_flow, until
from .pty_dongle import PtyDongle

TAP = "76348799"


def telegram(**fields: Any) -> str:
    """A telegram line of the tap (multical21), with these fields; raw JSON text allowed
    through `raw` (NaN and friends are not JSON Python writes)."""
    raw = fields.pop("raw", "")
    body = json.dumps(
        {
            "_": "telegram",
            "media": "cold water",
            "meter": "multical21",
            "name": f"m{TAP}",
            "id": TAP,
            "status": "OK",
            "timestamp": "2026-11-25T10:00:00Z",
            **fields,
        }
    )
    return body[:-1] + (f", {raw}" if raw else "") + "}"


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], None]:
    """What the FAKE wmbusmeters prints (fake_wmbusmeters.py's `script` mode)."""

    def write(lines: list[str]) -> None:
        path = tmp_path / "script.txt"
        path.write_text("\n".join(lines) + "\n")
        monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "script")
        monkeypatch.setenv("FAKE_WMBUSMETERS_SCRIPT", str(path))

    return write


@pytest.fixture
def replay(tmp_path: Path) -> Path:
    """A long simulation (the demo's): wmbusmeters is busy replaying it."""
    path = tmp_path / "simulation_long.txt"
    path.write_text((Path(__file__).parent.parent / "demo" / "simulation_demo.txt").read_text())
    return path


def stopped(pid: int) -> bool:
    """Whether the process is stopped by a signal (its state in /proc is T)."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return text[text.rindex(")") + 2 :].startswith(("T", "t"))


def state(hass: HomeAssistant, entity_id: str) -> str | None:
    found = hass.states.get(entity_id)
    return None if found is None else found.state


async def test_values_home_assistant_refuses_never_stop_the_receiver(
    hass: HomeAssistant,
    fake_command: str,
    script: Callable[[list[str]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FAKE output: NaN, Infinity, 1e300, a 300-digit integer and a 1,000-character status
    show as unknown (with a warning), the events stay JSON, and the next good telegram is
    shown. Before: the first NaN killed the stdout reader silently, for good."""
    script(
        [
            telegram(total_m3=6.0),
            "sleep:0.3",
            telegram(raw='"total_m3": NaN'),
            telegram(raw='"total_m3": Infinity, "target_m3": -Infinity'),
            telegram(total_m3=1e300),
            telegram(raw='"total_m3": 1' + "0" * 300),
            "sleep:0.5",
            telegram(total_m3=6.5, status="LEAK " * 200),
            "sleep:0.3",
            telegram(total_m3=7.5, timestamp="2026-11-25T10:05:00"),
        ]
    )
    events: list[Event] = []

    @callback
    def collect(event: Event) -> None:
        # A callback: run in the loop, in order (a plain function would go to the executor).
        events.append(event)

    hass.bus.async_listen(EVENT_TELEGRAM, collect)
    entry = receiver_entry(fake_command, "auto", [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    await until(hass, lambda: state(hass, "sensor.tap_total") == "6.0", "the total 6.0")
    await until(hass, lambda: len(events) >= 5, "five telegram events")
    await hass.async_block_till_done()
    assert state(hass, "sensor.tap_total") == "unknown"  # NaN … 10^300: none is a reading
    await until(hass, lambda: state(hass, "sensor.tap_total") == "7.5", "the total 7.5")
    await until(hass, lambda: len(events) >= 7, "seven telegram events")
    assert len(events) == 7
    for event in events:
        json_dumps(event.data)  # what the websocket API and the logbook do with it
    assert events[4].data["fields"]["total_m3"] is None
    assert events[5].data["fields"]["status"] is None
    assert events[5].data["fields"]["total_m3"] == 6.5
    assert "values outside the configured limits" in caplog.text
    assert "Task exception was never retrieved" not in caplog.text
    assert entry.runtime_data.supervisor.runner.counters.refused_values == 6
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_failing_entity_is_isolated(
    hass: HomeAssistant,
    fake_command: str,
    script: Callable[[list[str]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An entity that raises on a telegram (here: a broken listener added by the test) is
    logged with the meter, and the other entities and the next telegrams go on."""
    script([telegram(total_m3=1.0), "sleep:0.5", telegram(total_m3=2.0)])
    entry = receiver_entry(fake_command, "auto", [meter("Tap", "multical21", TAP)])

    def broken(_telegram: object) -> None:
        raise ValueError("a state Home Assistant refuses")

    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    entry.runtime_data.meters.by_id[TAP].async_add_listener(broken)
    await until(hass, lambda: state(hass, "sensor.tap_total") == "2.0", "the total 2.0")
    assert "Meter Tap (76348799): broken could not take its telegram" in caplog.text
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_stderr_flood_reaches_the_log_summarised(
    hass: HomeAssistant,
    fake_command: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FAKE wmbusmeters printing 100,000 stderr lines, with debug logging on (what anyone
    troubleshooting turns on): a handful reach the log, then one "more like this" line; the
    telegram behind them is read. Before: 100,000 log records (HA grew to 1.75 GB)."""
    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "stderr_flood")
    caplog.set_level(logging.DEBUG, logger="custom_components.wmbusmeters")
    entry = receiver_entry(fake_command, "auto", [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    await until(
        hass,
        lambda: runner.counters.stderr_lines >= 99_900,  # (chunk edges: a few uncounted)
        "the stderr flood read",
    )
    await until(hass, lambda: state(hass, "sensor.tap_total") == "6.408", "the total 6.408")
    coordinator = entry.runtime_data.supervisor
    monkeypatch.setattr(coordinator._log, "_clock", lambda: time.monotonic() + 3600)
    coordinator._log.flush()
    lines = [r.getMessage() for r in caplog.records if "noise" in r.getMessage()]
    assert 1 <= len(lines) <= 10
    assert "more like this" in lines[-1]
    await hass.config_entries.async_unload(entry.entry_id)


async def test_crash_loop_is_found_at_the_real_backoff_pace(
    hass: HomeAssistant, fake_command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAKE wmbusmeters crashing at once with a 60,000-character error: crashes five minutes
    apart (the backoff's cap) are a crash loop too, and the repair shows a short error.
    Before: the rule "5 crashes in 10 minutes" could never be met at that pace, and the
    repair carried the whole line."""

    class FiveMinutesApart:
        """Each look at the clock is five minutes later (as the real backoff's cap)."""

        def __init__(self) -> None:
            self.now = 0.0

        def monotonic(self) -> float:
            self.now += 301.0
            return self.now

    # (The supervisor does not read the clock; an earlier coordinator did.)
    monkeypatch.setattr(supervisor_module, "time", FiveMinutesApart(), raising=False)
    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "crash_with_long_error")
    entry = receiver_entry(fake_command, "auto", options={})
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    runner._backoff_initial = runner._backoff_max = 0.01  # the waits themselves are skipped
    issue_id = f"crash_loop_{entry.entry_id}"
    registry = ir.async_get(hass)
    await until(
        hass, lambda: registry.async_get_issue(DOMAIN, issue_id) is not None, "the crash loop"
    )
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    last_error = issue.translation_placeholders["last_error"]
    assert last_error.startswith("exited with code 3: fake: eee")
    assert len(last_error) <= 200
    await hass.config_entries.async_unload(entry.entry_id)


async def test_options_take_whole_minutes_only(
    hass: HomeAssistant, wmbusmeters: str, replay: Path
) -> None:
    """0.5 and 1.9 minutes are refused with a translated error (before: stored as 0, the
    watchdog off, and 1); 2 is stored."""
    entry = receiver_entry(wmbusmeters, replay)
    await setup_receiver(hass, entry)
    for wrong in (0.5, 1.9):
        flow = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            flow["flow_id"], {"silence_timeout": wrong}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"silence_timeout": "whole_minutes"}
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"silence_timeout": 2}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {"silence_timeout": 2, "import_history": True}
    assert entry.runtime_data.supervisor.runner.silence_timeout == 120
    await hass.config_entries.async_unload(entry.entry_id)


async def test_health_entities_tell_the_truth_while_the_dongle_is_missing(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path
) -> None:
    """The real wmbusmeters on an emulated dongle that does not answer: "running" is off
    and "last error" shows the device-missing alarm. Before: running on, and last error
    empty (the alarm was not counted as one)."""
    dongle = PtyDongle(tmp_path)
    try:
        entry = receiver_entry(wmbusmeters, dongle.path, device_type="im871a", link_modes=["t1"])
        await setup_receiver(hass, entry)
        issue_id = f"device_missing_{entry.entry_id}"
        registry = ir.async_get(hass)
        await until(
            hass,
            lambda: registry.async_get_issue(DOMAIN, issue_id) is not None,
            "the device-missing repair",
        )
        await hass.async_block_till_done()
        running = next(
            s for s in hass.states.async_all("binary_sensor") if s.entity_id.endswith("_running")
        )
        assert running.state == "off"
        last_error = next(
            s for s in hass.states.async_all("sensor") if s.entity_id.endswith("_last_error")
        )
        assert last_error.state.startswith(("No wmbus device detected", "Expected im871a"))
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        dongle.unplug()


async def test_a_simulation_stops_quickly(
    hass: HomeAssistant, wmbusmeters: str, replay: Path
) -> None:
    """The real wmbusmeters replaying a simulation takes 8 s to honour SIGTERM (measured,
    2.0.0 and 3.0.0): unloading takes seconds less than that grace (before: 5 s, then
    SIGKILL, with a warning each time)."""
    entry = receiver_entry(wmbusmeters, replay)
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    await until(hass, lambda: runner.status.state is RunnerState.RUNNING, "wmbusmeters to run")
    # The time unloading takes is what this test is about: measured, not waited for.
    started = time.monotonic()
    await hass.config_entries.async_unload(entry.entry_id)
    assert time.monotonic() - started < 3


async def test_devices_that_are_no_radio_are_refused(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path
) -> None:
    """/etc/shadow, /dev/../etc/passwd and a directory are no radio (translated errors)."""
    for device, error in (
        ("/etc/shadow", "not_a_serial_port"),
        ("/dev/../etc/passwd", "invalid_device"),
        (str(tmp_path), "not_a_serial_port"),
        (str(tmp_path / "ttyUSB0"), "device_not_found"),
    ):
        flow = await start_receiver_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"],
            {"command": wmbusmeters, "device": device, "device_type": "rawtty"},
        )
        assert result["errors"] == {"device": error}, device


async def test_a_radio_is_not_taken_from_another_receiver(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, replay: Path
) -> None:
    """Reconfiguring a receiver onto the port another one uses (here by its other name, the
    tty behind the by-id link) is refused. Before: saved, and two wmbusmeters shared it."""
    dongle = PtyDongle(tmp_path)
    try:
        kitchen = receiver_entry(
            wmbusmeters, dongle.path, title="Kitchen", device_type="rawtty", entry_id="kitchen"
        )
        cellar = receiver_entry(wmbusmeters, replay, title="Cellar", entry_id="cellar")
        await setup_receiver(hass, kitchen)
        await setup_receiver(hass, cellar)
        flow = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": "cellar"}
        )
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"],
            {"command": wmbusmeters, "device": dongle.tty, "device_type": "rawtty"},
        )
        assert result["errors"] == {"device": "device_in_use"}
        assert cellar.data["device"] == str(replay)
        for entry in (kitchen, cellar):
            await hass.config_entries.async_unload(entry.entry_id)
    finally:
        dongle.unplug()


@pytest.mark.parametrize(
    ("name", "error"),
    [("x" * 5000, "name_too_long"), ("Tap\nTap", "invalid_name"), ("Tap\x00", "invalid_name")],
    ids=["5000 characters", "newline", "NUL"],
)
async def test_meter_names_are_bounded(
    hass: HomeAssistant, wmbusmeters: str, replay: Path, name: str, error: str
) -> None:
    """A meter name of 5,000 characters or with control characters is refused, translated
    (before: stored)."""
    entry = receiver_entry(wmbusmeters, replay)
    await setup_receiver(hass, entry)
    flow = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "meter"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        flow["flow_id"], {"name": name, "meter_id": TAP, "driver": "auto", "key": ""}
    )
    assert result["errors"] == {"name": error}
    assert not entry.subentries
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_telegram_with_hundreds_of_fields(
    hass: HomeAssistant, fake_command: str, script: Callable[[list[str]], None]
) -> None:
    """FAKE telegram with 500 new fields: the first 250 (more than any driver has) become
    entities, added in batches; the rest are refused as garbage; the receiver goes on."""
    fields = {f"reading_{n}_kwh": float(n) for n in range(500)}
    script([telegram(**fields), "sleep:0.5", telegram(total_m3=3.0)])
    entry = receiver_entry(fake_command, "auto", [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    await until(hass, lambda: state(hass, "sensor.tap_total") == "3.0", "the total 3.0")
    await hass.async_block_till_done()
    readings = [s for s in hass.states.async_all("sensor") if "reading_" in s.entity_id]
    assert 200 <= len(readings) <= 250
    assert state(hass, "sensor.tap_reading_7") == "7.0"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_running_is_off_while_the_process_is_stopped(
    hass: HomeAssistant, fake_command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAKE wmbusmeters stopped with SIGSTOP (a hang): at the next minute's check "running"
    goes off; continued (SIGCONT), it comes back on. Before: on throughout."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from homeassistant.util import dt as dt_util  # noqa: PLC0415

    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "silent")
    entry = receiver_entry(fake_command, "auto", [meter("Tap", "multical21", TAP)])
    await setup_receiver(hass, entry)
    coordinator = entry.runtime_data.supervisor
    await until(
        hass,
        lambda: coordinator.runner.status.state is RunnerState.RUNNING,
        "wmbusmeters to run",
    )
    running = next(
        s.entity_id
        for s in hass.states.async_all("binary_sensor")
        if s.entity_id.endswith("_running")
    )
    assert state(hass, running) == "on"
    pid = coordinator.runner.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        await until(hass, lambda: stopped(pid), "the process stopped (T in /proc)")
        coordinator._every_minute(dt_util.utcnow())  # the minute's check, now
        await until(hass, lambda: state(hass, running) == "off", "running to go off")
    finally:
        os.kill(pid, signal.SIGCONT)
    await until(hass, lambda: not stopped(pid), "the process continued")
    coordinator._every_minute(dt_util.utcnow())
    await until(hass, lambda: state(hass, running) == "on", "running to come back on")
    await hass.config_entries.async_unload(entry.entry_id)

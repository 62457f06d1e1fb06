"""Faults the real wmbusmeters cannot be made to show on demand, with a FAKE executable.

tests/fake_wmbusmeters.py plays crashes, hangs, silence, floods and garbage. Time is a fake
clock: backoff and silence are asserted without real sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import os
from pathlib import Path
import time
from typing import Any

import pytest

from custom_components.wmbusmeters.wmbus import (
    Message,
    MeterConfig,
    ReceiverConfig,
    RunnerEvent,
    RunnerState,
    RunnerStatus,
    Telegram,
    ValueLimits,
    WmbusRunner,
)
from custom_components.wmbusmeters.wmbus.parse import redact
from custom_components.wmbusmeters.wmbus.runner import STDERR_BUDGET

from .common import Changes


class FakeClock:
    """Monotonic time that only moves when a sleeper (or the test) moves it."""

    def __init__(self, changes: Changes) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._changes = changes

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self._changes.note()
        self.now += delay
        await asyncio.sleep(0)


class Harness:
    """A runner on the fake, recording everything."""

    def __init__(self, command: str, tmp_path: Path, **kw: object) -> None:
        self.changes = Changes()
        self.clock = FakeClock(self.changes)
        self.telegrams: list[Telegram] = []
        self.events: list[RunnerEvent] = []
        self.statuses: list[RunnerStatus] = []
        self.pids: list[int] = []
        self.reported_at: dict[int, float] = {}
        self.runner = WmbusRunner(
            command,
            ReceiverConfig("auto", ("c1",), (MeterConfig("76348799", "multical21"),)),
            tmp_path / "conf",
            on_telegram=self.changes.record(self.telegrams),
            on_event=self.changes.record(self.events),
            on_status=self._status,
            clock=self.clock,
            sleep=self.clock.sleep,
            **kw,  # type: ignore[arg-type]
        )

    def _status(self, status: RunnerStatus) -> None:
        self.statuses.append(status)
        self.reported_at[id(status)] = self.clock.now
        if status.state is RunnerState.RUNNING and self.runner.pid:
            self.pids.append(self.runner.pid)
        self.changes.note()

    async def until(self, check: Callable[[], object], what: str) -> None:
        """Until `check()` holds (looked at after each report of the runner)."""
        await self.changes.until(check, what)

    def states(self, state: RunnerState) -> list[RunnerStatus]:
        return [s for s in self.statuses if s.state is state]

    def assert_reaped(self) -> None:
        assert self.pids, "no process was seen running: nothing to check"
        for pid in self.pids:
            assert not os.path.exists(f"/proc/{pid}"), f"process {pid} left behind"


@pytest.fixture
def mode(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    return lambda value: monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", value)


async def test_crash_on_start_backs_off_exponentially(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """Each crash doubles the wait, from 5 s to the 5-minute cap; the reason names the error."""
    mode("crash_on_start")
    h = Harness(fake_command, tmp_path)
    h.runner.start()
    await h.until(lambda: len(h.states(RunnerState.BACKOFF)) >= 9, "nine backoffs")
    await h.runner.stop()
    backoffs = h.states(RunnerState.BACKOFF)[:9]
    expected = [5, 10, 20, 40, 80, 160, 300, 300, 300]
    # Announced (retry_at, as of the moment it was reported) and actually waited.
    assert [round(s.retry_at - h.reported_at[id(s)]) for s in backoffs] == expected  # type: ignore[operator]
    assert h.clock.sleeps[:9] == expected
    assert backoffs[0].returncode == 3
    assert "cannot open device" in str(backoffs[0].reason)
    assert h.runner.counters.restarts >= 8
    assert h.statuses[-1].state is RunnerState.STOPPED
    h.assert_reaped()


async def test_backoff_resets_after_stable_running(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """A crash after 10 minutes of good running starts the backoff from 5 s again."""
    mode("crash_on_start")
    h = Harness(fake_command, tmp_path)
    record = h._status

    def status(status: RunnerStatus) -> None:
        # After three quick crashes (5, 10, 20 s), every run lasts 11 minutes before it crashes.
        if status.state is RunnerState.RUNNING and len(h.clock.sleeps) >= 3:
            h.clock.now += 660
        record(status)

    h.runner._on_status = status
    h.runner.start()
    await h.until(lambda: len(h.clock.sleeps) >= 6, "six backoff waits")
    await h.runner.stop()
    assert h.clock.sleeps[:6] == [5, 10, 20, 5, 5, 5]


async def test_crash_mid_stream_keeps_telegrams(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """Telegrams printed before a crash are delivered; the crash is reported and restarted."""
    mode("crash_mid_stream")
    h = Harness(fake_command, tmp_path)
    h.runner.start()
    await h.until(lambda: len(h.states(RunnerState.BACKOFF)) >= 2, "two backoffs")
    await h.runner.stop()
    assert [t.readings["total_m3"] for t in h.telegrams[:2]] == [6.408, 6.409]
    assert h.states(RunnerState.BACKOFF)[0].returncode == 139
    assert "segmentation fault" in str(h.states(RunnerState.BACKOFF)[0].reason)
    h.assert_reaped()


async def test_stop_kills_a_process_that_ignores_sigterm(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """SIGTERM, a grace period, then SIGKILL; reaped either way."""
    mode("hang_on_sigterm")
    h = Harness(fake_command, tmp_path, term_timeout=0.3)
    h.runner.start()
    await h.until(lambda: len(h.telegrams) == 1, "the telegram")
    pid = h.runner.pid
    await h.runner.stop()
    assert pid is not None
    assert not os.path.exists(f"/proc/{pid}")
    assert h.runner.status.state is RunnerState.STOPPED


async def test_silence_restarts(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """No telegram for silence_timeout: wmbusmeters is restarted, with the reason."""
    mode("silent")
    h = Harness(fake_command, tmp_path, silence_timeout=3600)
    h.runner.start()
    await h.until(lambda: len(h.pids) >= 2, "a second process")
    await h.runner.stop()
    first = h.states(RunnerState.BACKOFF)[0]
    assert first.reason == "no telegram for 3600 s"
    assert 3600 in h.clock.sleeps
    assert h.pids[0] != h.pids[1]
    h.assert_reaped()


async def test_restart_is_immediate(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """restart() replaces a running process at once: no backoff sleep."""
    mode("silent")
    h = Harness(fake_command, tmp_path)
    h.runner.start()
    await h.until(lambda: len(h.pids) == 1, "the process to run")
    waiter = asyncio.ensure_future(h.runner.wait_running())
    h.runner.restart()
    await asyncio.wait_for(waiter, 10)
    await h.runner.stop()
    assert len(h.pids) == 2
    assert h.clock.sleeps == []
    assert h.runner.counters.restarts == 1
    h.assert_reaped()


@pytest.mark.parametrize("fault", ["huge_line", "garbage"])
async def test_unreadable_stdout_is_skipped(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None], fault: str
) -> None:
    """A 1 MB line or binary garbage is counted and skipped; the next telegram still arrives."""
    mode(fault)
    h = Harness(fake_command, tmp_path)
    h.runner.start()
    await h.until(lambda: len(h.telegrams) == 1, "the telegram")
    await h.runner.stop()
    assert h.telegrams[0].readings["total_m3"] == 6.408
    assert h.runner.counters.skipped_lines >= 1
    assert h.states(RunnerState.BACKOFF) == []  # the reader never died


async def test_stderr_flood(fake_command: str, tmp_path: Path, mode: Callable[[str], None]) -> None:
    """100,000 stderr lines in a burst: counted, only a budget per second looked at (and
    passed on), the rest dropped a chunk at a time; stdout still read."""
    mode("stderr_flood")
    h = Harness(fake_command, tmp_path)
    h.runner.start()
    await h.until(
        lambda: h.telegrams != [] and h.runner.counters.stderr_lines >= 100_000,
        "the telegram and the whole stderr flood",
    )
    await h.runner.stop()
    # (Each chunk dropped whole may cut one line at its edge, dropped uncounted.)
    counters = h.runner.counters
    assert 100_000 - 20 <= counters.stderr_lines <= 100_000
    assert len(h.events) <= STDERR_BUDGET * 3  # the burst spans a few clock seconds at most
    assert counters.flooded_lines == counters.stderr_lines - len(h.events)
    assert all(isinstance(e, Message) for e in h.events)


async def test_simulation_end_is_replayed_without_growing_backoff(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """A simulation file that ends (exit 0) is replayed after the shortest wait, every time."""
    mode("exit_clean")
    sim = tmp_path / "simulation_demo.txt"
    sim.write_text("")
    h = Harness(fake_command, tmp_path)
    h.runner.config = ReceiverConfig(str(sim))
    h.runner.start()
    await h.until(lambda: len(h.clock.sleeps) >= 4, "four replay waits")
    await h.runner.stop()
    assert h.clock.sleeps[:4] == [5, 5, 5, 5]


def test_redact_hides_keys() -> None:
    """Anything shaped like an AES key is hidden from kept lines and logs."""
    line = "key=28F64A24988064A079AA2C807D6102AE id 76348799 telegram 2A442D2C998734761B168D20"
    assert redact(line) == "key=<redacted> id 76348799 telegram 2A442D2C998734761B168D20"


def silent_runner(
    fake_command: str,
    tmp_path: Path,
    changes: Changes,
    sleeps: list[float],
    *,
    silence_timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> WmbusRunner:
    """A runner of the FAKE wmbusmeters (mode `silent`) whose waits are real ones the test
    sees in `sleeps`."""

    async def sleep(delay: float) -> None:
        changes.record(sleeps)(delay)
        await asyncio.sleep(delay)

    return WmbusRunner(
        fake_command,
        ReceiverConfig("auto", ("c1",), (MeterConfig("76348799", "multical21"),)),
        tmp_path / "conf",
        on_telegram=lambda _t: None,
        on_status=changes.note,
        silence_timeout=silence_timeout,
        sleep=sleep,
        clock=clock,
    )


async def test_a_new_silence_timeout_counts_at_once(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """FAKE wmbusmeters that stays silent: with an hour's timeout set, shortening it to a
    moment stops it for a restart within that moment; switched off, it runs on. Before: the
    old deadline ran on (an hour)."""
    mode("silent")
    changes = Changes()
    sleeps: list[float] = []
    runner = silent_runner(fake_command, tmp_path, changes, sleeps, silence_timeout=3600)
    runner.start()
    try:
        await runner.wait_running()
        await changes.until(
            lambda: any(delay > 3000 for delay in sleeps), "the watchdog to wait for the hour"
        )
        started = time.monotonic()
        runner.silence_timeout = 0.3
        await changes.until(
            lambda: runner.status.state is RunnerState.BACKOFF, "the stop for the 0.3 s timeout"
        )
        assert time.monotonic() - started < 3  # that moment, not the hour
        assert runner.status.reason == "no telegram for 0.3 s"
        runner.silence_timeout = None  # off: it runs on, however silent
        runner.restart()
        await runner.wait_running()
        # Time is what is tested here: the old 0.3 s deadline passes (a real second, 3 times
        # over) and the process still runs. No event can show that nothing happened.
        await asyncio.sleep(1)
        assert runner.status.state is RunnerState.RUNNING
    finally:
        await runner.stop()


def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    """The fake prints these lines (tests/fake_wmbusmeters.py `script` mode), then stays up."""
    path = tmp_path / "script.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    monkeypatch.setenv("FAKE_WMBUSMETERS_MODE", "script")
    monkeypatch.setenv("FAKE_WMBUSMETERS_SCRIPT", str(path))


#: One telegram of the tap with every kind of value a limit can refuse.
ODD_VALUES = (
    '{"_":"telegram","media":"cold water","meter":"multical21","name":"m76348799",'
    '"id":"76348799","total_m3":NaN,"target_m3":1e300,"flow_m3h":1.5,"status":"'
    + "LEAK " * 60
    + '","'
    + "x" * 70
    + '":1,"timestamp":"2026-11-25T10:00:00Z"}'
)


async def test_values_pass_unlimited_by_default(
    fake_command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No limits given: every value as wmbusmeters printed it, nothing refused or logged."""
    script(tmp_path, monkeypatch, [ODD_VALUES])
    h = Harness(fake_command, tmp_path)
    h.runner.start()
    await h.until(lambda: h.telegrams, "the telegram")
    await h.runner.stop()
    readings = h.telegrams[0].readings
    assert readings["total_m3"] != readings["total_m3"]  # NaN
    assert readings["target_m3"] == 1e300
    assert len(readings["status"]) == 300
    assert readings["x" * 70] == 1
    assert h.telegrams[0].refused == ()
    assert h.runner.counters.refused_values == 0


async def test_values_outside_the_limits_are_none_and_counted(
    fake_command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The caller's limits: a value past one is None and named, a name past one is left out;
    counted, and logged without naming any application."""
    script(tmp_path, monkeypatch, [ODD_VALUES])
    limits = ValueLimits(max_text=255, max_number=1e15, max_name=64, max_fields=250)
    h = Harness(fake_command, tmp_path, limits=limits)
    h.runner.start()
    await h.until(lambda: h.telegrams, "the telegram")
    await h.runner.stop()
    telegram = h.telegrams[0]
    assert telegram.readings["total_m3"] is None
    assert telegram.readings["target_m3"] is None
    assert telegram.readings["status"] is None
    assert telegram.readings["flow_m3h"] == 1.5
    assert "x" * 70 not in telegram.readings
    assert telegram.refused == ("total_m3", "target_m3", "status", "x" * 64)
    assert h.runner.counters.refused_values == 4
    assert "values outside the configured limits" in caplog.text
    assert "Home Assistant" not in caplog.text


async def test_the_supervisor_runs_in_the_callers_task(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """`create_task` starts the supervisor (an application tracks it; here an eager task, as
    Home Assistant's background tasks are): no status is reported inside start(), and a
    cancel from outside (an application shutting down) still stops and reaps the process."""
    mode("silent")
    made: list[asyncio.Task[None]] = []

    def create_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.eager_task_factory(asyncio.get_running_loop(), coro, name=name)
        made.append(task)
        return task

    h = Harness(fake_command, tmp_path, create_task=create_task)
    h.runner.start()
    assert [task.get_name() for task in made] == ["wmbusmeters runner"]
    assert h.statuses == []  # STARTING comes after start() returned
    assert h.runner.running
    await h.until(lambda: h.pids, "the process to run")
    made[0].cancel()
    await h.until(made[0].done, "the supervisor to end")
    assert made[0].cancelled()
    assert h.runner.status.state is RunnerState.STOPPED
    assert h.runner.pid is None
    h.assert_reaped()
    await h.runner.stop()  # after an outside cancel: nothing left to do, no error


async def test_an_input_back_after_a_long_outage_is_not_silence(
    fake_command: str, tmp_path: Path, mode: Callable[[str], None]
) -> None:
    """FAKE wmbusmeters that stays silent, as one whose MQTT broker was away for two hours
    (its silence timeout off meanwhile): when the broker is back, the outage is not counted
    (excuse_silence), rather than ending in a restart at once."""
    mode("silent")
    changes = Changes()
    sleeps: list[float] = []
    now = [1000.0]
    runner = silent_runner(
        fake_command, tmp_path, changes, sleeps, silence_timeout=None, clock=lambda: now[0]
    )
    runner.start()
    try:
        await runner.wait_running()
        now[0] += 7200  # the outage
        runner.excuse_silence(7200)
        runner.silence_timeout = 3600
        await changes.until(
            lambda: any(delay > 3000 for delay in sleeps), "the watchdog to wait the hour"
        )
        assert runner.status.state is RunnerState.RUNNING
        assert runner.counters.restarts == 0
    finally:
        await runner.stop()

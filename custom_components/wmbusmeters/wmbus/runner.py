"""Own one wmbusmeters process: start it, feed its stdin, restart it with backoff, stop it.

Its output is read by an OutputReader (output.py); this module decides when the process runs.

Supervision follows what the real 2.0.0 does: a simulation file ends with exit code 0 (replay),
a missing dongle keeps it waiting (reported, not fatal), a decryption failure is printed once per
run. It is never sent SIGHUP: in --useconfig mode 2.0.0 then never exits again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
import logging
from pathlib import Path
import signal
import time
from typing import Any

from .config import STDIN_DEVICE, ReceiverConfig, is_simulation, render_config
from .events import NO_LIMITS, RunnerEvent, RunnerState, RunnerStatus, Telegram, ValueLimits
from .output import MAX_ERROR, STDERR_BUDGET, OutputReader, RunnerCounters

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "MAX_STDIN_BUFFER",
    "SIMULATION_TERM_TIMEOUT",
    "STDERR_BUDGET",  # (defined in output.py; importable from here as before)
    "STDIN_BUSY",
    "RunnerCounters",
    "TaskFactory",
    "WmbusRunner",
]

#: Bytes of network lines that may wait in wmbusmeters' stdin pipe before more are refused
#: (a UDP flood); TCP senders are paused long before (STDIN_BUSY), and one read of theirs
#: (at most 256 KiB) always fits below this.
MAX_STDIN_BUFFER = 1024 * 1024
#: Waiting bytes past which the listener pauses its TCP connections.
STDIN_BUSY = 64 * 1024
#: 2.0.0 and 3.0.0 take 8 s to honour SIGTERM while replaying a simulation (0.8 s on a radio);
#: a replay holds no state worth waiting for.
SIMULATION_TERM_TIMEOUT = 1.0
#: Starts the long-lived supervising task: (coroutine, name) -> task.
type TaskFactory = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


def _create_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    return asyncio.create_task(coro, name=name)


class WmbusRunner:
    """Supervise wmbusmeters for one receiver.

    Callbacks are plain functions called in the event loop; they must not block. They never
    run inside start(), whatever `create_task` is (an eager task runs until its first await
    at once).
    `limits` bounds the readings passed on (default: none). `create_task` starts the one
    long-lived task, the supervisor (default: asyncio.create_task): an application that
    tracks its tasks hands in its own. `clock` and `sleep` are injectable so that tests can
    drive time.
    """

    def __init__(
        self,
        command: str,
        config: ReceiverConfig,
        config_dir: Path,
        *,
        on_telegram: Callable[[Telegram], None],
        on_event: Callable[[RunnerEvent], None] | None = None,
        on_status: Callable[[RunnerStatus], None] | None = None,
        silence_timeout: float | None = None,
        before_start: Callable[[], object] | None = None,
        backoff_initial: float = 5.0,
        backoff_max: float = 300.0,
        stable_after: float = 600.0,
        term_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        limits: ValueLimits = NO_LIMITS,
        create_task: TaskFactory = _create_task,
    ) -> None:
        """Prepare; nothing runs until start()."""
        self.command = command
        self.config = config
        self.config_dir = config_dir
        self._on_telegram = on_telegram
        self._on_event = on_event or (lambda _event: None)
        self._on_status = on_status or (lambda _status: None)
        self._silence_timeout = silence_timeout
        #: Run (in a thread) before each start: the integration makes a bundled binary
        #: executable again, which an update of the integration's files undoes.
        self._before_start = before_start
        self._silence_changed = asyncio.Event()
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stable_after = stable_after
        self._term_timeout = term_timeout
        self._clock = clock
        self._sleep = sleep
        self._create_task = create_task
        self._output = OutputReader(clock=clock, limits=limits)

        self.status = RunnerStatus(RunnerState.STOPPED)
        self.argv: list[str] = []
        self.pid: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._restart_requested = False
        self._stopping = False
        self._running_waiters: list[asyncio.Future[None]] = []
        self._failures = 0
        self._stdin: asyncio.StreamWriter | None = None

    # -- public API -------------------------------------------------------------------------

    @property
    def counters(self) -> RunnerCounters:
        """What was counted, over every run."""
        return self._output.counters

    @property
    def stderr_tail(self) -> deque[str]:
        """The last STDERR_TAIL lines worth keeping of stderr (and stdout's warnings)."""
        return self._output.stderr_tail

    @property
    def last_error(self) -> str | None:
        """The last error or warning line of the current or last process run."""
        return self._output.last_error

    @property
    def silence_timeout(self) -> float | None:
        """Seconds without a telegram before wmbusmeters is restarted (None: never)."""
        return self._silence_timeout

    @silence_timeout.setter
    def silence_timeout(self, value: float | None) -> None:
        """A new timeout counts at once (from the last telegram), not from the next start."""
        self._silence_timeout = value
        self._silence_changed.set()

    def excuse_silence(self, seconds: float) -> None:
        """Not count `seconds` of silence: the input was away that long (an MQTT broker), no
        reason to restart wmbusmeters. The silence before the outage still counts, so a
        broker that comes and goes cannot keep a stuck wmbusmeters from its restart."""
        self._output.last_telegram += seconds
        self._silence_changed.set()

    @property
    def failures(self) -> int:
        """Unexpected ends in a row (reset by a stable run or a requested restart)."""
        return self._failures

    def process_stopped(self) -> bool:
        """Whether the process exists but does not run (stopped by a signal: `T` in /proc;
        Linux only, blocking: call from an executor)."""
        pid = self.pid
        if pid is None:
            return False
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat_file:
                text = stat_file.read()
        except OSError:
            return False
        return text[text.rindex(")") + 2 :].startswith(("T", "t"))

    def feed(self, line: bytes) -> bool:
        """Write one whole line to wmbusmeters' stdin (a `stdin` device: the network
        listener's lines). False when it cannot take it now: not running, or MAX_STDIN_BUFFER
        already waiting in the pipe (a stuck process is not fed without bound)."""
        writer = self._stdin
        if writer is None or writer.is_closing():
            return False
        if writer.transport.get_write_buffer_size() > MAX_STDIN_BUFFER:
            return False
        writer.write(line)
        return True

    def stdin_backlog(self) -> int:
        """Bytes of fed lines still waiting in wmbusmeters' stdin pipe (0 when not running)."""
        writer = self._stdin
        if writer is None or writer.is_closing():
            return 0
        return int(writer.transport.get_write_buffer_size())

    @property
    def running(self) -> bool:
        """Whether the supervisor is active (the process may be backing off)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start supervising (returns at once)."""
        if self.running:
            return
        self._stopping = False
        self._wake.clear()
        self._task = self._create_task(self._supervise(), "wmbusmeters runner")

    async def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and the supervisor; always reaps."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fail_waiters(RuntimeError("wmbusmeters runner stopped"))

    def restart(self, config: ReceiverConfig | None = None) -> None:
        """Restart now (no backoff), with a new configuration if given."""
        if config is not None:
            self.config = config
        self._restart_requested = True
        self._wake.set()
        if not self.running:
            self.start()

    async def wait_running(self) -> None:
        """Return once a process has started (after a restart, the new one)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running_waiters.append(future)
        await future

    # -- supervision ------------------------------------------------------------------------

    def _set_status(self, status: RunnerStatus) -> None:
        self.status = status
        if status.state is RunnerState.RUNNING:
            waiters, self._running_waiters = self._running_waiters, []
            for future in waiters:
                if not future.done():
                    future.set_result(None)
        self._output.call(self._on_status, status)

    def _fail_waiters(self, err: Exception) -> None:
        waiters, self._running_waiters = self._running_waiters, []
        for future in waiters:
            if not future.done():
                future.set_exception(err)

    async def _supervise(self) -> None:
        # An eager task factory runs this at once, inside start(): the first status waits for
        # the next turn of the loop, as with a plain task (start() has returned, `running`
        # holds).
        await asyncio.sleep(0)
        failures = 0
        first = True
        try:
            while not self._stopping:
                if not first:
                    self.counters.restarts += 1
                first = False
                self._restart_requested = False
                self._wake.clear()
                self._set_status(RunnerStatus(RunnerState.STARTING))
                started = self._clock()
                reason, returncode, failed_to_start = await self._run_once()
                # (Attributes re-read after an await: stop() or restart() may have run.)
                if self._stop_requested():
                    break
                if self._restart_requested:
                    failures = self._failures = 0
                    continue
                if self._clock() - started >= self._stable_after:
                    failures = 0
                self._failures = failures + 1 if returncode != 0 or failed_to_start else 0
                # A simulation file that played to its end is replayed without growing backoff.
                replay = returncode == 0 and is_simulation(self.config.device)
                delay = min(
                    self._backoff_initial * 2 ** (0 if replay else failures), self._backoff_max
                )
                if not replay:
                    failures += 1
                retry_at = self._clock() + delay
                state = RunnerState.FAILED if failed_to_start else RunnerState.BACKOFF
                self._set_status(RunnerStatus(state, reason, retry_at, returncode, self._failures))
                await self._pause(delay)  # cut short by stop() or restart()
        finally:
            self.pid = None
            self._set_status(RunnerStatus(RunnerState.STOPPED))

    def _stop_requested(self) -> bool:
        return self._stopping

    async def _pause(self, delay: float) -> None:
        """Sleep `delay`, or less if stop() or restart() wakes us."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _run_once(self) -> tuple[str | None, int | None, bool]:
        """Run one process to its end. Returns (reason, returncode, failed_to_start)."""
        try:
            if self._before_start is not None:
                await asyncio.to_thread(self._before_start)
            self.argv = [
                self.command,
                *await asyncio.to_thread(render_config, self.config, self.config_dir),
            ]
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                # A `stdin` device reads its telegrams from us (feed()); nothing else does.
                stdin=asyncio.subprocess.PIPE
                if self.config.device == STDIN_DEVICE
                else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own session: a Ctrl-C in the terminal is for the program that runs us,
                # which then stops us.
                start_new_session=True,
            )
        except (OSError, ValueError) as err:
            message = f"cannot start {self.command}: {getattr(err, 'strerror', None) or err}"
            # Said once by the caller (the status' reason), not at every retry.
            _LOGGER.debug("%s", message)
            return message, None, True

        self.pid = proc.pid
        self._stdin = proc.stdin
        self._output.begin(meter.meter_id for meter in self.config.meters)
        if proc.stdout is None or proc.stderr is None:  # pragma: no cover - PIPE was asked for
            raise RuntimeError("wmbusmeters started without pipes")
        # Plain tasks, not the caller's factory: each lives only within this call, which
        # awaits or cancels every one before it returns (also when the supervisor itself is
        # cancelled), so none outlives the supervisor, the one task the caller tracks.
        readers = [
            asyncio.create_task(
                self._output.read_stdout(proc.stdout, self._on_telegram, self._on_event)
            ),
            asyncio.create_task(self._output.read_stderr(proc.stderr, self._on_event)),
        ]
        exited = asyncio.create_task(proc.wait())
        woken = asyncio.create_task(self._wake.wait())
        watchdog = asyncio.create_task(self._watch_silence())
        reason: str | None = None
        # RUNNING once spawned, not on a line of wmbusmeters: measured on 2.0.0 and 3.0.0
        # with this configuration (loglevel=normal), no line says its main loop runs for
        # every kind of receiver. "Started config <type> on <device> ..." (stderr) comes for
        # stdin, a raw tty, an M-Bus and a dongle once detected (0.2 s for an iM871A); a
        # simulation file hides it (src/bus.cc: verbose only) and plays to its end within
        # 10 ms; a missing device or RTL-SDR stick says "[ALARM SpecifiedDeviceNotFound]" and
        # "No wmbus device detected, waiting for a device to be plugged in." instead, and
        # `auto` with nothing found says nothing for 3 s, then that line. A process that
        # ends before its main loop (an unknown driver: "No such driver", exit 1 or 5 within
        # 3 ms) is a failure through its exit code.
        self._set_status(RunnerStatus(RunnerState.RUNNING))
        try:
            done, _ = await asyncio.wait(
                (exited, woken, watchdog), return_when=asyncio.FIRST_COMPLETED
            )
            if watchdog in done and exited not in done:
                reason = f"no telegram for {self.silence_timeout:g} s"
                _LOGGER.info(
                    "wmbusmeters heard nothing for %s s, restarting it", self.silence_timeout
                )
        finally:
            for task in (woken, watchdog):
                task.cancel()
            self._stdin = None
            if proc.stdin is not None:
                proc.stdin.close()
            await self._terminate(proc)
            exited.cancel()
            # The pipes close with the process; give the readers a moment to drain them.
            _, pending = await asyncio.wait(readers, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            self.pid = None
        if reason is None:
            reason = f"exited with code {proc.returncode}"
            if last_error := self.last_error:
                reason += f": {last_error}"
        return reason[:MAX_ERROR], proc.returncode, False

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM, wait, SIGKILL; always reap (no zombie)."""
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        grace = self._term_timeout
        if is_simulation(self.config.device):
            grace = min(grace, SIMULATION_TERM_TIMEOUT)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
        except TimeoutError:
            if not is_simulation(self.config.device):
                _LOGGER.warning("wmbusmeters ignored SIGTERM for %s s, killing it", grace)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await asyncio.shield(proc.wait())

    async def _watch_silence(self) -> None:
        """Return once no telegram has arrived for silence_timeout; a changed timeout counts
        at once (switched on, off, shorter or longer)."""
        while True:
            self._silence_changed.clear()
            timeout = self._silence_timeout
            if not timeout:
                await self._silence_changed.wait()
                continue
            remaining = self._output.last_telegram + timeout - self._clock()
            if remaining <= 0:
                return
            sleeper = asyncio.ensure_future(self._sleep(remaining))
            changed = asyncio.ensure_future(self._silence_changed.wait())
            try:
                await asyncio.wait((sleeper, changed), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()

"""The receiver's coordinator: runs wmbusmeters and dispatches what it says.

Push, not poll: a telegram reaches only the listeners of its own meter, so one meter's reading
never wakes another meter's entities. The meters' state is in meters.py, the drivers' in
drivers.py, offers of unknown meters in discovery.py, repair issues in issues.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
import logging
import os
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .const import (
    CONF_COMMAND,
    CONF_SILENCE_TIMEOUT,
    CONFIG_SUBDIR,
    DEFAULT_SILENCE_TIMEOUT,
    EVENT_TELEGRAM,
    MISSED_POLLS_BEFORE_UNAVAILABLE,
)
from .discovery import MeterDiscovery
from .drivers import DriverCatalog
from .issues import (
    async_clear_decryption_issue,
    async_clear_receiver_issue,
    async_raise_decryption_issue,
    async_raise_receiver_issue,
    decryption_issue_id,
    effective_problem,
    is_open,
    receiver_issue_id,
)
from .meters import Meters, MeterState, listener_config, receiver_config
from .wmbus import (
    DecryptionFailed,
    DeviceNotFound,
    Message,
    ReceiverConfig,
    RunnerEvent,
    RunnerState,
    RunnerStatus,
    Telegram,
    WmbusmetersInfo,
    WmbusRunner,
    needs_device_type,
)
from .wmbus.bundled import restore_bundled
from .wmbus.listener import ListenerConfig, ListenerError, TelegramListener
from .wmbus.loglimit import LogLimiter
from .wmbus.runner import STDIN_BUSY

_LOGGER = logging.getLogger(__name__)

#: Crash loop: this many unexpected ends of wmbusmeters in a row, with no stable run between
#: (counted by the runner whatever its backoff: 5 → 300 s makes any time window miss it).
CRASH_LOOP_COUNT = 5
#: Longest last error a repair shows.
MAX_ISSUE_TEXT = 200
#: Quick successive meter changes (add three meters) restart wmbusmeters once.
RESTART_COOLDOWN = 2.0
SILENCE_CHECK_INTERVAL = timedelta(minutes=1)
#: How often a lost serial dongle is looked for: wmbusmeters (2.0.0 and 3.0.0, measured on an
#: emulated dongle) does not open a tty again once it is lost, so a replugged one is found here.
REPLUG_CHECK_INTERVAL = timedelta(seconds=5)

type WmbusConfigEntry = ConfigEntry[WmbusCoordinator]


def silence_timeout(entry: ConfigEntry) -> float | None:
    """The runner's silence timeout in seconds (None: off)."""
    minutes = entry.options.get(CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT)
    return float(minutes) * 60 if minutes else None


class WmbusCoordinator:
    """Runs wmbusmeters for one receiver and dispatches its telegrams and messages."""

    def __init__(self, hass: HomeAssistant, entry: WmbusConfigEntry, info: WmbusmetersInfo) -> None:
        """Prepare; async_start() runs wmbusmeters."""
        self.hass = hass
        self.entry = entry
        self.info = info
        self.version = info.version
        self.catalog = DriverCatalog(entry.data[CONF_COMMAND], info)
        self.meters = Meters(hass, entry, self.catalog)
        self.discovery = MeterDiscovery(hass, entry, self.catalog)
        self.receiver_device_id: str | None = None
        self._receiver_listeners: list[CALLBACK_TYPE] = []
        self._unsub_silence: CALLBACK_TYPE | None = None
        self._started_at = dt_util.utcnow()
        #: Meters whose decryption failure was reported in the current wmbusmeters run.
        self._reported_this_run: set[str] = set()
        self._was_up = False
        self._device_missing = False
        #: The process was found stopped (SIGSTOP) at the last minute check.
        self._process_stopped = False
        self._log = LogLimiter(_LOGGER)
        self._unsub_replug: CALLBACK_TYPE | None = None
        #: The lost device's path was seen gone (unplugged), so its return is a replug.
        self._seen_unplugged = False
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        #: Waits for HA's start to report a missing radio (one wait, however many lines).
        self._unsub_started: CALLBACK_TYPE | None = None
        #: wmbusmeters' failure was logged (once, until it works again: log-when-unavailable).
        self._logged_down = False
        self._failed_to_start = False
        #: Timers that mark a wired meter unavailable when its polls go unanswered.
        self._poll_watch: dict[str, CALLBACK_TYPE] = {}
        #: A network receiver's port (started before wmbusmeters, kept across its restarts).
        self.listener: TelegramListener | None = None
        self._listener_flush: asyncio.TimerHandle | None = None
        #: One listener change at a time (two quick reconfigures must not both bind).
        self._listener_lock = asyncio.Lock()
        self.meters.sync()
        self.runner = WmbusRunner(
            entry.data[CONF_COMMAND],
            self._receiver_config(),
            Path(hass.config.path(CONFIG_SUBDIR, entry.entry_id)),
            on_telegram=self.handle_telegram,
            on_event=self._on_event,
            on_status=self._on_status,
            silence_timeout=silence_timeout(entry),
            # A HACS update between two starts drops the bundled binary's exec bit.
            before_start=partial(restore_bundled, entry.data[CONF_COMMAND]),
        )
        self._restart_debouncer = Debouncer(
            hass,
            _LOGGER,
            cooldown=RESTART_COOLDOWN,
            immediate=False,
            function=self._async_apply_config,
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Open a network receiver's port, learn the drivers and the meters' fields, then start
        wmbusmeters. ListenerError if the port cannot be listened on."""
        if (config := listener_config(self.entry)) is not None:
            await self._async_start_listener(config)
        if await self.catalog.async_load():
            await self.meters.async_check_drivers(self.version)
            self.runner.config = self._receiver_config()
        for meter in self.meters.by_id.values():
            await self.meters.async_document(meter)
        self._started_at = dt_util.utcnow()
        self.runner.start()
        for meter in self.meters.by_id.values():
            self._watch_polls(meter)
        self._unsub_silence = async_track_time_interval(
            self.hass, self._check_silence, SILENCE_CHECK_INTERVAL, name="wmbusmeters silence"
        )

    async def async_stop(self) -> None:
        """Stop wmbusmeters; nothing is left running, no meter listener is left behind.
        The unload, HA's stop and a failed set-up may each ask: one stop, every caller
        returns once it is done."""
        if self._stop_task is None:
            self._stop_task = self.hass.async_create_task(self._async_stop(), eager_start=True)
        await asyncio.shield(self._stop_task)

    async def _async_stop(self) -> None:
        self._stopping = True  # its last lines may still report the device: no new watch
        self._restart_debouncer.async_cancel()
        if self._unsub_started is not None:
            self._unsub_started()
            self._unsub_started = None
        self._stop_replug_watch()
        if self._unsub_silence:
            self._unsub_silence()
            self._unsub_silence = None
        for cancel in self._poll_watch.values():
            cancel()
        self._poll_watch.clear()
        await self.runner.stop()
        if self.listener is not None:
            await self.listener.stop()
        if self._listener_flush is not None:
            self._listener_flush.cancel()
            self._listener_flush = None
        self.meters.close()

    async def _async_start_listener(self, config: ListenerConfig) -> None:
        listener = TelegramListener(
            config,
            # The runner outlives its processes: each line goes to the one running now.
            self.runner.feed,
            # wmbusmeters is behind: TCP senders wait (their lines are kept, not dropped).
            busy=lambda: self.runner.stdin_backlog() > STDIN_BUSY,
        )
        await listener.start()
        listener.on_change = self._listener_changed
        self.listener = listener

    @callback
    def _listener_changed(self) -> None:
        # Lines may come thousands a second: the receiver's sensors follow once a second.
        if self._listener_flush is None:
            self._listener_flush = self.hass.loop.call_later(1.0, self._flush_listener)

    @callback
    def _flush_listener(self) -> None:
        self._listener_flush = None
        self._notify_receiver()

    async def _async_apply_listener(self) -> None:
        """The port, protocol or allow-list changed: only the listener restarts."""
        async with self._listener_lock:
            await self._async_replace_listener()

    async def _async_replace_listener(self) -> None:
        config = listener_config(self.entry)
        if self.listener is not None and config == self.listener.config:
            return
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        if config is None:
            return
        failure = None
        try:
            await self._async_start_listener(config)
        except ListenerError as err:
            failure = str(err)
        if failure is not None:
            # The receiver keeps running (wmbusmeters too): the form said the port was free.
            _LOGGER.error("Cannot listen on %s port %s: %s", config.protocol, config.port, failure)
        self._notify_receiver()

    def _receiver_config(self) -> ReceiverConfig:
        return receiver_config(self.entry, self.meters.configs())

    @callback
    def async_entry_updated(self) -> None:
        """Meters were added, changed or removed: restart wmbusmeters once, soon."""
        if self._stopping:
            return  # unloading (or a failed unload): nothing may start again
        for meter in self.meters.sync():
            self.hass.async_create_task(self._async_meter_added(meter), eager_start=True)
            self._watch_polls(meter)
        for meter_id in [m for m in self._poll_watch if m not in self.meters.by_id]:
            self._poll_watch.pop(meter_id)()  # a removed wired meter's watch ends with it
        self.runner.silence_timeout = silence_timeout(self.entry)
        if self.listener is not None or listener_config(self.entry) is not None:
            self.entry.async_create_background_task(
                self.hass, self._async_apply_listener(), "wmbusmeters listener"
            )
        if self._receiver_config() != self.runner.config:
            self._restart_debouncer.async_schedule_call()

    async def _async_meter_added(self, meter: MeterState) -> None:
        await self.meters.async_document(meter)
        if self.meters.by_id.get(meter.meter_id) is meter:  # not removed meanwhile
            self.meters.announce(meter)

    async def _async_apply_config(self) -> None:
        if self._stopping:
            return
        if self.catalog.drivers:
            # A driver picked in a repair, or still rejected.
            await self.meters.async_check_drivers(self.version)
        if not self._stopping:  # not unloaded meanwhile: that would leave a process behind
            self.runner.restart(self._receiver_config())

    @callback
    def restart(self) -> bool:
        """Restart wmbusmeters now (the button, the action, a replugged radio); not once the
        receiver stops: that would leave a process nothing stops."""
        if self._stopping:
            return False
        self.runner.restart()
        return True

    # -- listeners --------------------------------------------------------------------------

    @callback
    def async_add_receiver_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener()` when the runner's state or counters change."""
        self._receiver_listeners.append(listener)
        return lambda: self._receiver_listeners.remove(listener)

    def _notify_receiver(self) -> None:
        for listener in list(self._receiver_listeners):
            listener()

    # -- state ------------------------------------------------------------------------------

    @property
    def receiving(self) -> bool:
        """Whether wmbusmeters runs with its radio there (what the "running" sensor shows):
        not while it waits for a missing dongle, nor while its process is stopped (checked
        each minute)."""
        return (
            self.runner.status.state is RunnerState.RUNNING
            and not self._device_missing
            and not self._process_stopped
        )

    @property
    def runner_up(self) -> bool:
        """Whether wmbusmeters is running or about to be (a simulation replay)."""
        status = self.runner.status
        if status.state in (RunnerState.RUNNING, RunnerState.STARTING):
            return True
        return status.state is RunnerState.BACKOFF and status.returncode == 0

    def meter_available(self, meter: MeterState) -> bool:
        """Whether a meter's entities show values: the runner is up, the radio there and the
        meter not lost."""
        # _was_up follows runner_up on every status change; read per state write, so cheap.
        return not meter.lost and self._was_up and not self._device_missing

    # -- runner callbacks -------------------------------------------------------------------

    @callback
    def handle_telegram(self, telegram: Telegram) -> None:
        """Take a telegram from the runner: update the meter, fire the event, push."""
        if self._logged_down:
            self._log_up()
        meter = self.meters.by_id.get(telegram.meter_id)
        if meter is None:
            if telegram.discovered:
                self.discovery.offer(
                    telegram.meter_id, telegram.driver, telegram.media, encrypted=False
                )
            return
        now = dt_util.utcnow()
        if meter.last_seen is not None:
            meter.intervals.append((now - meter.last_seen).total_seconds())
        meter.last_seen = now
        meter.last_telegram = telegram
        # A telegram shows the receiver works: its issues clear themselves (dict lookups).
        if self._device_missing:
            self._device_missing = False
            self._stop_replug_watch()
            self._notify_meters()  # available again, not only this meter
            self._notify_receiver()
        self._clear_receiver_issue("device_missing")
        self._clear_receiver_issue("crash_loop")
        if meter.unreadable or is_open(self.hass, decryption_issue_id(meter.meter_id)):
            # It decodes now (a fixed key): the repair issue and the notification clear
            # themselves (a submitted fix flow has deleted the issue already).
            meter.unreadable = False
            async_clear_decryption_issue(self.hass, meter.meter_id)
        back = meter.lost
        if back:
            meter.lost = False
            _LOGGER.info("Meter %s (%s) is heard again", meter.name, meter.meter_id)
        self._watch_polls(meter)
        if telegram.driver and telegram.driver != meter.driver:
            meter.driver = telegram.driver
            self.meters.update_model(meter)
        self.hass.bus.async_fire(
            EVENT_TELEGRAM,
            {
                "meter_id": meter.meter_id,
                "name": meter.name,
                "driver": telegram.driver,
                "media": telegram.media,
                "fields": telegram.readings,
            },
        )
        if back:
            # Available again: every entity writes, also those whose value is what it was
            # (they write only changes otherwise, and would stay unavailable).
            meter.notify(None)
        meter.notify(telegram)

    @callback
    def _on_event(self, event: RunnerEvent) -> None:
        if isinstance(event, DecryptionFailed):
            meter = self.meters.by_id.get(event.meter_id)
            if meter is None:
                # A neighbour's encrypted meter: offer it, a key will be needed.
                self.discovery.offer(event.meter_id, "auto", "", encrypted=True)
            elif meter.meter_id not in self._reported_this_run:
                # 2.0.0 says it once per run; a restart (with a fixed key) may say it again.
                self._reported_this_run.add(meter.meter_id)
                problem = effective_problem(event.problem, bool(meter.config.key))
                _LOGGER.warning(
                    "wmbusmeters cannot read meter %s (%s): %s",
                    meter.name,
                    meter.meter_id,
                    problem.value.replace("_", " "),
                )
                meter.unreadable = True
                async_raise_decryption_issue(
                    self.hass,
                    entry_id=self.entry.entry_id,
                    subentry_id=meter.subentry_id,
                    meter_id=meter.meter_id,
                    name=meter.name,
                    problem=problem,
                )
        elif isinstance(event, DeviceNotFound):
            self._log.log(logging.WARNING, event.line)
            # Not while HA is still starting: the dongle may simply not have answered yet.
            if not self._device_missing:
                self._device_missing = True
                self._notify_meters()  # unavailable: nothing can be heard
                self._notify_receiver()
                if self._unsub_started is not None:
                    self._unsub_started()
                # Reported once HA has started (at once if it has): one wait per outage.
                self._unsub_started = async_at_started(self.hass, self._async_device_missing)
            if needs_device_type(self.runner.config.device):
                self._watch_for_replug()
        elif isinstance(event, Message) and event.level == "error":
            self._log.log(logging.ERROR, event.line)
        else:
            self._log.log(logging.DEBUG, event.line)

    @callback
    def _async_device_missing(self, _hass: HomeAssistant) -> None:
        if self._device_missing and not self._stopping:  # no telegram since
            self._raise_receiver_issue("device_missing", device=self.runner.config.device)

    def _watch_for_replug(self) -> None:
        """Look for the serial device until it is back, then start wmbusmeters on it again.

        Only a device that was gone and came back restarts wmbusmeters: one that is there but
        not answering (the wrong dongle type) would otherwise restart it every few seconds.
        """
        if self._unsub_replug is None and not self._stopping:
            self._seen_unplugged = False
            self._unsub_replug = async_track_time_interval(
                self.hass,
                self._async_check_replug,
                REPLUG_CHECK_INTERVAL,
                name="wmbusmeters replug",
            )
            # At once too: an unplugged device is gone by the time wmbusmeters says so.
            self.entry.async_create_background_task(
                self.hass, self._async_check_replug(dt_util.utcnow()), "wmbusmeters replug"
            )

    def _stop_replug_watch(self) -> None:
        if self._unsub_replug is not None:
            self._unsub_replug()
            self._unsub_replug = None

    async def _async_check_replug(self, _now: datetime) -> None:
        device = self.runner.config.device
        if not await self.hass.async_add_executor_job(os.path.exists, device):
            self._seen_unplugged = True
        elif self._seen_unplugged and self._unsub_replug is not None:
            _LOGGER.info("The radio %s is back; restarting wmbusmeters", device)
            self._stop_replug_watch()
            self.restart()

    def _notify_meters(self) -> None:
        for meter in list(self.meters.by_id.values()):
            meter.notify(None)

    def _raise_receiver_issue(self, kind: str, **placeholders: str) -> None:
        async_raise_receiver_issue(
            self.hass, self.entry.entry_id, kind, {"title": self.entry.title, **placeholders}
        )

    def _clear_receiver_issue(self, kind: str) -> None:
        if is_open(self.hass, receiver_issue_id(kind, self.entry.entry_id)):
            async_clear_receiver_issue(self.hass, self.entry.entry_id, kind)

    def _note_crash(self, status: RunnerStatus) -> None:
        """Five unexpected ends in a row are a crash loop."""
        if status.failures >= CRASH_LOOP_COUNT:
            reason = status.reason or ""
            if len(reason) > MAX_ISSUE_TEXT:
                reason = reason[: MAX_ISSUE_TEXT - 1] + "…"
            self._raise_receiver_issue(
                "crash_loop", restarts=str(status.failures), last_error=reason
            )

    @callback
    def _on_status(self, status: RunnerStatus) -> None:
        if status.state is RunnerState.STARTING:
            self._reported_this_run.clear()
        elif status.state is RunnerState.RUNNING:
            self._clear_receiver_issue("command_missing")
            if self._failed_to_start:
                self._failed_to_start = False
                self._log_up()  # it could not start, and now it has
        elif status.state is RunnerState.FAILED:
            self._raise_receiver_issue(
                "command_missing", command=self.runner.command, reason=status.reason or ""
            )
        if status.state is RunnerState.FAILED or (
            status.state is RunnerState.BACKOFF and status.returncode != 0
        ):
            self._note_crash(status)
        if status.state is RunnerState.FAILED or (
            status.state is RunnerState.BACKOFF and status.returncode != 0
        ):
            self._log_down(status)
        if status.state is RunnerState.FAILED:
            self._failed_to_start = True
        if (up := self.runner_up) != self._was_up and not self._stopping:
            # Only a change of availability touches the meters' entities (thousands of them).
            self._was_up = up
            self._notify_meters()
        self._notify_receiver()

    def _log_down(self, status: RunnerStatus) -> None:
        """The first failure is a warning (an error when it cannot start); the next ones of
        the same outage are logged at debug, until wmbusmeters works again."""
        failed = status.state is RunnerState.FAILED
        # The first failure in a row (the runner counts them; a stable run or a requested
        # restart resets it) is a new outage, even if nothing was heard since the last one.
        if self._logged_down and status.failures > 1:
            _LOGGER.debug("wmbusmeters stopped again (%s)", status.reason)
            return
        self._logged_down = True
        if failed:
            _LOGGER.error("%s; trying again with backoff", status.reason)
        else:
            _LOGGER.warning("wmbusmeters stopped (%s); restarting it", status.reason)

    def _log_up(self) -> None:
        if self._logged_down:
            self._logged_down = False
            _LOGGER.info("wmbusmeters for %s works again", self.entry.title)

    @callback
    def _check_silence(self, now: datetime) -> None:
        self.entry.async_create_background_task(
            self.hass, self._async_check_process(), "wmbusmeters process check"
        )
        self._notify_receiver()  # the receiver's counters, once a minute
        self._log.flush()  # "N more like this" of a flood that has stopped
        for meter in list(self.meters.by_id.values()):
            if meter.config.polled:
                continue  # its polls are watched (_watch_polls)
            last = meter.last_seen or self._started_at
            silent = (now - last).total_seconds()
            if not meter.lost and silent > meter.expected_silence():
                meter.lost = True
                _LOGGER.info(
                    "Meter %s (%s) not heard for %d minutes",
                    meter.name,
                    meter.meter_id,
                    silent // 60,
                )
                meter.notify(None)

    def _watch_polls(self, meter: MeterState) -> None:
        """A wired meter that answers none of its next polls shows as unavailable (not as a
        failure of the receiver); its next answer brings it back."""
        if cancel := self._poll_watch.pop(meter.meter_id, None):
            cancel()
        if not meter.config.polled or meter.closed:
            return
        # wmbusmeters' first poll comes one interval after it starts, each answer a moment
        # after its poll: one interval of grace on top of the misses.
        delay = (MISSED_POLLS_BEFORE_UNAVAILABLE + 1) * meter.config.poll_interval

        @callback
        def missed(_now: datetime) -> None:
            self._poll_watch.pop(meter.meter_id, None)
            if meter.closed or meter.lost:
                return
            meter.lost = True
            _LOGGER.info(
                "Meter %s (%s) answered none of its last %d polls",
                meter.name,
                meter.meter_id,
                MISSED_POLLS_BEFORE_UNAVAILABLE,
            )
            meter.notify(None)

        self._poll_watch[meter.meter_id] = async_call_later(self.hass, delay, missed)

    async def _async_check_process(self) -> None:
        stopped = await self.hass.async_add_executor_job(self.runner.process_stopped)
        if stopped != self._process_stopped:
            self._process_stopped = stopped
            if stopped:
                _LOGGER.warning(
                    "wmbusmeters (pid %s) is stopped: it hears nothing", self.runner.pid
                )
            self._notify_receiver()

    def diagnostics(self) -> dict[str, Any]:
        """Runner state and counters (no keys: the argv has none by construction)."""
        runner = self.runner
        return {
            "version": self.version,
            "argv": runner.argv,
            "status": {
                "state": runner.status.state.value,
                "reason": runner.status.reason,
                "returncode": runner.status.returncode,
            },
            "counters": {
                "telegrams": runner.counters.telegrams,
                "restarts": runner.counters.restarts,
                "skipped_lines": runner.counters.skipped_lines,
                "stderr_lines": runner.counters.stderr_lines,
                "flooded_lines": runner.counters.flooded_lines,
                "callback_errors": runner.counters.callback_errors,
                "refused_values": runner.counters.refused_values,
            },
            "stderr_tail": list(runner.stderr_tail),
            "listener": self.listener_diagnostics(),
        }

    def listener_diagnostics(self) -> dict[str, Any] | None:
        """A network receiver's port and what each source sent (None for other receivers)."""
        listener = self.listener
        if listener is None:
            return None
        return {
            "protocol": listener.config.protocol,
            "port": listener.bound_port,
            "listening": listener.listening,
            "connections": listener.connections,
            "refused_connections": listener.refused_connections,
            "totals": listener.totals(),
            "sources": {source: stats.as_dict() for source, stats in listener.sources.items()},
        }

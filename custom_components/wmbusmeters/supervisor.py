"""A receiver's wmbusmeters process and its inputs: the runner, a network receiver's port, the
watch for a replugged dongle and for a stopped process. It sets the availability model, raises
and clears the receiver's own issues, and hands each telegram and meter event on to the
coordinator. Modelled on HA's go2rtc server: tasks from the entry, one idempotent stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from functools import partial
import logging
import os
from pathlib import Path
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.importlib import async_import_module
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .availability import Availability
from .const import CONF_COMMAND, CONF_SILENCE_TIMEOUT, CONFIG_SUBDIR, DEFAULT_SILENCE_TIMEOUT
from .coordinator import WmbusCoordinator
from .issues import ReceiverIssues
from .meters import listener_config, mqtt_config
from .wmbus import (
    DeviceNotFound,
    Message,
    RunnerEvent,
    RunnerState,
    RunnerStatus,
    Telegram,
    ValueLimits,
    WmbusRunner,
    needs_device_type,
)
from .wmbus.bundled import BundledAlteredError, prepare_bundled
from .wmbus.listener import ListenerConfig, ListenerError, TelegramListener
from .wmbus.loglimit import LogLimiter
from .wmbus.runner import STDIN_BUSY

if TYPE_CHECKING:
    from .mqtt_receiver import MqttFrames

_LOGGER = logging.getLogger(__name__)

#: Quick successive meter changes (add three meters) restart wmbusmeters once.
RESTART_COOLDOWN = 2.0
#: The receiver's counters, the process check and the log's "N more" follow once a minute.
MINUTE = timedelta(minutes=1)
#: How often a lost serial dongle is looked for: wmbusmeters (2.0.0 and 3.0.0, measured on an
#: emulated dongle) does not open a tty again once it is lost, so a replugged one is found here.
REPLUG_CHECK_INTERVAL = timedelta(seconds=5)
#: A network port's counters change with every line: its sensors follow once a second.
LISTENER_REFRESH = 1.0
#: What Home Assistant can hold; a value past these is passed on as None (unknown), counted,
#: and never stops the receiver: a state is at most 255 characters; 1e15 is what HA, the
#: recorder and JSON's 64-bit numbers keep exactly; a field name becomes part of a unique id
#: and an entity id (64 printable characters); 250 fields is more than any driver has.
VALUE_LIMITS = ValueLimits(
    max_text=255, max_number=1e15, max_name=64, max_fields=250, printable_names=True
)


def silence_timeout(entry: ConfigEntry, link_down: bool = False) -> float | None:
    """The runner's silence timeout in seconds (None: off). Off while an MQTT receiver's
    broker is away: a new wmbusmeters would hear no more, restarting it is no cure."""
    if link_down:
        return None
    minutes = entry.options.get(CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT)
    return float(minutes) * 60 if minutes else None


class ReceiverSupervisor:
    """Runs wmbusmeters for one receiver, keeps it running, and stops it once."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        coordinator: WmbusCoordinator,
        availability: Availability,
        issues: ReceiverIssues,
    ) -> None:
        """Prepare; async_start() runs wmbusmeters."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.availability = availability
        self.issues = issues
        #: A network receiver's port (started before wmbusmeters, kept across its restarts).
        self.listener: TelegramListener | None = None
        self._unsub_listener_refresh: CALLBACK_TYPE | None = None
        #: One listener change at a time (two quick reconfigures must not both bind).
        self._listener_lock = asyncio.Lock()
        #: An MQTT receiver's subscription (kept across wmbusmeters' restarts).
        self.mqtt: MqttFrames | None = None
        #: MQTT was seen connected: a disconnect is a lost broker, not a start.
        self._link_seen = False
        #: time.monotonic() when MQTT lost its broker (None: connected).
        self._link_down_since: float | None = None
        self._log = LogLimiter(_LOGGER)
        self._unsubs: list[CALLBACK_TYPE] = []
        self._unsub_replug: CALLBACK_TYPE | None = None
        #: The lost device's path was seen gone (unplugged), so its return is a replug.
        self._seen_unplugged = False
        #: Waits for HA's start to report a missing radio (one wait per outage).
        self._unsub_started: CALLBACK_TYPE | None = None
        #: wmbusmeters' failure was logged (once, until it works again: log-when-unavailable).
        self._logged_down = False
        self._failed_to_start = False
        #: Something a telegram clears may be pending (checked per telegram: one flag).
        self._troubled = True
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        #: The bundled binary was found altered before a start (and the reload that says so
        #: was asked for).
        self._altered = False
        self._reloading = False
        command: str = entry.data[CONF_COMMAND]
        self.runner = WmbusRunner(
            command,
            coordinator.receiver_config(),
            Path(hass.config.path(CONFIG_SUBDIR, entry.entry_id)),
            on_telegram=self._on_telegram,
            on_event=self._on_event,
            on_status=self._on_status,
            silence_timeout=silence_timeout(entry),
            # A HACS update between two starts drops the bundled binary's exec bit; an altered
            # one is not started (the receiver is set up again, which says so: _on_status).
            before_start=self._before_start,
            limits=VALUE_LIMITS,
            # Its supervising task is the entry's: HA knows it, and it ends with the entry.
            create_task=partial(entry.async_create_background_task, hass),
        )
        self._restart_debouncer = Debouncer(
            hass, _LOGGER, cooldown=RESTART_COOLDOWN, immediate=False, function=self._async_apply
        )

    def _before_start(self) -> None:
        """Before each start (in a worker thread): the bundled binary made executable again
        and checked (cheap unless its files changed)."""
        try:
            prepare_bundled(self.runner.command)
        except BundledAlteredError:
            self._altered = True
            raise

    @property
    def version(self) -> str:
        """The running wmbusmeters' version."""
        return self.coordinator.version

    @property
    def stopping(self) -> bool:
        """The receiver stops (or stopped): nothing may start again."""
        return self._stopping

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.entry.async_create_background_task(self.hass, coro, name)

    # -- lifecycle --------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Open a network receiver's port, then start wmbusmeters. ListenerError if the port
        cannot be listened on (nothing is left running)."""
        if (config := listener_config(self.entry)) is not None:
            await self._async_start_listener(config)
        if (subscription := mqtt_config(self.entry)) is not None:
            # Imported here: only an MQTT receiver loads (and waits for) Home Assistant's MQTT.
            module = await async_import_module(self.hass, f"{__package__}.mqtt_receiver")
            frames: MqttFrames = module.MqttFrames(
                self.hass, subscription, self._feed_frame, self._listener_changed, self._link
            )
            await frames.async_start()
            self.mqtt = frames
        self.runner.config = self.coordinator.receiver_config()
        self.runner.start()
        self._unsubs.append(
            async_track_time_interval(self.hass, self._every_minute, MINUTE, name="wmbusmeters")
        )

    async def async_stop(self) -> None:
        """Stop wmbusmeters and the port. The unload, HA's stop and a failed set-up may each
        ask: one stop, every caller returns once it is done."""
        if self._stop_task is None:
            self._stop_task = self.hass.async_create_task(self._async_stop(), eager_start=True)
        await asyncio.shield(self._stop_task)

    async def _async_stop(self) -> None:
        self._stopping = True  # its last lines may still report the device: no new watch
        self._restart_debouncer.async_cancel()
        for unsub in (self._unsub_started, self._unsub_replug, self._unsub_listener_refresh):
            if unsub is not None:
                unsub()
        self._unsub_started = self._unsub_replug = self._unsub_listener_refresh = None
        while self._unsubs:
            self._unsubs.pop()()
        if self.mqtt is not None:
            self.mqtt.async_stop()
        await self.runner.stop()
        async with self._listener_lock:  # a port being changed is bound, then closed here
            if self.listener is not None:
                await self.listener.stop()

    @callback
    def async_entry_updated(self) -> None:
        """Meters, options or the port changed: the listener follows, and wmbusmeters
        restarts once, soon, if what it is told changed."""
        if self._stopping:
            return  # unloading (or a failed unload): nothing may start again
        self.runner.silence_timeout = silence_timeout(self.entry, self.availability.link_down)
        if self.listener is not None or listener_config(self.entry) is not None:
            self._background(self._async_apply_listener(), "wmbusmeters listener")
        if self.mqtt is not None and (subscription := mqtt_config(self.entry)) is not None:
            # Another topic resubscribes at once; wmbusmeters restarts below only if the line
            # format it reads changed.
            self._background(self.mqtt.async_apply(subscription), "wmbusmeters mqtt")
        if self.coordinator.receiver_config() != self.runner.config:
            self._restart_debouncer.async_schedule_call()

    async def _async_apply(self) -> None:
        if self._stopping:
            return
        config = await self.coordinator.async_prepare()
        if not self._stopping:  # not unloaded meanwhile: that would leave a process behind
            self.runner.restart(config)

    @callback
    def restart(self) -> bool:
        """Restart wmbusmeters now (the button, the action, a replugged radio); not once the
        receiver stops: that would leave a process nothing stops."""
        if self._stopping:
            return False
        self.runner.restart()
        return True

    # -- the network port -------------------------------------------------------------------

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
        # Not once it stops: closing the port ends its connections, which it reports.
        if self._unsub_listener_refresh is None and not self._stopping:
            self._unsub_listener_refresh = async_call_later(
                self.hass, LISTENER_REFRESH, self._refresh_listener
            )

    @callback
    def _refresh_listener(self, _now: datetime) -> None:
        self._unsub_listener_refresh = None
        self.availability.receiver_changed()

    def _feed_frame(self, line: bytes) -> bool:
        """An MQTT frame, to the wmbusmeters that reads its kind of line: between a new
        payload format and wmbusmeters' restart with it, frames are undelivered (counted), not
        fed to a process that cannot read them."""
        mqtt = self.mqtt
        if mqtt is not None and mqtt.config.line_format != self.runner.config.device_type:
            return False
        return self.runner.feed(line)

    @callback
    def _link(self, connected: bool) -> None:
        """An MQTT receiver's broker went away or came back: the receiver is not hearing
        meanwhile, and its silence does not restart wmbusmeters (MQTT reports the broker)."""
        if self._stopping:
            return
        was_down = self.availability.link_down
        self.availability.set_link_down(not connected)
        self.runner.silence_timeout = silence_timeout(self.entry, not connected)
        now = time.monotonic()
        if not connected:
            self._link_down_since = now
            if self._link_seen:
                _LOGGER.warning(
                    "%s: MQTT lost its broker; no frames until it is back", self.entry.title
                )
            else:  # (at Home Assistant's start MQTT is often still connecting)
                _LOGGER.debug("%s: MQTT is not connected yet", self.entry.title)
            return
        if self._link_down_since is not None:
            # The outage is no silence of the radio (the runner's clock is monotonic too).
            self.runner.excuse_silence(now - self._link_down_since)
            self._link_down_since = None
        if was_down and self._link_seen:
            _LOGGER.info("%s: MQTT is connected again", self.entry.title)
        self._link_seen = True

    async def _async_apply_listener(self) -> None:
        """The port, protocol or allow-list changed: only the listener restarts."""
        async with self._listener_lock:
            config = listener_config(self.entry)
            if self._stopping:
                return
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
                # The receiver keeps running (wmbusmeters too): the form said it was free.
                _LOGGER.error(
                    "Cannot listen on %s port %s: %s", config.protocol, config.port, failure
                )
            self.availability.receiver_changed()

    # -- what wmbusmeters says --------------------------------------------------------------

    @callback
    def _on_telegram(self, telegram: Telegram) -> None:
        if self._troubled:
            self._heard()
        if (
            self.mqtt is not None
            and "rssi_dbm" not in telegram.readings
            and (rssi := self.mqtt.rssi_for(telegram.meter_id)) is not None
        ):
            # A hex frame tells wmbusmeters nothing of the radio: the best gateway's RSSI.
            telegram.readings["rssi_dbm"] = rssi
        self.coordinator.handle_telegram(telegram)

    @callback
    def _heard(self) -> None:
        """A telegram shows the receiver works: its outage ends, its issues clear themselves."""
        self._troubled = False
        if self._logged_down:
            self._log_up()
        if self.availability.device_missing:
            self._stop_replug_watch()
            self.availability.set_device_missing(False)
        self.issues.clear("device_missing")
        self.issues.clear("crash_loop")

    @callback
    def _on_event(self, event: RunnerEvent) -> None:
        if isinstance(event, DeviceNotFound):
            self._log.log(logging.WARNING, event.line)
            self._troubled = True
            if not self.availability.device_missing:
                self.availability.set_device_missing(True)
                if self._unsub_started is not None:
                    self._unsub_started()
                # Not while HA is still starting (the dongle may not have answered yet):
                # reported once HA has started (at once if it has), one wait per outage.
                self._unsub_started = async_at_started(self.hass, self._async_device_missing)
            if needs_device_type(self.runner.config.device):
                self._watch_for_replug()
        elif isinstance(event, Message):
            self._log.log(logging.ERROR if event.level == "error" else logging.DEBUG, event.line)
        else:
            self.coordinator.handle_event(event)

    @callback
    def _async_device_missing(self, _hass: HomeAssistant) -> None:
        self._unsub_started = None
        if self.availability.device_missing and not self._stopping:  # no telegram since
            self.issues.raise_("device_missing", device=self.runner.config.device)

    @callback
    def _on_status(self, status: RunnerStatus) -> None:
        state = status.state
        if state is RunnerState.STARTING:
            self.issues.new_run()
        elif state is RunnerState.RUNNING:
            self.issues.clear("command_missing")
            if self._failed_to_start:
                self._failed_to_start = False
                self._log_up()  # it could not start, and now it has
        failed = state is RunnerState.FAILED
        if failed and self._altered:
            # Altered since the receiver was set up: set up again (once), which does not start
            # it, raises the repair and stays stopped (no retries against an altered file).
            if not self._stopping and not self._reloading:
                self._reloading = True
                self.hass.config_entries.async_schedule_reload(self.entry.entry_id)
            self.availability.set_runner(status, stopping=self._stopping)
            return
        if failed or (state is RunnerState.BACKOFF and status.returncode != 0):
            self._troubled = True
            self.issues.runner_failed(status, self.runner.command, started=not failed)
            self._log_down(status)
            self._failed_to_start = self._failed_to_start or failed
        self.availability.set_runner(status, stopping=self._stopping)

    def _log_down(self, status: RunnerStatus) -> None:
        """The first failure is a warning (an error when it cannot start); the next ones of
        the same outage are logged at debug, until wmbusmeters works again."""
        # The first failure in a row (the runner counts them; a stable run or a requested
        # restart resets it) is a new outage, even if nothing was heard since the last one.
        if self._logged_down and status.failures > 1:
            _LOGGER.debug("wmbusmeters stopped again (%s)", status.reason)
            return
        self._logged_down = True
        if status.state is RunnerState.FAILED:
            _LOGGER.error("%s; trying again with backoff", status.reason)
        else:
            _LOGGER.warning("wmbusmeters stopped (%s); restarting it", status.reason)

    def _log_up(self) -> None:
        if self._logged_down:
            self._logged_down = False
            _LOGGER.info("wmbusmeters for %s works again", self.entry.title)

    # -- watches ----------------------------------------------------------------------------

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
            self._background(self._async_check_replug(dt_util.utcnow()), "wmbusmeters replug")

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

    @callback
    def _every_minute(self, _now: datetime) -> None:
        self._background(self._async_check_process(), "wmbusmeters process check")
        self.availability.receiver_changed()  # the receiver's counters
        self._log.flush()  # "N more like this" of a flood that has stopped

    async def _async_check_process(self) -> None:
        stopped = await self.hass.async_add_executor_job(self.runner.process_stopped)
        if stopped and not self.availability.process_stopped:
            _LOGGER.warning("wmbusmeters (pid %s) is stopped: it hears nothing", self.runner.pid)
        self.availability.set_process_stopped(stopped)

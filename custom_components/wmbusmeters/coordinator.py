"""The receiver's coordinator: runs wmbusmeters and pushes each telegram to its meter's entities.

Push, not poll: a telegram reaches only the listeners of its own meter, so one meter's reading
never wakes another meter's entities.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.config_entries import (
    SOURCE_INTEGRATION_DISCOVERY,
    ConfigEntry,
    ConfigSubentry,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, discovery_flow
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.start import async_at_started
from homeassistant.util import dt as dt_util

from .compat import find_device
from .const import (
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DRIVER,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_METER_ID,
    CONF_SILENCE_TIMEOUT,
    CONFIG_SUBDIR,
    DEFAULT_SILENCE_TIMEOUT,
    DOMAIN,
    EVENT_TELEGRAM,
    MIN_SILENCE_BEFORE_UNAVAILABLE,
    SUBENTRY_METER,
)
from .manufacturers import manufacturer_for_codes
from .repairs import (
    async_clear_decryption_issue,
    async_clear_receiver_issue,
    async_clear_unknown_driver_issue,
    async_raise_decryption_issue,
    async_raise_receiver_issue,
    async_raise_unknown_driver_issue,
    effective_problem,
)
from .wmbus import (
    DecryptionFailed,
    DeviceNotFound,
    DriverInfo,
    FieldInfo,
    Message,
    MeterConfig,
    ReceiverConfig,
    RunnerEvent,
    RunnerState,
    RunnerStatus,
    Telegram,
    WmbusmetersInfo,
    WmbusRunner,
    list_drivers,
    list_fields,
)
from .wmbus.upgrades import renamed_driver

_LOGGER = logging.getLogger(__name__)

#: Fields of --listfields that describe the telegram, not a reading (CONTRACT.md), and
#: timestamp variants wmbusmeters does not print in its default JSON.
_NOT_READINGS = frozenset(
    {
        "id",
        "name",
        "media",
        "meter",
        "driver",
        "device",
        "timestamp_ut",
        "timestamp_lt",
        "timestamp_utc",
    }
)
#: Crash loop: this many unexpected ends of wmbusmeters within the window.
CRASH_LOOP_COUNT = 5
CRASH_LOOP_WINDOW = 600.0
#: Quick successive meter changes (add three meters) restart wmbusmeters once.
RESTART_COOLDOWN = 2.0
SILENCE_CHECK_INTERVAL = timedelta(minutes=1)

type WmbusConfigEntry = ConfigEntry[WmbusCoordinator]
type MeterListener = Callable[[Telegram | None], None]


@dataclass(slots=True)
class MeterState:
    """One configured meter and what has been heard from it."""

    subentry_id: str
    name: str
    config: MeterConfig
    #: Fields wmbusmeters documents for the configured driver.
    documented_fields: list[str] = field(default_factory=list)
    last_telegram: Telegram | None = None
    last_seen: datetime | None = None
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=16))
    lost: bool = False
    #: The driver wmbusmeters reports (differs from the configured one for `auto`).
    driver: str = ""

    @property
    def meter_id(self) -> str:
        """The meter's 8-hex-digit id."""
        return self.config.meter_id

    def expected_silence(self) -> float:
        """Seconds of silence after which the meter counts as lost.

        Three times its usual spacing, never less than the floor (battery meters sleep).
        """
        if not self.intervals:
            return MIN_SILENCE_BEFORE_UNAVAILABLE
        return max(MIN_SILENCE_BEFORE_UNAVAILABLE, 3 * statistics.median(self.intervals))


def meter_config(subentry: ConfigSubentry, rejected: Collection[str] = ()) -> MeterConfig:
    """The wmbusmeters view of a meter subentry.

    A driver the binary rejects (removed in its release) would stop wmbusmeters for every
    meter of the receiver: such a meter is read with `auto` until the user picks its
    replacement (repairs.async_raise_unknown_driver_issue).
    """
    driver: str = subentry.data[CONF_DRIVER]
    if driver in rejected:
        driver = "auto"
    return MeterConfig(
        meter_id=subentry.data[CONF_METER_ID],
        driver=driver,
        key=subentry.data.get(CONF_KEY, ""),
    )


def receiver_config(entry: ConfigEntry, rejected: Collection[str] = ()) -> ReceiverConfig:
    """The wmbusmeters view of a receiver entry and its meter subentries.

    With a catch-all meter, so that meters nobody configured are heard and offered (discovery):
    2.0.0 drops other meters' telegrams silently once any meter is configured.
    """
    return ReceiverConfig(
        listen_all=True,
        device=entry.data[CONF_DEVICE],
        link_modes=tuple(entry.data.get(CONF_LINK_MODES, ())),
        meters=tuple(
            meter_config(subentry, rejected)
            for subentry in entry.subentries.values()
            if subentry.subentry_type == SUBENTRY_METER
        ),
    )


def silence_timeout(entry: ConfigEntry) -> float | None:
    """The runner's silence timeout in seconds (None: off)."""
    minutes = entry.options.get(CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT)
    return float(minutes) * 60 if minutes else None


class WmbusCoordinator:
    """Owns the runner of one receiver and the state of its meters."""

    def __init__(self, hass: HomeAssistant, entry: WmbusConfigEntry, info: WmbusmetersInfo) -> None:
        """Prepare; start() runs wmbusmeters."""
        self.hass = hass
        self.entry = entry
        self.info = info
        self.version = info.version
        #: The binary's drivers by name (empty until start(), or if it could not list them).
        self.drivers: dict[str, DriverInfo] = {}
        #: Configured drivers the binary rejects (read with `auto` meanwhile).
        self._rejected: set[str] = set()
        self.meters: dict[str, MeterState] = {}
        self.receiver_device_id: str | None = None
        self._meter_listeners: dict[str, list[MeterListener]] = {}
        self._receiver_listeners: list[CALLBACK_TYPE] = []
        self._meter_added_listeners: list[Callable[[MeterState], None]] = []
        self._fields_cache: dict[str, list[FieldInfo]] = {}
        self._unsub_silence: CALLBACK_TYPE | None = None
        self._started_at = dt_util.utcnow()
        #: Meters whose decryption failure was reported in the current wmbusmeters run.
        self._reported_this_run: set[str] = set()
        #: Meters with an open decryption repair issue.
        self._open_issues: set[str] = set()
        self._was_up = False
        #: Receiver issues open now (command_missing, device_missing, crash_loop).
        self._receiver_issues: set[str] = set()
        self._crashes: deque[float] = deque()
        self._device_missing = False
        #: Meters heard nearby and offered for adding (discovery), this HA run.
        self._offered: set[str] = set()
        self.runner = WmbusRunner(
            entry.data[CONF_COMMAND],
            receiver_config(entry),
            Path(hass.config.path(CONFIG_SUBDIR, entry.entry_id)),
            on_telegram=self.handle_telegram,
            on_event=self._on_event,
            on_status=self._on_status,
            silence_timeout=silence_timeout(entry),
        )
        self._restart_debouncer = Debouncer(
            hass,
            _LOGGER,
            cooldown=RESTART_COOLDOWN,
            immediate=False,
            function=self._async_apply_config,
        )
        self._sync_meters()

    # -- lifecycle --------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Learn the drivers and the meters' fields, then start wmbusmeters."""
        try:
            drivers = await list_drivers(self.runner.command, self.info)
        except Exception:
            _LOGGER.debug("could not list wmbusmeters' drivers", exc_info=True)
        else:
            self.drivers = {driver.name: driver for driver in drivers}
            await self._async_check_drivers()
        for meter in self.meters.values():
            meter.documented_fields = await self.documented_fields(meter.config.driver)
        self._started_at = dt_util.utcnow()
        self.runner.start()
        self._unsub_silence = async_track_time_interval(
            self.hass, self._check_silence, SILENCE_CHECK_INTERVAL, name="wmbusmeters silence"
        )

    async def async_stop(self) -> None:
        """Stop wmbusmeters; nothing is left running."""
        self._restart_debouncer.async_cancel()
        if self._unsub_silence:
            self._unsub_silence()
            self._unsub_silence = None
        await self.runner.stop()

    async def _async_check_drivers(self) -> None:
        """Meters whose driver this binary does not list (an upgrade of wmbusmeters).

        A renamed driver follows in the subentry (the device keeps its id, entities and
        statistics; its model follows with the first telegram). An alias the binary still
        accepts (multical603) stays. A driver it rejects is read with `auto` and gets a
        fixable repair to pick its replacement.
        """
        known = self.drivers.keys()
        self._rejected.clear()
        for subentry in list(self.entry.subentries.values()):
            if subentry.subentry_type != SUBENTRY_METER:
                continue
            driver = subentry.data[CONF_DRIVER]
            if new := renamed_driver(driver, known):
                _LOGGER.info(
                    "Meter %s: wmbusmeters %s calls driver %s %s now",
                    subentry.title,
                    self.version,
                    driver,
                    new,
                )
                self.hass.config_entries.async_update_subentry(
                    self.entry, subentry, data={**subentry.data, CONF_DRIVER: new}
                )
            elif driver != "auto" and driver not in known and not await self.field_infos(driver):
                _LOGGER.warning(
                    "Meter %s: wmbusmeters %s has no driver %s; reading it with auto",
                    subentry.title,
                    self.version,
                    driver,
                )
                self._rejected.add(driver)
                async_raise_unknown_driver_issue(self.hass, self.entry, subentry)
                continue
            async_clear_unknown_driver_issue(self.hass, subentry.data[CONF_METER_ID])
        self._sync_meters()
        self.runner.config = self._receiver_config()

    def _receiver_config(self) -> ReceiverConfig:
        return receiver_config(self.entry, self._rejected)

    async def field_infos(self, driver: str) -> list[FieldInfo]:
        """The fields wmbusmeters documents for a driver (cached; empty if it cannot say)."""
        if driver not in self._fields_cache:
            try:
                fields = await list_fields(self.runner.command, driver)
            except Exception:
                _LOGGER.debug("could not list the fields of driver %s", driver, exc_info=True)
                return []
            self._fields_cache[driver] = [f for f in fields if f.name not in _NOT_READINGS]
        return self._fields_cache[driver]

    async def documented_fields(self, driver: str) -> list[str]:
        """The names of the fields wmbusmeters documents for a driver."""
        return [info.name for info in await self.field_infos(driver)]

    @callback
    def async_entry_updated(self) -> None:
        """Meters were added, changed or removed: restart wmbusmeters once, soon."""
        added = self._sync_meters()
        for meter in added:
            self.hass.async_create_task(self._async_meter_added(meter), eager_start=True)
        self.runner.silence_timeout = silence_timeout(self.entry)
        if self._receiver_config() != self.runner.config:
            self._restart_debouncer.async_schedule_call()

    async def _async_meter_added(self, meter: MeterState) -> None:
        meter.documented_fields = await self.documented_fields(meter.config.driver)
        for listener in self._meter_added_listeners:
            listener(meter)

    async def _async_apply_config(self) -> None:
        if self.drivers:
            await self._async_check_drivers()  # a driver picked in a repair, or still rejected
        self.runner.restart(self._receiver_config())

    def _sync_meters(self) -> list[MeterState]:
        """Bring self.meters in line with the subentries; return the new ones."""
        current: dict[str, MeterState] = {}
        added = []
        for subentry in self.entry.subentries.values():
            if subentry.subentry_type != SUBENTRY_METER:
                continue
            config = meter_config(subentry, self._rejected)
            meter = self.meters.get(config.meter_id)
            if meter is None or meter.subentry_id != subentry.subentry_id:
                meter = MeterState(
                    subentry.subentry_id, subentry.title, config, driver=config.driver
                )
                added.append(meter)
            if meter.name != subentry.title:
                meter.name = subentry.title
                self._rename_device(meter)
            if meter.config != config:
                meter.config = config
                meter.driver = config.driver
            current[config.meter_id] = meter
        self.meters = current
        return added

    # -- listeners --------------------------------------------------------------------------

    @callback
    def async_add_meter_listener(self, meter_id: str, listener: MeterListener) -> CALLBACK_TYPE:
        """Call `listener(telegram)` for each telegram of the meter, `listener(None)` when
        only its availability may have changed."""
        listeners = self._meter_listeners.setdefault(meter_id, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @callback
    def async_add_receiver_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener()` when the runner's state or counters change."""
        self._receiver_listeners.append(listener)
        return lambda: self._receiver_listeners.remove(listener)

    @callback
    def async_add_meter_added_listener(
        self, listener: Callable[[MeterState], None]
    ) -> CALLBACK_TYPE:
        """Call `listener(meter)` when a meter subentry is added."""
        self._meter_added_listeners.append(listener)
        return lambda: self._meter_added_listeners.remove(listener)

    def _notify_meter(self, meter_id: str, telegram: Telegram | None) -> None:
        for listener in list(self._meter_listeners.get(meter_id, ())):
            listener(telegram)

    def _notify_receiver(self) -> None:
        for listener in list(self._receiver_listeners):
            listener()

    # -- state ------------------------------------------------------------------------------

    @property
    def runner_up(self) -> bool:
        """Whether wmbusmeters is running or about to be (a simulation replay)."""
        status = self.runner.status
        if status.state in (RunnerState.RUNNING, RunnerState.STARTING):
            return True
        return status.state is RunnerState.BACKOFF and status.returncode == 0

    def meter_available(self, meter_id: str) -> bool:
        """Whether a meter's entities show values: the runner is up and the meter not lost."""
        meter = self.meters.get(meter_id)
        # _was_up follows runner_up on every status change; read per state write, so cheap.
        return meter is not None and not meter.lost and self._was_up

    # -- runner callbacks -------------------------------------------------------------------

    @callback
    def handle_telegram(self, telegram: Telegram) -> None:
        """Take a telegram from the runner: update the meter, fire the event, push."""
        meter = self.meters.get(telegram.meter_id)
        if meter is None:
            if telegram.discovered:
                self._offer(telegram.meter_id, telegram.driver, telegram.media, encrypted=False)
            return
        now = dt_util.utcnow()
        if meter.last_seen is not None:
            meter.intervals.append((now - meter.last_seen).total_seconds())
        meter.last_seen = now
        meter.last_telegram = telegram
        self._device_missing = False
        if self._receiver_issues:
            self._clear_receiver_issue("device_missing")
            self._clear_receiver_issue("crash_loop")
        if meter.meter_id in self._open_issues:
            # It decodes now (a fixed key): the repair issue clears itself.
            self._open_issues.discard(meter.meter_id)
            async_clear_decryption_issue(self.hass, meter.meter_id)
        if meter.lost:
            meter.lost = False
            _LOGGER.info("Meter %s (%s) is heard again", meter.name, meter.meter_id)
        if telegram.driver and telegram.driver != meter.driver:
            meter.driver = telegram.driver
            self._update_model(meter)
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
        self._notify_meter(meter.meter_id, telegram)

    @callback
    def _on_event(self, event: RunnerEvent) -> None:
        if isinstance(event, DecryptionFailed):
            if event.meter_id not in self.meters:
                # A neighbour's encrypted meter: offer it, a key will be needed.
                self._offer(event.meter_id, "auto", "", encrypted=True)
                return
            meter = self.meters.get(event.meter_id)
            if meter is not None and meter.meter_id not in self._reported_this_run:
                # 2.0.0 says it once per run; a restart (with a fixed key) may say it again.
                self._reported_this_run.add(meter.meter_id)
                problem = effective_problem(event.problem, bool(meter.config.key))
                _LOGGER.warning(
                    "wmbusmeters cannot read meter %s (%s): %s",
                    meter.name,
                    meter.meter_id,
                    problem.value.replace("_", " "),
                )
                self._open_issues.add(meter.meter_id)
                async_raise_decryption_issue(self.hass, self, meter, problem)
        elif isinstance(event, DeviceNotFound):
            _LOGGER.warning("wmbusmeters: %s", event.line)
            # Not while HA is still starting: the dongle may simply not have answered yet.
            self._device_missing = True
            self.entry.async_on_unload(async_at_started(self.hass, self._async_device_missing))
        elif isinstance(event, Message) and event.level == "error":
            _LOGGER.error("wmbusmeters: %s", event.line)
        else:
            _LOGGER.debug("wmbusmeters: %s", event.line)

    def _offer(self, meter_id: str, driver: str, media: str, *, encrypted: bool) -> None:
        """Offer a meter heard nearby, once per HA run (an ignored one never again: the flow
        aborts on the ignored entry's unique id)."""
        if meter_id in self._offered:
            return
        self._offered.add(meter_id)
        codes = info.manufacturers if (info := self.drivers.get(driver)) else ()
        discovery_flow.async_create_flow(
            self.hass,
            DOMAIN,
            context={"source": SOURCE_INTEGRATION_DISCOVERY},
            data={
                "entry_id": self.entry.entry_id,
                "meter_id": meter_id,
                "driver": driver,
                "media": media,
                "manufacturer": manufacturer_for_codes(codes) or "",
                "encrypted": encrypted,
            },
        )

    @callback
    def _async_device_missing(self, _hass: HomeAssistant) -> None:
        if self._device_missing:  # no telegram since
            self._raise_receiver_issue("device_missing", device=self.runner.config.device)

    def _raise_receiver_issue(self, kind: str, **placeholders: str) -> None:
        self._receiver_issues.add(kind)
        async_raise_receiver_issue(
            self.hass, self.entry.entry_id, kind, {"title": self.entry.title, **placeholders}
        )

    def _clear_receiver_issue(self, kind: str) -> None:
        if kind in self._receiver_issues:
            self._receiver_issues.discard(kind)
            async_clear_receiver_issue(self.hass, self.entry.entry_id, kind)

    def _note_crash(self, status: RunnerStatus) -> None:
        """Five unexpected ends within ten minutes are a crash loop."""
        now = time.monotonic()
        self._crashes.append(now)
        while self._crashes and now - self._crashes[0] > CRASH_LOOP_WINDOW:
            self._crashes.popleft()
        if len(self._crashes) >= CRASH_LOOP_COUNT:
            self._raise_receiver_issue(
                "crash_loop",
                restarts=str(len(self._crashes)),
                last_error=status.reason or "",
            )

    @callback
    def _on_status(self, status: RunnerStatus) -> None:
        if status.state is RunnerState.STARTING:
            self._reported_this_run.clear()
        elif status.state is RunnerState.RUNNING:
            self._clear_receiver_issue("command_missing")
        elif status.state is RunnerState.FAILED:
            self._raise_receiver_issue(
                "command_missing", command=self.runner.command, reason=status.reason or ""
            )
        if status.state is RunnerState.FAILED or (
            status.state is RunnerState.BACKOFF and status.returncode != 0
        ):
            self._note_crash(status)
        if status.state is RunnerState.BACKOFF and status.returncode != 0:
            _LOGGER.warning("wmbusmeters stopped (%s); restarting it", status.reason)
        elif status.state is RunnerState.FAILED:
            _LOGGER.error("%s", status.reason)
        if (up := self.runner_up) != self._was_up:
            # Only a change of availability touches the meters' entities (thousands of them).
            self._was_up = up
            for meter_id in self.meters:
                self._notify_meter(meter_id, None)
        self._notify_receiver()

    @callback
    def _check_silence(self, now: datetime) -> None:
        self._notify_receiver()  # the receiver's counters, once a minute
        for meter in self.meters.values():
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
                self._notify_meter(meter.meter_id, None)

    # -- devices ----------------------------------------------------------------------------

    def driver_kind(self, driver: str) -> str | None:
        """The kind of meter a driver reads (`WaterMeter`), from the driver list."""
        info = self.drivers.get(driver)
        return info.meter_type if info else None

    def manufacturer(self, driver: str) -> str | None:
        """The manufacturer of the meters a driver reads, where one is known."""
        info = self.drivers.get(driver)
        return manufacturer_for_codes(info.manufacturers) if info else None

    def _rename_device(self, meter: MeterState) -> None:
        """A renamed meter subentry renames its device (unless the user named the device)."""
        registry = dr.async_get(self.hass)
        device = find_device(registry, (DOMAIN, meter.meter_id), self.entry.entry_id)
        if device is not None and device.name != meter.name:
            registry.async_update_device(device.id, name=meter.name)

    def _update_model(self, meter: MeterState) -> None:
        registry = dr.async_get(self.hass)
        device = find_device(registry, (DOMAIN, meter.meter_id), self.entry.entry_id)
        if device is not None and device.model != meter.driver:
            registry.async_update_device(
                device.id, model=meter.driver, manufacturer=self.manufacturer(meter.driver)
            )

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
            },
            "stderr_tail": list(runner.stderr_tail),
        }

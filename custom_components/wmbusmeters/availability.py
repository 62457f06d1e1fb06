"""One answer to "is wmbusmeters running?", "is the receiver hearing?" and "is meter X
available?": the receiver's supervisor and the meters' watch set it, entities read it, and
nothing else keeps a copy.

A change is announced by dispatcher signal: a receiver-wide one (the receiver's entities, and
every meter entity when the whole receiver comes or goes) and one per meter (a meter lost or
heard again). Telegrams themselves travel through the meters (meters.py), not through here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import logging

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later, async_track_time_interval

from .const import DOMAIN, MISSED_POLLS_BEFORE_UNAVAILABLE
from .meters import Meters, MeterState
from .wmbus import RunnerState, RunnerStatus

_LOGGER = logging.getLogger(__name__)

SILENCE_CHECK_INTERVAL = timedelta(minutes=1)


def signal_receiver(entry_id: str) -> str:
    """The receiver's state or counters changed (its own entities follow)."""
    return f"{DOMAIN}_{entry_id}_receiver"


def signal_meters(entry_id: str) -> str:
    """Whether the receiver's meters can be available changed (wmbusmeters stopped, its radio
    went missing): every meter entity of the receiver writes its state."""
    return f"{DOMAIN}_{entry_id}_meters"


def signal_meter(entry_id: str, meter_id: str) -> str:
    """One meter was lost or is heard again."""
    return f"{DOMAIN}_{entry_id}_meter_{meter_id}"


class Availability:
    """What a receiver and its meters can show now."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing runs yet."""
        self.hass = hass
        self.entry_id = entry_id
        #: The runner's state: RUNNING once wmbusmeters has started.
        self.runner_state = RunnerState.STOPPED
        #: wmbusmeters is running or about to be (starting, a finished simulation replaying).
        self.runner_up = False
        #: wmbusmeters waits for a radio device that is not there.
        self.device_missing = False
        #: The process is stopped (SIGSTOP): it hears nothing.
        self.process_stopped = False
        #: An MQTT receiver's broker is not connected: no frame can come (its meters keep their
        #: last readings, as a radio's do between telegrams; MQTT reports the broker itself).
        self.link_down = False
        #: Meters gone silent, or whose polls went unanswered.
        self.lost: set[str] = set()

    @property
    def receiving(self) -> bool:
        """Whether wmbusmeters runs with its radio there (the receiver's "running" sensor)."""
        return (
            self.runner_state is RunnerState.RUNNING
            and not self.device_missing
            and not self.process_stopped
            and not self.link_down
        )

    def meter_available(self, meter_id: str) -> bool:
        """Whether a meter's entities show values: wmbusmeters is up, its radio there and the
        meter not lost (read at every state write: attribute and set lookups only)."""
        return self.runner_up and not self.device_missing and meter_id not in self.lost

    @callback
    def set_runner(self, status: RunnerStatus, *, stopping: bool) -> None:
        """The runner's state changed."""
        self.runner_state = status.state
        up = status.state in (RunnerState.RUNNING, RunnerState.STARTING) or (
            status.state is RunnerState.BACKOFF and status.returncode == 0
        )
        # Only a change of availability touches the meters' entities (thousands of them); a
        # receiver being unloaded keeps its meters as they are until their entities go.
        if up != self.runner_up and not stopping:
            self.runner_up = up
            async_dispatcher_send(self.hass, signal_meters(self.entry_id))
        self.receiver_changed()

    @callback
    def set_device_missing(self, missing: bool) -> None:
        """wmbusmeters said its radio is missing, or a telegram shows it is there."""
        if missing != self.device_missing:
            self.device_missing = missing
            async_dispatcher_send(self.hass, signal_meters(self.entry_id))
            self.receiver_changed()

    @callback
    def set_process_stopped(self, stopped: bool) -> None:
        """The minute check found the process stopped, or running again."""
        if stopped != self.process_stopped:
            self.process_stopped = stopped
            self.receiver_changed()

    @callback
    def set_link_down(self, down: bool) -> None:
        """An MQTT receiver's broker connection went away, or is back."""
        if down != self.link_down:
            self.link_down = down
            self.receiver_changed()

    @callback
    def set_lost(self, meter_id: str, lost: bool) -> None:
        """A meter went silent, or is heard again."""
        if lost == (meter_id in self.lost):
            return
        if lost:
            self.lost.add(meter_id)
        else:
            self.lost.discard(meter_id)
        async_dispatcher_send(self.hass, signal_meter(self.entry_id, meter_id))

    @callback
    def receiver_changed(self) -> None:
        """The receiver's entities read their state again."""
        async_dispatcher_send(self.hass, signal_receiver(self.entry_id))


class MeterWatch:
    """Marks meters lost: a radio meter silent for three times its usual spacing, a wired
    meter that answered none of its last polls. Its next telegram brings it back."""

    def __init__(self, hass: HomeAssistant, availability: Availability) -> None:
        """Not watching until start()."""
        self.hass = hass
        self.availability = availability
        self._unsub_silence: CALLBACK_TYPE | None = None
        #: Timers that mark a wired meter lost when its polls go unanswered.
        self._poll_watch: dict[str, CALLBACK_TYPE] = {}
        self._meters: Meters | None = None

    @callback
    def start(self, meters: Meters) -> None:
        """Watch the receiver's meters, as they come and go."""
        self._meters = meters
        self._unsub_silence = async_track_time_interval(
            self.hass, self._check_silence, SILENCE_CHECK_INTERVAL, name="wmbusmeters silence"
        )
        for meter in meters.by_id.values():
            self.heard(meter)

    @callback
    def stop(self) -> None:
        """No timer is left behind."""
        if self._unsub_silence is not None:
            self._unsub_silence()
            self._unsub_silence = None
        for cancel in self._poll_watch.values():
            cancel()
        self._poll_watch.clear()

    @callback
    def heard(self, meter: MeterState) -> None:
        """The meter spoke (or was just added): available, and its polls watched afresh."""
        if meter.meter_id in self.availability.lost:
            _LOGGER.info("Meter %s (%s) is heard again", meter.name, meter.meter_id)
            self.availability.set_lost(meter.meter_id, False)
        if cancel := self._poll_watch.pop(meter.meter_id, None):
            cancel()
        if meter.config.polled and not meter.closed and self._unsub_silence is not None:
            self._watch_polls(meter)

    @callback
    def forget(self, meter_id: str) -> None:
        """A meter left: its watch ends with it."""
        if cancel := self._poll_watch.pop(meter_id, None):
            cancel()
        self.availability.lost.discard(meter_id)

    def _watch_polls(self, meter: MeterState) -> None:
        # wmbusmeters' first poll comes one interval after it starts, each answer a moment
        # after its poll: one interval of grace on top of the misses.
        delay = (MISSED_POLLS_BEFORE_UNAVAILABLE + 1) * meter.config.poll_interval

        @callback
        def missed(_now: datetime) -> None:
            self._poll_watch.pop(meter.meter_id, None)
            if meter.closed or meter.meter_id in self.availability.lost:
                return
            _LOGGER.info(
                "Meter %s (%s) answered none of its last %d polls",
                meter.name,
                meter.meter_id,
                MISSED_POLLS_BEFORE_UNAVAILABLE,
            )
            self.availability.set_lost(meter.meter_id, True)

        self._poll_watch[meter.meter_id] = async_call_later(self.hass, delay, missed)

    @callback
    def _check_silence(self, now: datetime) -> None:
        assert self._meters is not None
        for meter in list(self._meters.by_id.values()):
            if meter.config.polled or meter.meter_id in self.availability.lost:
                continue  # its polls are watched
            silent = (now - (meter.last_seen or meter.since)).total_seconds()
            if silent > meter.expected_silence():
                _LOGGER.info(
                    "Meter %s (%s) not heard for %d minutes",
                    meter.name,
                    meter.meter_id,
                    silent // 60,
                )
                self.availability.set_lost(meter.meter_id, True)

"""A meter's past in its running totals' long-term statistics: the readings its dated
registers carry (`target_m3` at `target_date`; the rule: wmbus/history.py) become the hours
before the first one the recorder compiled for the total's sensor, so the Energy dashboard has
the last months from the first telegram.

Only the recorder's own statistic of the sensor is written (no second series to pick), and
only hours before its first row: the recorder never writes there, so nothing collides with its
own rows. Its sums began at 0 with the first state it saw; they are shifted to go on from the
imported ones (the first imported hour is 0, each later change the registers' difference).

Waiting for that first row is what makes this run once, with no record of its own: after it,
every point a telegram carries is at or after the oldest imported hour (a restart, the meter
removed and added again, a wmbusmeters upgrade, next month's billing date add nothing), and
the recorder's metadata for the statistic is there to be matched.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import logging
from typing import Final, Literal

# (2026.10 re-exports it from entity_options; 2026.2 defines it here)
from homeassistant.components.recorder import is_entity_recorded  # type: ignore[attr-defined]
from homeassistant.components.recorder.models import StatisticData, StatisticMetaData
from homeassistant.components.recorder.statistics import (
    UNIT_CLASS_TO_UNIT_CONVERTER,
    async_import_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.components.sensor import ATTR_STATE_CLASS, SensorStateClass
from homeassistant.const import EVENT_RECORDER_5MIN_STATISTICS_GENERATED, Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .const import CONF_IMPORT_HISTORY, DEFAULT_IMPORT_HISTORY, DOMAIN
from .coordinator import signal_meter_added
from .meters import Meters, MeterState
from .units import field_kind
from .wmbus import Telegram
from .wmbus.history import ImportPlan, Point, history_points, import_plan

_LOGGER = logging.getLogger(__name__)

#: The name of the task that imports after a compile (tests wait for it).
HISTORY_TASK: Final = "wmbusmeters history"
#: Long before any meter's register (wmbus/history.py's OLDEST).
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_RUNNING: Final = frozenset({SensorStateClass.TOTAL_INCREASING, SensorStateClass.TOTAL})
#: Compiles after which a total whose statistic still has no row is given up for this run
#: (its first state not recorded: an entity the recorder leaves out by other means).
MAX_MISSES: Final = 6
#: Kinds of frame (sets of fields) a meter's reader remembers as read.
MAX_FRAMES: Final = 8

type Key = tuple[str, str]  # (meter id, total field)


class ReceiverHistory:
    """Imports the past of one receiver's meters, each running total once."""

    def __init__(self, hass: HomeAssistant, entry_id: str, meters: Meters) -> None:
        self.hass = hass
        self.entry_id = entry_id
        self.meters = meters
        #: Totals with points, waiting for the recorder's first row: the newest points.
        self._pending: dict[Key, tuple[MeterState, list[Point]]] = {}
        #: Totals done with in this run (imported, nothing to import, not recorded).
        self._settled: set[Key] = set()
        #: Compiles a pending total's statistic has had no row after.
        self._misses: dict[Key, int] = {}
        self._unsub_compiled: CALLBACK_TYPE | None = None
        self._running = False
        self._stopped = False

    @property
    def enabled(self) -> bool:
        """The receiver's option (on unless turned off)."""
        entry = self.hass.config_entries.async_get_entry(self.entry_id)
        return (
            entry is not None
            and entry.options.get(CONF_IMPORT_HISTORY, DEFAULT_IMPORT_HISTORY) is True
        )

    @callback
    def start(self) -> CALLBACK_TYPE:
        """Read each meter's telegrams (now and as meters are added); returns the stop."""
        for meter in self.meters.by_id.values():
            self._follow(meter)
        unsub = async_dispatcher_connect(self.hass, signal_meter_added(self.entry_id), self._follow)

        @callback
        def stop() -> None:
            self._stopped = True
            unsub()
            self._pending.clear()
            self._unsubscribe()

        return stop

    @callback
    def _follow(self, meter: MeterState) -> None:
        reader = _MeterReader(self, meter)
        meter.async_add_listener(reader.telegram)  # ends with the meter
        if meter.last_telegram is not None:
            reader.telegram(meter.last_telegram)  # heard before it was followed

    def settled(self, key: Key) -> bool:
        """Done with in this run."""
        return key in self._settled

    @callback
    def offer(self, meter: MeterState, points: dict[str, list[Point]]) -> None:
        """A telegram's points of totals not settled yet: kept (the newest) until the
        recorder has compiled their sensors."""
        for total, its_points in points.items():
            self._pending[(meter.meter_id, total)] = (meter, its_points)
        if self._unsub_compiled is None and not self._stopped:
            self._unsub_compiled = self.hass.bus.async_listen(
                EVENT_RECORDER_5MIN_STATISTICS_GENERATED, self._compiled
            )

    @callback
    def _unsubscribe(self) -> None:
        if self._unsub_compiled is not None:
            self._unsub_compiled()
            self._unsub_compiled = None

    @callback
    def _compiled(self, _event: Event) -> None:
        if self._running or self._stopped or self.hass.is_stopping:
            return  # the run under way reads what this compile wrote too, or the next does
        entry = self.hass.config_entries.async_get_entry(self.entry_id)
        if entry is None:
            return
        self._running = True
        entry.async_create_background_task(self.hass, self._async_run(), HISTORY_TASK)

    async def _async_run(self) -> None:
        try:
            # (The compile's event comes before its commit: a statistic it has just begun may
            # only be read after the next one. A miss is counted, not fatal.)
            for key, (meter, points) in list(self._pending.items()):
                if self._stopped:
                    return
                if not self.enabled or meter.closed or key in self._settled:
                    self._pending.pop(key, None)  # offered again if turned on
                    self._misses.pop(key, None)
                    continue
                try:
                    done = await self._async_import(key, points) is not None
                except Exception:  # one total's failure must not stop the others' for good
                    _LOGGER.exception("%s: its past readings could not be imported", key)
                    done = True
                misses = self._misses[key] = self._misses.get(key, 0) + (not done)
                if done or misses >= MAX_MISSES:
                    self._settled.add(key)
                    self._pending.pop(key, None)
        finally:
            self._running = False
            if not self._pending:
                self._unsubscribe()

    async def _async_import(self, key: Key, points: list[Point]) -> int | None:
        """Import a total's points: how many hours, or None to try after the next compile
        (its sensor not there or not compiled yet)."""
        meter_id, total = key
        entity_id = self._total_sensor(f"{meter_id}_{total}")
        if not entity_id:
            return None if entity_id is None else 0
        instance = get_instance(self.hass)
        first = await instance.async_add_executor_job(_first_row, self.hass, entity_id)
        if first is None:
            return None  # not compiled yet
        metadata, start, recorded_state, recorded_sum = first
        convert = _converter(metadata, field_kind(total).unit)
        if (
            convert is None
            or not metadata["has_sum"]
            or recorded_state is None
            or recorded_sum is None
        ):
            return 0  # its first hour has no reading to go on from (recorded as another kind)
        plan = import_plan(
            points,
            tz=dt_util.get_default_time_zone(),
            recorded_start=start,
            recorded_zero=recorded_state - recorded_sum,
            convert=convert,
        )
        if plan is None:
            return 0
        self._write(entity_id, metadata, start, plan)
        return len(plan.rows)

    @callback
    def _total_sensor(self, unique_id: str) -> str | Literal[False] | None:
        """The total's sensor, if it has a running total's state; None if it may have one
        later (its entity is still being added), False if not (disabled: its statistics wait
        for it; described as another kind of number: there is no sum to go on from)."""
        registry = er.async_get(self.hass)
        entity_id = registry.async_get_entity_id(Platform.SENSOR, DOMAIN, unique_id)
        if entity_id is None:
            return None
        if not is_entity_recorded(self.hass, entity_id):
            return False  # excluded from the recorder: no statistics
        if (state := self.hass.states.get(entity_id)) is None:
            entity = registry.async_get(entity_id)
            return False if entity is not None and entity.disabled else None
        if state.attributes.get(ATTR_STATE_CLASS) not in _RUNNING:
            return False
        return entity_id

    @callback
    def _write(
        self, entity_id: str, metadata: StatisticMetaData, start: datetime, plan: ImportPlan
    ) -> None:
        """Queue the rows and the shift together (no await between: an unload cannot leave
        one without the other); the recorder runs them in order, each in its own session
        (a database error in the second would leave the rows without the shift)."""
        async_import_statistics(
            self.hass,
            metadata,
            [StatisticData(start=row.start, state=row.state, sum=row.sum) for row in plan.rows],
        )
        if plan.adjustment:
            get_instance(self.hass).async_adjust_statistics(
                entity_id, start, plan.adjustment, metadata["unit_of_measurement"] or ""
            )
        _LOGGER.info(
            "%s: %d readings from the meter's registers imported into its statistics (%s to %s)",
            entity_id,
            len(plan.rows),
            dt_util.as_local(plan.rows[0].start).date(),
            dt_util.as_local(plan.rows[-1].start).date(),
        )


class _MeterReader:
    """One meter's telegrams, read for points of totals not settled yet."""

    def __init__(self, history: ReceiverHistory, meter: MeterState) -> None:
        self.history = history
        self.meter = meter
        #: The fields of telegrams with nothing (more) to offer: a meter's frames repeat, so
        #: one with the same fields again is passed over at the cost of a set's making.
        self._passed: set[frozenset[str]] = set()

    @callback
    def telegram(self, telegram: Telegram) -> None:
        history = self.history
        readings = telegram.readings
        fields = frozenset(readings)
        if fields in self._passed or not history.enabled:
            return
        points = history_points(
            readings,
            telegram.driver or self.meter.driver,
            now=dt_util.now().replace(tzinfo=None),
            tz=dt_util.get_default_time_zone(),
        )
        meter_id = self.meter.meter_id
        todo: dict[str, list[Point]] = {}
        for point in points:
            if not history.settled((meter_id, point.total)):
                todo.setdefault(point.total, []).append(point)
        if todo:
            history.offer(self.meter, todo)
        elif len(self._passed) < MAX_FRAMES:
            # Nothing, or its totals done with: its frames of these fields cost nothing more
            # in this run (another frame's fields are still read: its registers may differ).
            self._passed.add(fields)


def _first_row(
    hass: HomeAssistant, statistic_id: str
) -> tuple[StatisticMetaData, datetime, float | None, float | None] | None:
    """The statistic's metadata and its first row of either table (start, state, sum), in
    the statistic's own unit; None without one (in the recorder's thread pool)."""
    metadata = get_metadata(hass, statistic_ids={statistic_id}).get(statistic_id)
    if metadata is None:
        return None
    meta = metadata[1]
    unit_class, unit = meta["unit_class"], meta["unit_of_measurement"]
    units = {unit_class: unit} if unit_class and unit else None
    first: tuple[float, float | None, float | None] | None = None
    end = dt_util.utcnow()
    for period in ("hour", "5minute"):
        rows = statistics_during_period(
            hass, _EPOCH, end, {statistic_id}, period, units, {"state", "sum"}
        ).get(statistic_id)
        if rows and (first is None or rows[0]["start"] < first[0]):
            first = (rows[0]["start"], rows[0].get("state"), rows[0].get("sum"))
    if first is None:
        return None
    return meta, dt_util.utc_from_timestamp(first[0]), first[1], first[2]


def _converter(metadata: StatisticMetaData, unit: str | None) -> Callable[[float], float] | None:
    """A register's value (in its field's unit) in the statistic's unit; None if it cannot be."""
    target = metadata["unit_of_measurement"]
    if unit == target:
        return float
    converter = UNIT_CLASS_TO_UNIT_CONVERTER.get(metadata["unit_class"] or "")
    if (
        converter is None
        or unit not in converter.VALID_UNITS
        or target not in converter.VALID_UNITS
    ):
        return None
    return converter.converter_factory(unit, target)

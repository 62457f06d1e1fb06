"""A sensor per reading field of each meter, pushed when its telegram arrives.

A field's entity is created with its first value, described once from that value (units.py)
and never re-described: its unit, device class and state class stay as registered, which
long-term statistics rely on. After a restart the registry's description is taken back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
import logging
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import WmbusConfigEntry, WmbusCoordinator
from .entity import WmbusMeterEntity, WmbusReceiverEntity
from .issues import async_clear_removed_fields_issue, async_raise_removed_fields_issue
from .meters import MeterState, listener_config
from .names import DeviceNames, FieldName
from .units import FieldKind, field_kind
from .wmbus import Telegram
from .wmbus.listener import DROPPED
from .wmbus.upgrades import renamed_field

_LOGGER = logging.getLogger(__name__)
#: New entities added per event-loop turn (scripts/faults: 500 fields in one telegram).
ADD_BATCH = 20

PARALLEL_UPDATES = 0

_ABSENT = object()
type Reading = str | int | float | datetime | date | Decimal | None


def describe(field: str, kind: FieldKind, name: FieldName) -> SensorEntityDescription:
    """The entity description of a field of this kind, under this name."""
    return SensorEntityDescription(
        key=field,
        translation_key=name.translation_key,
        name=name.name,
        native_unit_of_measurement=kind.unit,
        device_class=kind.device_class,
        state_class=kind.state_class,
        entity_category=kind.entity_category,
        entity_registry_enabled_default=kind.enabled_default,
        options=list(kind.options) if kind.options else None,
    )


def registered_kind(field: str, entry: er.RegistryEntry, driver: str) -> FieldKind:
    """The kind an entity was registered with (a run before this one), read back from the
    entity registry: device class, state class and unit say what it was."""
    capabilities = entry.capabilities or {}
    return kind_from_description(
        field,
        driver,
        device_class=entry.original_device_class,
        state_class=capabilities.get("state_class"),
        unit=entry.unit_of_measurement,
        options=capabilities.get("options"),
    )


def kind_from_description(
    field: str,
    driver: str,
    *,
    device_class: str | None,
    state_class: str | None,
    unit: str | None,
    options: list[str] | None,
) -> FieldKind:
    """The kind whose description has these classes, unit and options (units.py's rule gives
    every kind it makes at least one of them, or none for text)."""
    sample: Any
    if options:
        return FieldKind(device_class=SensorDeviceClass.ENUM, text=True, options=tuple(options))
    if device_class == SensorDeviceClass.DATE:
        sample = "2000-01-01"
    elif device_class == SensorDeviceClass.TIMESTAMP:
        sample = "2000-01-01 00:00"
    elif device_class is None and state_class is None and unit is None:
        sample = ""  # text
    else:
        sample = 0  # a number
    media = {SensorDeviceClass.WATER: "water", SensorDeviceClass.GAS: "gas"}.get(
        device_class,  # type: ignore[call-overload]
        "",
    )
    return field_kind(field, sample, media, driver)


def _family(kind: FieldKind) -> str:
    if kind.number:
        return "number"
    return str(kind.device_class) if kind.device_class is not None else "text"


def _numeric_text(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def shows_wrongly(registered: FieldKind, value: Any, driver: str, field: str, media: str) -> bool:
    """Whether an entity registered by an earlier version of this rule cannot show the value
    (a date under a unit-like name was registered as a number): it is described again, once."""
    if value is None or value == "":
        return False
    new = field_kind(field, value, media, driver)
    if _family(new) == _family(registered):
        return False
    # A number as text in a numeric entity is still shown as a number.
    return not (registered.number and _numeric_text(value))


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each meter's sensors now, and more as meters and fields appear."""
    coordinator = entry.runtime_data
    async_add_entities(
        [
            WmbusReceiverSensor(coordinator, description)
            for description in (
                *RECEIVER_SENSORS,
                *(NETWORK_SENSORS if listener_config(entry) is not None else ()),
            )
        ]
    )
    # Names are kept unique as the user reads them (English: the language of the entity ids).
    translations = await async_get_translations(hass, "en", "entity", [DOMAIN])
    prefix = f"component.{DOMAIN}.entity.sensor."
    english = {
        key.removeprefix(prefix).removesuffix(".name"): text
        for key, text in translations.items()
        if key.startswith(prefix)
    }

    @callback
    def add_meter(meter: MeterState) -> None:
        _MeterSensors(hass, entry, meter, english, async_add_entities).start()

    for meter in coordinator.meters.by_id.values():
        add_meter(meter)
    entry.async_on_unload(coordinator.meters.async_add_meter_added_listener(add_meter))


class _MeterSensors:
    """The field sensors of one meter: created with a field's first value, carried over when
    wmbusmeters renames a field, reported when it removes one. Lives as long as the meter."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: WmbusConfigEntry,
        meter: MeterState,
        english: Mapping[str, str],
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.meter = meter
        self.coordinator = entry.runtime_data
        self.registry = er.async_get(hass)
        self._add_entities = async_add_entities
        self.names = DeviceNames(english)
        #: Field -> its sensor.
        self.known: dict[str, WmbusFieldSensor] = {}
        #: Compared with the driver's documented fields in this run.
        self._checked = False

    @callback
    def start(self) -> None:
        """The entities an earlier run registered (restored, as they were described), then
        each telegram's new fields. Other documented fields get no entity until they have a
        value: a field this meter never sends would stay "unknown" on its device page."""
        meter = self.meter
        prefix = f"{meter.meter_id}_"
        restored = [
            (reg.unique_id.removeprefix(prefix), reg)
            for reg in er.async_entries_for_config_entry(self.registry, self.entry.entry_id)
            if reg.domain == Platform.SENSOR and reg.unique_id.startswith(prefix)
        ]
        sensors = [
            self._sensor(field, registered_kind(field, reg, meter.driver), restored=True)
            for field, reg in restored
        ]
        if "timestamp" not in dict(restored):
            # "Last telegram" from the start: unknown says the meter was never heard, and the
            # meter's device is there from the moment it is added.
            sensors.insert(0, self._sensor("timestamp", field_kind("timestamp")))
        self._add(sensors)
        meter.async_add_listener(self._on_telegram)  # ends with the meter
        if meter.last_telegram is not None:
            # Heard before this platform listened (wmbusmeters starts first).
            self._on_telegram(meter.last_telegram)

    def _sensor(self, field: str, kind: FieldKind, *, restored: bool = False) -> WmbusFieldSensor:
        name = self.names.name_for(field, kind)
        sensor = WmbusFieldSensor(
            self.coordinator, self.meter, field, kind, name, restored=restored
        )
        sensor.owner = self
        return sensor

    @callback
    def _add(self, sensors: list[WmbusFieldSensor]) -> None:
        if not sensors:
            return
        for sensor in sensors:
            self.known[sensor.field] = sensor
            # A removed entity (a removed field, a removed meter) can come back with a value.
            sensor.async_on_remove(partial(self._forget, sensor))
        if len(sensors) <= ADD_BATCH:
            self._add_entities(sensors, config_subentry_id=self.meter.subentry_id)
            return
        # A telegram with hundreds of new fields: added a batch per loop turn, so that the
        # event loop (the UI, the API) never waits on all of them at once.
        self.coordinator.entry.async_create_background_task(
            self.hass, self._add_in_batches(sensors), f"wmbusmeters {self.meter.meter_id} fields"
        )

    async def _add_in_batches(self, sensors: list[WmbusFieldSensor]) -> None:
        for start in range(0, len(sensors), ADD_BATCH):
            if self.meter.closed:
                return
            batch = [s for s in sensors[start : start + ADD_BATCH] if self.known.get(s.field) is s]
            self._add_entities(batch, config_subentry_id=self.meter.subentry_id)
            await asyncio.sleep(0)

    @callback
    def _forget(self, sensor: WmbusFieldSensor) -> None:
        """The sensor left Home Assistant: its field gets a new entity with its next value.
        Not one the user (or its default) disabled: HA turns it away at every add, and each
        telegram would build it again; enabling it reloads the receiver, which restores it."""
        entry = sensor.registry_entry
        if entry is not None and entry.disabled:
            return
        if self.known.get(sensor.field) is sensor:
            del self.known[sensor.field]
            self.names = self._names_without(sensor)

    def _names_without(self, gone: WmbusFieldSensor) -> DeviceNames:
        names = DeviceNames(self.names.english)
        for sensor in self.known.values():
            if sensor is not gone:
                names.take(sensor.field_name)
        return names

    @callback
    def _on_telegram(self, telegram: Telegram | None) -> None:
        if telegram is None:
            return
        meter = self.meter
        if not self._checked:
            self._checked = True
            # After this telegram's renames and new entities (tasks run in order).
            self.hass.async_create_task(self._check_removed_fields(telegram), eager_start=False)
        have = self.known
        readings = telegram.readings
        if have.keys() >= readings.keys():
            return
        new = []
        for field, value in readings.items():
            if field in have or value is None:
                continue  # a null is no value yet: its entity comes with a real one
            old = renamed_field(telegram.driver, field, have.keys(), readings)
            if old is not None:
                # Held by the rename until the entity is back under its new id.
                have[field] = have.pop(old)
                self.hass.async_create_task(
                    self._rename_field(have[field], field, telegram), eager_start=False
                )
                continue
            kind = field_kind(field, value, telegram.media, telegram.driver or meter.driver)
            new.append(self._sensor(field, kind))
        self._add(new)

    async def _rename_field(self, old: WmbusFieldSensor, field: str, telegram: Telegram) -> None:
        """A field wmbusmeters renamed (an upgrade): the entity keeps its entity id, and so
        its history and long-term statistics, under the new field's unique id."""
        _LOGGER.info("%s: wmbusmeters calls field %s %s now", old.entity_id, old.field, field)
        await old.async_remove()
        if old.registry_entry is not None:
            self.registry.async_update_entity(
                old.registry_entry.entity_id, new_unique_id=f"{self.meter.meter_id}_{field}"
            )
        self.known.pop(field, None)
        value = telegram.readings.get(field)
        kind = field_kind(field, value, telegram.media, telegram.driver)
        self._add([self._sensor(field, kind)])

    async def redescribe(self, old: WmbusFieldSensor, kind: FieldKind) -> None:
        """An entity registered with a kind that cannot show its values (an earlier version's
        rule): added again with the right description under the same unique id (entity id and
        history stay)."""
        _LOGGER.info("%s: described again as %s", old.entity_id, _family(kind))
        await old.async_remove()
        if self.known.get(old.field) is None:
            self._add([self._sensor(old.field, kind)])

    async def _check_removed_fields(self, telegram: Telegram) -> None:
        """Entities of fields the reporting driver neither documents nor sent (a field an
        upgrade of wmbusmeters removed): they would keep their last value for good, so a
        repair lists them and offers to remove them."""
        coordinator = self.coordinator
        meter = self.meter
        documented = (
            await coordinator.catalog.async_fields(telegram.driver) if telegram.driver else []
        )
        if not documented:
            return  # the binary cannot say: nothing to compare with
        gone = sorted(
            sensor.entity_id
            for field, sensor in self.known.items()
            if sensor.entity_id
            and field not in telegram.readings
            and not any(info.matches(field) for info in documented)
        )
        if not gone:
            async_clear_removed_fields_issue(self.hass, meter.meter_id)
            return
        _LOGGER.warning(
            "Meter %s: wmbusmeters %s no longer reports %s",
            meter.name,
            coordinator.version,
            ", ".join(gone),
        )
        async_raise_removed_fields_issue(
            self.hass,
            entry_id=self.entry.entry_id,
            meter_id=meter.meter_id,
            name=meter.name,
            entity_ids=gone,
            version=coordinator.version,
        )


@dataclass(frozen=True, kw_only=True)
class ReceiverSensorDescription(SensorEntityDescription):
    """A figure of the receiver's runner."""

    value_fn: Callable[[WmbusCoordinator], str | int | datetime | None]
    #: State attributes (per-source counters of a network receiver).
    attrs_fn: Callable[[WmbusCoordinator], dict[str, Any] | None] = lambda _c: None


def _network_total(c: WmbusCoordinator, *keys: str) -> int | None:
    if c.listener is None:
        return None
    totals = c.listener.totals()
    return sum(totals[k] for k in keys)


def _last_heard(c: WmbusCoordinator) -> datetime | None:
    heard = c.listener.last_heard if c.listener is not None else None
    return dt_util.utc_from_timestamp(heard) if heard is not None else None


def _per_source(c: WmbusCoordinator) -> dict[str, Any] | None:
    """What each source sent and what was dropped of it (at most MAX_SOURCES of them)."""
    if c.listener is None:
        return None
    return {
        "sources": {
            source: {k: v for k, v in stats.as_dict().items() if k != "last_heard"}
            for source, stats in c.listener.sources.items()
        },
        "connections": c.listener.connections,
    }


#: A network receiver's port: when a line last came, how many, how many were dropped.
NETWORK_SENSORS = (
    ReceiverSensorDescription(
        key="network_last_heard",
        translation_key="network_last_heard",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_heard,
    ),
    ReceiverSensorDescription(
        key="network_lines",
        translation_key="network_lines",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: _network_total(c, "accepted"),
        attrs_fn=_per_source,
    ),
    ReceiverSensorDescription(
        key="network_dropped",
        translation_key="network_dropped",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: _network_total(c, *DROPPED),
        attrs_fn=_per_source,
    ),
)

RECEIVER_SENSORS = (
    ReceiverSensorDescription(
        key="restarts",
        translation_key="restarts",
        entity_category=EntityCategory.DIAGNOSTIC,
        # Counted since Home Assistant started: a restart is a reset, not a drop.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: c.runner.counters.restarts,
    ),
    ReceiverSensorDescription(
        key="telegrams",
        translation_key="telegrams",
        entity_category=EntityCategory.DIAGNOSTIC,
        # Counted since Home Assistant started: a restart is a reset, not a drop.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: c.runner.counters.telegrams,
    ),
    ReceiverSensorDescription(
        key="last_error",
        translation_key="last_error",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda c: (c.runner.last_error or "")[:255] or None,
    ),
)


class WmbusReceiverSensor(WmbusReceiverEntity, SensorEntity):
    """Restarts, telegrams received, last error line (refreshed on state changes and each
    minute, not per telegram: one more write per telegram would cost throughput)."""

    entity_description: ReceiverSensorDescription

    def __init__(
        self, coordinator: WmbusCoordinator, description: ReceiverSensorDescription
    ) -> None:
        """Bind to the receiver."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    #: Per-source counters change with every line: kept out of the recorder.
    _unrecorded_attributes = frozenset({"sources", "connections"})

    @property
    def native_value(self) -> str | int | datetime | None:
        """The current figure."""
        return self.entity_description.value_fn(self.coordinator)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Per-source counters, for a network receiver's counts."""
        return self.entity_description.attrs_fn(self.coordinator)


class WmbusFieldSensor(WmbusMeterEntity, RestoreSensor):
    """One reading field of one meter, described once (from its first value, or as the
    registry kept it)."""

    def __init__(
        self,
        coordinator: WmbusCoordinator,
        meter: MeterState,
        field: str,
        kind: FieldKind,
        name: FieldName,
        *,
        restored: bool = False,
    ) -> None:
        """Describe the field."""
        super().__init__(coordinator, meter, field)
        self.field = field
        self.field_name = name
        self._kind = kind
        self.entity_description = describe(field, kind, name)
        self._value: Reading = None
        #: Registered by a run before this one: its first value may show it was described
        #: by an earlier rule that cannot show it (shows_wrongly).
        self._verify = restored
        self.owner: _MeterSensors | None = None

    @property
    def native_value(self) -> Reading:
        """The last reading (a plain attribute: HA's _attr_ setter costs per telegram)."""
        return self._value

    async def async_added_to_hass(self) -> None:
        """Restore the last reading (a meter may not send again for hours)."""
        await super().async_added_to_hass()
        if self.meter.last_telegram is not None and not self._verify:
            self._apply(self.meter.last_telegram.readings.get(self.field))
        elif (last := await self.async_get_last_sensor_data()) is not None:
            self._value = last.native_value
            if self.meter.last_telegram is not None:
                self._async_handle_telegram(self.meter.last_telegram)

    @callback
    def _async_handle_telegram(self, telegram: Telegram | None) -> None:
        # Runs for every field of every telegram: kept lean (scripts/benchmark).
        if telegram is None:
            self.async_write_ha_state()  # availability
            return
        value = telegram.readings.get(self.field, _ABSENT)
        if value is _ABSENT:
            return  # a short telegram: keep the last reading
        if self._verify and value is not None and value != "":
            self._verify = False
            media = telegram.media
            if shows_wrongly(self._kind, value, telegram.driver, self.field, media):
                kind = field_kind(self.field, value, media, telegram.driver)
                self.hass.async_create_task(self._async_redescribe(kind), eager_start=False)
                return
        # Only what changed is written (a new timestamp is a change).
        if self._apply(value):
            self.async_write_ha_state()

    async def _async_redescribe(self, kind: FieldKind) -> None:
        if self.owner is not None:
            await self.owner.redescribe(self, kind)

    def _apply(self, value: Any) -> bool:
        """Take a reading; whether the state changed."""
        new = self._convert(value)
        old = self._value
        if (
            self._kind.zero_is_glitch
            and value is not None  # null (3.0.0) is no value at all: shown as unknown
            and not new
            and isinstance(old, int | float | Decimal)
            and old
        ):
            # A 0 or empty running total (restart, short telegram) would spoil statistics.
            _LOGGER.debug("%s: ignoring %r over %r", self.entity_id, value, old)
            return False
        if new == old:
            return False
        self._value = new
        return True

    def _convert(self, value: Any) -> str | int | float | datetime | date | None:
        kind = self._kind
        if (type(value) is float or type(value) is int) and kind.number:
            return value  # the common case: a reading, as JSON gave it
        if value is None or value == "":  # None: 3.0.0's null sentinel, no value (unknown)
            return value if kind.text and kind.options is None else None
        if kind.device_class in _POINTS_IN_TIME:
            return _POINTS_IN_TIME[kind.device_class](value)
        if kind.text:
            text = str(value)[:255]
            # HA refuses an enum state outside its options: an unexpected one shows as unknown.
            return text if kind.options is None or text in kind.options else None
        try:
            return float(value)  # a number as text, or a bool
        except (TypeError, ValueError):
            return None


def _timestamp(value: Any) -> datetime | None:
    """wmbusmeters' `timestamp` is UTC (`...Z`); a meter's own date and time is its local
    time, taken as Home Assistant's time zone."""
    if not isinstance(value, str):
        return None
    parsed = dt_util.parse_datetime(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_util.get_default_time_zone())
    return parsed


def _date(value: Any) -> date | None:
    """A meter's date (`2024-01-31`); an impossible one (`2000-00-00`) is unknown."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


_POINTS_IN_TIME: dict[SensorDeviceClass | None, Callable[[Any], datetime | date | None]] = {
    SensorDeviceClass.TIMESTAMP: _timestamp,
    SensorDeviceClass.DATE: _date,
}

"""A meter's field sensors: each created with its field's first value and described once
from it (units.py), carried over when wmbusmeters renames a field, reported when it removes
one. The sensor platform (sensor.py) creates a MeterSensors per meter and feeds it the new
fields the coordinator announces.

Never re-described: an entity's unit, device class and state class stay as registered, which
long-term statistics rely on. After a restart the registry's description is taken back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import partial
import logging
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorEntityDescription,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity import WmbusMeterEntity
from .issues import async_clear_removed_fields_issue, async_raise_removed_fields_issue
from .meters import MeterState
from .names import DeviceNames, FieldName
from .runtime import WmbusConfigEntry, WmbusData
from .units import (
    POINTS_IN_TIME,
    FieldKind,
    family,
    field_kind,
    registered_kind,
    shows_wrongly,
)
from .wmbus import Telegram
from .wmbus.alarms import is_status_field
from .wmbus.upgrades import renamed_field

_LOGGER = logging.getLogger(__name__)
#: New entities added per event-loop turn (scripts/faults: 500 fields in one telegram).
ADD_BATCH = 20

_ABSENT = object()
_NUMBER = object()
_TEXT = object()
#: The longest state Home Assistant keeps.
MAX_STATE = 255
#: An empty text (wmbusmeters prints "" when a lookup has nothing to say: `time_dry` of a meter
#: that is not dry) is shown as what it means, not as a blank row: in a status field it is no
#: flag set, which its `status` calls OK; in any other, nothing, translated (the `text` key's
#: state `none`).
EMPTY_STATUS = "OK"
EMPTY_TEXT = "none"
TEXT_TRANSLATION_KEY = "text"


def _fast_path(kind: FieldKind) -> object:
    if kind.number:
        return _NUMBER
    if kind.text and kind.options is None and kind.device_class not in POINTS_IN_TIME:
        return _TEXT
    return None


type Reading = str | int | float | datetime | date | Decimal | None


def _plain_text(kind: FieldKind) -> bool:
    return kind.text and kind.options is None and kind.device_class is None


def describe(field: str, kind: FieldKind, name: FieldName) -> SensorEntityDescription:
    """The entity description of a field of this kind, under this name (a text without a
    translated name has the `text` key for its states: its name stays its own)."""
    return SensorEntityDescription(
        key=field,
        translation_key=name.translation_key
        or (TEXT_TRANSLATION_KEY if _plain_text(kind) else None),
        name=name.name,
        native_unit_of_measurement=kind.unit,
        device_class=kind.device_class,
        state_class=kind.state_class,
        entity_category=kind.entity_category,
        entity_registry_enabled_default=kind.enabled_default,
        options=list(kind.options) if kind.options else None,
    )


class MeterSensors:
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
        self.data = entry.runtime_data
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
        if (telegram := meter.last_telegram) is not None:
            # Heard before this platform listened (wmbusmeters starts first).
            self.add_fields(telegram, [f for f, v in telegram.readings.items() if v is not None])

    def _sensor(self, field: str, kind: FieldKind, *, restored: bool = False) -> WmbusFieldSensor:
        name = self.names.name_for(field, kind)
        sensor = WmbusFieldSensor(self.data, self.meter, field, kind, name, restored=restored)
        sensor.owner = self
        return sensor

    @callback
    def _add(self, sensors: list[WmbusFieldSensor]) -> None:
        if not sensors:
            return
        for sensor in sensors:
            self.known[sensor.field] = sensor
        if len(sensors) <= ADD_BATCH:
            self._add_entities(sensors, config_subentry_id=self.meter.subentry_id)
            return
        # A telegram with hundreds of new fields: added a batch per loop turn, so that the
        # event loop (the UI, the API) never waits on all of them at once.
        self.entry.async_create_background_task(
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
    def forget(self, sensor: WmbusFieldSensor) -> None:
        """The sensor left Home Assistant. Deleted (its registry entry is gone: the user, the
        removed-fields repair), its field gets a new entity with its next value. Not while
        its registry entry stays: a new entity id (HA adds the same entity back), a disabled
        one (HA turns it away at every add: enabling it reloads the receiver, which restores
        it), an unload."""
        if self.registry.async_get_entity_id(Platform.SENSOR, DOMAIN, str(sensor.unique_id)):
            return
        self._drop(sensor)

    def _drop(self, sensor: WmbusFieldSensor) -> None:
        if self.known.get(sensor.field) is sensor:
            del self.known[sensor.field]
            self.names = self._names_without(sensor)
            self.meter.fields.discard(sensor.field)  # offered again with its next value

    def _names_without(self, gone: WmbusFieldSensor) -> DeviceNames:
        names = DeviceNames(self.names.english)
        for sensor in self.known.values():
            if sensor is not gone:
                names.take(sensor.field_name)
        return names

    @callback
    def add_fields(self, telegram: Telegram, fields: list[str]) -> None:
        """Fields the meter has not offered before (the coordinator's signal): an entity
        each, unless one exists, or a field wmbusmeters renamed carries over."""
        meter = self.meter
        if not self._checked:
            self._checked = True
            # After this telegram's renames and new entities (tasks run in order).
            self.entry.async_create_task(
                self.hass, self._check_removed_fields(telegram), eager_start=False
            )
        have = self.known
        readings = telegram.readings
        new = []
        for field in fields:
            value = readings.get(field)
            if field in have or value is None:
                continue  # a null is no value yet: its entity comes with a real one
            old = renamed_field(telegram.driver, field, have.keys(), readings)
            if old is not None:
                # Held by the rename until the entity is back under its new id.
                have[field] = have.pop(old)
                self.entry.async_create_task(
                    self.hass, self._rename_field(have[field], field, telegram), eager_start=False
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
        if self.meter.closed:
            return  # the receiver unloaded meanwhile: the entity comes back with it
        value = telegram.readings.get(field)
        kind = field_kind(field, value, telegram.media, telegram.driver)
        self._add([self._sensor(field, kind)])

    async def redescribe(self, old: WmbusFieldSensor, kind: FieldKind) -> None:
        """An entity registered with a kind that cannot show its values (an earlier version's
        rule): added again with the right description under the same unique id (entity id and
        history stay)."""
        _LOGGER.info("%s: described again as %s", old.entity_id, family(kind))
        self._drop(old)
        await old.async_remove()
        if self.known.get(old.field) is None and not self.meter.closed:
            self._add([self._sensor(old.field, kind)])

    async def _check_removed_fields(self, telegram: Telegram) -> None:
        """Entities of fields the reporting driver neither documents nor sent (a field an
        upgrade of wmbusmeters removed): they would keep their last value for good, so a
        repair lists them and offers to remove them."""
        catalog = self.data.catalog
        meter = self.meter
        documented = await catalog.async_fields(telegram.driver) if telegram.driver else []
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
            self.data.coordinator.version,
            ", ".join(gone),
        )
        async_raise_removed_fields_issue(
            self.hass,
            entry_id=self.entry.entry_id,
            meter_id=meter.meter_id,
            name=meter.name,
            entity_ids=gone,
            version=self.data.coordinator.version,
        )


class WmbusFieldSensor(WmbusMeterEntity, RestoreSensor):
    """One reading field of one meter, described once (from its first value, or as the
    registry kept it)."""

    def __init__(
        self,
        data: WmbusData,
        meter: MeterState,
        field: str,
        kind: FieldKind,
        name: FieldName,
        *,
        restored: bool = False,
    ) -> None:
        """Describe the field."""
        super().__init__(data, meter, describe(field, kind, name))
        self.field = field
        self.field_name = name
        self._kind = kind
        self._value: Reading = None
        #: Registered by a run before this one: its first value may show it was described
        #: by an earlier rule that cannot show it (shows_wrongly).
        self._verify = restored
        #: Which fast path a value may take in _async_handle_telegram (none while verifying).
        self._fast: object = None if restored else _fast_path(kind)
        self.owner: MeterSensors | None = None
        #: What an empty text shows (EMPTY_TEXT); None: unknown, for any other kind.
        self._empty: str | None = None
        if _plain_text(kind):
            self._empty = EMPTY_STATUS if is_status_field(field) else EMPTY_TEXT

    @property
    def native_value(self) -> Reading:
        """The last reading (a plain attribute: HA's _attr_ setter costs per telegram)."""
        return self._value

    async def async_added_to_hass(self) -> None:
        """Restore the last reading (a meter may not send again for hours)."""
        await super().async_added_to_hass()
        if self.owner is not None:
            # Each time HA adds it (again, under a new entity id): its removal is seen.
            self.async_on_remove(partial(self.owner.forget, self))
        if self.meter.last_telegram is not None and not self._verify:
            self._apply(self.meter.last_telegram.readings.get(self.field))
            return
        if (last := await self.async_get_last_sensor_data()) is not None:
            # (saved as "" by a version before the empty text was shown as what it means)
            self._value = self._empty if last.native_value == "" else last.native_value
        if self.meter.last_telegram is not None:
            # Heard before it was added back (nothing saved of it: registered by an import's
            # takeover, or its saved data lost): not unknown until the meter's next telegram.
            self._async_handle_telegram(self.meter.last_telegram)

    @callback
    def _async_handle_telegram(self, telegram: Telegram) -> None:
        # Runs for every field of every telegram: kept lean (scripts/benchmark).
        value = telegram.readings.get(self.field, _ABSENT)
        if value is _ABSENT:
            return  # a short telegram: keep the last reading
        # The common cases, without a call: a non-zero number as JSON gave it to a number
        # entity (a 0 may be a glitch: _apply decides), a non-empty text to a text entity.
        fast = self._fast
        if (fast is _NUMBER and (type(value) is float or type(value) is int) and value) or (
            fast is _TEXT and type(value) is str and value and len(value) <= MAX_STATE
        ):
            if value != self._value:
                self._value = value
                self.async_write_ha_state()
            return
        if self._verify and value is not None and value != "":
            self._verify = False
            self._fast = _fast_path(self._kind)
            media = telegram.media
            if shows_wrongly(self._kind, value, telegram.driver, self.field, media):
                kind = field_kind(self.field, value, media, telegram.driver)
                self.data.coordinator.entry.async_create_task(
                    self.hass, self._async_redescribe(kind), eager_start=False
                )
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
            return None if value is None else self._empty
        if kind.device_class in POINTS_IN_TIME:
            return POINTS_IN_TIME[kind.device_class](value)
        if kind.text:
            text = str(value)[:MAX_STATE]
            # HA refuses an enum state outside its options: an unexpected one shows as unknown.
            return text if kind.options is None or text in kind.options else None
        try:
            return float(value)  # a number as text, or a bool
        except (TypeError, ValueError):
            return None

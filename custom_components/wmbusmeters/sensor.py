"""A sensor per reading field of each meter, pushed when its telegram arrives."""

from __future__ import annotations

from collections.abc import Callable
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
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import MeterState, WmbusConfigEntry, WmbusCoordinator
from .entity import WmbusMeterEntity, WmbusReceiverEntity
from .repairs import async_clear_removed_fields_issue, async_raise_removed_fields_issue
from .units import FieldKind, field_kind, field_title, unit_suffix
from .wmbus import Telegram
from .wmbus.upgrades import renamed_field

_LOGGER = logging.getLogger(__name__)

PARALLEL_UPDATES = 0

_ABSENT = object()
type Reading = str | int | float | datetime | date | Decimal | None

# Field base name (without the unit suffix) -> translation key, for the fields most meters have.
_TRANSLATED = {
    "total": "total",
    "target": "target",
    "flow": "flow",
    "max_flow": "max_flow",
    "flow_temperature": "flow_temperature",
    "return_temperature": "return_temperature",
    "external_temperature": "external_temperature",
    "current_temperature": "temperature",
    "temperature": "temperature",
    "power": "power",
    "current_power_consumption": "power_consumption",
    "current_power_production": "power_production",
    "total_energy_consumption": "energy_consumption",
    "total_energy_production": "energy_production",
    "total_energy": "energy",
    "total_volume": "volume",
    "current_consumption": "current_consumption",
    "status": "status",
    "current_status": "current_status",
    "battery": "battery",
    "battery_level": "battery",
    "battery_voltage": "battery",
    "rssi": "rssi",
    "timestamp": "last_telegram",
    "humidity": "humidity",
    "relative_humidity": "humidity",
}


def translation_key(field: str) -> str | None:
    """The translation key of a field's name, if it is a common one."""
    suffix = unit_suffix(field)
    return _TRANSLATED.get(field.removesuffix(f"_{suffix}") if suffix else field)


def describe(field: str, media: str, driver: str) -> tuple[SensorEntityDescription, FieldKind]:
    """The entity description of a field of a meter of this media and driver."""
    kind = field_kind(field, media, driver)
    key = translation_key(field)
    description = SensorEntityDescription(
        key=field,
        translation_key=key,
        name=None if key else field_title(field),
        native_unit_of_measurement=kind.unit,
        device_class=kind.device_class,
        state_class=kind.state_class,
        entity_category=kind.entity_category,
        entity_registry_enabled_default=kind.enabled_default,
        options=list(kind.options) if kind.options else None,
    )
    return description, kind


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each meter's sensors now, and more as meters and fields appear."""
    coordinator = entry.runtime_data
    async_add_entities(
        [WmbusReceiverSensor(coordinator, description) for description in RECEIVER_SENSORS]
    )
    fields = _FieldSensors(hass, entry, async_add_entities)
    for meter in coordinator.meters.values():
        fields.add_meter(meter)
    entry.async_on_unload(coordinator.async_add_meter_added_listener(fields.add_meter))


class _FieldSensors:
    """The field sensors of one receiver's meters: created with a field's first value,
    carried over when wmbusmeters renames a field, reported when it removes one."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: WmbusConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.coordinator = entry.runtime_data
        self.registry = er.async_get(hass)
        self._add_entities = async_add_entities
        #: Meter id -> field -> its sensor.
        self.known: dict[str, dict[str, WmbusFieldSensor]] = {}
        #: Meters whose entities were compared with their driver's fields in this run.
        self._checked: set[str] = set()

    @callback
    def add_fields(self, meter: MeterState, fields: list[str], media: str) -> None:
        """A sensor for each field the meter has none for yet."""
        have = self.known.setdefault(meter.meter_id, {})
        new = [
            WmbusFieldSensor(self.coordinator, meter, field, media)
            for field in dict.fromkeys(fields)
            if field not in have
        ]
        if not new:
            return
        for sensor in new:
            have[sensor.field] = sensor
            # A removed entity (a removed field, a removed meter) can come back with a value.
            sensor.async_on_remove(partial(_forget, have, sensor))
        self._add_entities(new, config_subentry_id=meter.subentry_id)

    @callback
    def add_meter(self, meter: MeterState) -> None:
        """The last telegram's time, and the fields an earlier run met in telegrams (restored).

        Other fields get an entity with their first value: a field the driver documents but
        this meter never sends would stay "unknown" on its device page for good.
        """
        prefix = f"{meter.meter_id}_"
        remembered = [
            reg.unique_id.removeprefix(prefix)
            for reg in er.async_entries_for_config_entry(self.registry, self.entry.entry_id)
            if reg.domain == Platform.SENSOR and reg.unique_id.startswith(prefix)
        ]
        self.add_fields(meter, ["timestamp", *remembered], _guess_media(self.coordinator, meter))
        self.entry.async_on_unload(
            self.coordinator.async_add_meter_listener(
                meter.meter_id, partial(self._on_telegram, meter)
            )
        )
        if meter.last_telegram is not None:
            # Heard before this platform listened (wmbusmeters starts first).
            self._on_telegram(meter, meter.last_telegram)

    @callback
    def _on_telegram(self, meter: MeterState, telegram: Telegram | None) -> None:
        if telegram is None:
            return
        if meter.meter_id not in self._checked:
            self._checked.add(meter.meter_id)
            # After this telegram's renames and new entities (tasks run in order).
            self.hass.async_create_task(
                self._check_removed_fields(meter, telegram), eager_start=False
            )
        have = self.known[meter.meter_id]
        if have.keys() >= telegram.readings.keys():
            return
        fields = [field for field in telegram.readings if field not in have]
        for field in fields:
            old = renamed_field(telegram.driver, field, have.keys(), telegram.readings)
            if old is not None:
                # Held by the rename until the entity is back under its new id.
                have[field] = have.pop(old)
                self.hass.async_create_task(
                    self._rename_field(meter, have[field], field, telegram.media),
                    eager_start=False,
                )
        self.add_fields(meter, fields, telegram.media)

    async def _rename_field(
        self, meter: MeterState, old: WmbusFieldSensor, field: str, media: str
    ) -> None:
        """A field wmbusmeters renamed (an upgrade): the entity keeps its entity id, and so
        its history and long-term statistics, under the new field's unique id."""
        _LOGGER.info("%s: wmbusmeters calls field %s %s now", old.entity_id, old.field, field)
        await old.async_remove()
        if old.registry_entry is not None:
            self.registry.async_update_entity(
                old.registry_entry.entity_id, new_unique_id=f"{meter.meter_id}_{field}"
            )
        self.known[meter.meter_id].pop(field, None)
        self.add_fields(meter, [field], media)

    async def _check_removed_fields(self, meter: MeterState, telegram: Telegram) -> None:
        """Entities of fields the reporting driver neither documents nor sent (a field an
        upgrade of wmbusmeters removed): they would keep their last value for good, so a
        repair lists them and offers to remove them."""
        coordinator = self.coordinator
        documented = await coordinator.field_infos(telegram.driver) if telegram.driver else []
        if not documented:
            return  # the binary cannot say: nothing to compare with
        gone = sorted(
            sensor.entity_id
            for field, sensor in self.known[meter.meter_id].items()
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
            self.hass, self.entry.entry_id, meter, gone, coordinator.version
        )


@dataclass(frozen=True, kw_only=True)
class ReceiverSensorDescription(SensorEntityDescription):
    """A figure of the receiver's runner."""

    value_fn: Callable[[WmbusCoordinator], str | int | None]


RECEIVER_SENSORS = (
    ReceiverSensorDescription(
        key="restarts",
        translation_key="restarts",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda c: c.runner.counters.restarts,
    ),
    ReceiverSensorDescription(
        key="telegrams",
        translation_key="telegrams",
        entity_category=EntityCategory.DIAGNOSTIC,
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

    @property
    def native_value(self) -> str | int | None:
        """The current figure."""
        return self.entity_description.value_fn(self.coordinator)


def _forget(have: dict[str, WmbusFieldSensor], sensor: WmbusFieldSensor) -> None:
    """The sensor left Home Assistant: its field gets a new entity with its next value."""
    if have.get(sensor.field) is sensor:
        del have[sensor.field]


def _guess_media(coordinator: WmbusCoordinator, meter: MeterState) -> str:
    """The media before the first telegram, from the driver's kind (volume: water or gas)."""
    kind = coordinator.driver_kind(meter.driver)
    if kind == "WaterMeter":
        return "water"
    if kind == "GasMeter":
        return "gas"
    return ""


class WmbusFieldSensor(WmbusMeterEntity, RestoreSensor):
    """One reading field of one meter."""

    def __init__(
        self, coordinator: WmbusCoordinator, meter: MeterState, field: str, media: str
    ) -> None:
        """Describe the field from its unit suffix and the meter's media."""
        super().__init__(coordinator, meter, field)
        self.field = field
        self._media = media
        self._driver = meter.driver
        self.entity_description, self._kind = describe(field, media, meter.driver)
        self._value: Reading = None

    @property
    def native_value(self) -> Reading:
        """The last reading (a plain attribute: HA's _attr_ setter costs per telegram)."""
        return self._value

    def _redescribe(self, media: str, driver: str) -> None:
        """Media and driver are known now: device class, state class and options may differ
        from the guess.

        Set through _attr_ attributes: HA caches what it read from the description.
        """
        self._media = media
        self._driver = driver
        self.entity_description, self._kind = describe(self.field, media, driver)
        self._attr_device_class = self._kind.device_class
        self._attr_state_class = self._kind.state_class
        self._attr_native_unit_of_measurement = self._kind.unit
        self._attr_options = self.entity_description.options

    async def async_added_to_hass(self) -> None:
        """Restore the last reading (a meter may not send again for hours)."""
        await super().async_added_to_hass()
        meter = self.coordinator.meters.get(self.meter_id)
        if meter is not None and meter.last_telegram is not None:
            self._apply(meter.last_telegram.readings.get(self.field))
        elif (last := await self.async_get_last_sensor_data()) is not None:
            self._value = last.native_value

    @callback
    def _async_handle_telegram(self, telegram: Telegram | None) -> None:
        # Runs for every field of every telegram: kept lean (scripts/benchmark).
        if telegram is None:
            self.async_write_ha_state()  # availability
            return
        value = telegram.readings.get(self.field, _ABSENT)
        if value is _ABSENT:
            return  # a short telegram: keep the last reading
        changed = False
        driver = telegram.driver or self._driver
        if telegram.media != self._media or driver != self._driver:
            # Guessed before the first telegram (an apator08 reads gas; `auto` finds a driver).
            self._redescribe(telegram.media, driver)
            changed = True
        # Only what changed is written (a new timestamp is a change).
        if self._apply(value) or changed:
            self.async_write_ha_state()

    def _apply(self, value: Any) -> bool:
        """Take a reading; whether the state changed."""
        new = self._convert(value)
        old = self._value
        if (
            self._kind.cumulative
            and value is not None  # null (3.0.0) is no value at all: shown as unknown
            and not new
            and isinstance(old, int | float | Decimal)
            and old
        ):
            # A 0 or empty total (restart, short telegram) would spoil long-term statistics.
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
        if kind.device_class == SensorDeviceClass.TIMESTAMP:
            return dt_util.parse_datetime(str(value))
        if kind.text:
            text = str(value)[:255]
            # HA refuses an enum state outside its options: an unexpected one shows as unknown.
            return text if kind.options is None or text in kind.options else None
        try:
            return float(value)  # a number as text, or a bool
        except (TypeError, ValueError):
            return None

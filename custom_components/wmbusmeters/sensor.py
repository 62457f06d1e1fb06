"""The sensor platform: the receiver's figures, and each meter's field sensors
(field_sensor.py), created on the coordinator's signals while the platform is loaded."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .entity import WmbusReceiverEntity, async_follow_meters, async_own_meter
from .field_sensor import MeterSensors
from .meters import MeterState, listener_config, mqtt_config
from .runtime import WmbusConfigEntry, WmbusData
from .supervisor import ReceiverSupervisor
from .wmbus import Telegram
from .wmbus.listener import DROPPED, SourceStats
from .wmbus.mqtt_frames import DROPPED as MQTT_DROPPED

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each meter's sensors now, and more as meters and fields appear (on the
    coordinator's signals, which this platform listens to until the entry unloads)."""
    data = entry.runtime_data
    async_add_entities(
        [
            WmbusReceiverSensor(data, description)
            for description in (
                *RECEIVER_SENSORS,
                *(NETWORK_SENSORS if listener_config(entry) is not None else ()),
                *(MQTT_SENSORS if mqtt_config(entry) is not None else ()),
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

    sensors: dict[str, MeterSensors] = {}

    @callback
    def add_meter(meter: MeterState) -> None:
        async_own_meter(
            sensors, meter, MeterSensors(hass, entry, meter, english, async_add_entities)
        ).start()

    @callback
    def new_fields(meter: MeterState, telegram: Telegram, fields: list[str]) -> None:
        if (owner := sensors.get(meter.meter_id)) is not None and owner.meter is meter:
            owner.add_fields(telegram, fields)

    async_follow_meters(hass, entry, add_meter, new_fields)


@dataclass(frozen=True, kw_only=True)
class ReceiverSensorDescription(SensorEntityDescription):
    """A figure of the receiver's runner."""

    value_fn: Callable[[ReceiverSupervisor], str | int | datetime | None]
    #: State attributes (per-source counters of a network receiver).
    attrs_fn: Callable[[ReceiverSupervisor], dict[str, Any] | None] = lambda _s: None


def _network_total(s: ReceiverSupervisor, *keys: str) -> int | None:
    if s.listener is None:
        return None
    totals = s.listener.totals()
    return sum(totals[k] for k in keys)


def _utc(heard: float | None) -> datetime | None:
    return dt_util.utc_from_timestamp(heard) if heard is not None else None


def _last_heard(s: ReceiverSupervisor) -> datetime | None:
    return _utc(s.listener.last_heard if s.listener is not None else None)


def _counts(table: Mapping[str, SourceStats]) -> dict[str, dict[str, int | float | None]]:
    """Each source's (or topic's) counters, without when it was last heard."""
    return {
        source: {k: v for k, v in stats.as_dict().items() if k != "last_heard"}
        for source, stats in table.items()
    }


def _per_source(s: ReceiverSupervisor) -> dict[str, Any] | None:
    """What each source sent and what was dropped of it (at most MAX_SOURCES of them)."""
    if s.listener is None:
        return None
    return {
        "sources": _counts(s.listener.sources),
        "connections": s.listener.connections,
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


def _mqtt_total(s: ReceiverSupervisor, *keys: str) -> int | None:
    if s.mqtt is None:
        return None
    totals = s.mqtt.gate.totals()
    return sum(totals[k] for k in keys)


def _mqtt_last_heard(s: ReceiverSupervisor) -> datetime | None:
    return _utc(s.mqtt.gate.last_heard if s.mqtt is not None else None)


def _per_topic(s: ReceiverSupervisor) -> dict[str, Any] | None:
    """What each topic sent and what was dropped of it (at most MAX_SOURCES of them)."""
    if s.mqtt is None:
        return None
    return {
        "topics": _counts(s.mqtt.gate.topics),
        "duplicates": _mqtt_total(s, "duplicate"),
    }


#: An MQTT receiver's subscription: when a frame last came, how many, how many were dropped
#: (a duplicate from a second gateway is no fault: in the attributes, not the dropped count).
MQTT_SENSORS = (
    ReceiverSensorDescription(
        key="mqtt_last_heard",
        translation_key="mqtt_last_heard",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_mqtt_last_heard,
    ),
    ReceiverSensorDescription(
        key="mqtt_frames",
        translation_key="mqtt_frames",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: _mqtt_total(c, "accepted"),
        attrs_fn=_per_topic,
    ),
    ReceiverSensorDescription(
        key="mqtt_dropped",
        translation_key="mqtt_dropped",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: _mqtt_total(c, *MQTT_DROPPED),
        attrs_fn=_per_topic,
    ),
)

RECEIVER_SENSORS = (
    ReceiverSensorDescription(
        key="restarts",
        translation_key="restarts",
        entity_category=EntityCategory.DIAGNOSTIC,
        # Counted since Home Assistant started: a restart is a reset, not a drop.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda s: s.runner.counters.restarts,
    ),
    ReceiverSensorDescription(
        key="telegrams",
        translation_key="telegrams",
        entity_category=EntityCategory.DIAGNOSTIC,
        # Counted since Home Assistant started: a restart is a reset, not a drop.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda s: s.runner.counters.telegrams,
    ),
    ReceiverSensorDescription(
        key="last_error",
        translation_key="last_error",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: (s.runner.last_error or "")[:255] or None,
    ),
)


class WmbusReceiverSensor(WmbusReceiverEntity, SensorEntity):
    """Restarts, telegrams received, last error line (refreshed on state changes and each
    minute, not per telegram: one more write per telegram would cost throughput)."""

    entity_description: ReceiverSensorDescription

    def __init__(self, data: WmbusData, description: ReceiverSensorDescription) -> None:
        """Bind to the receiver."""
        super().__init__(data, description)

    #: Per-source counters change with every line: kept out of the recorder.
    _unrecorded_attributes = frozenset({"sources", "connections", "topics", "duplicates"})

    @property
    def native_value(self) -> str | int | datetime | None:
        """The current figure."""
        return self.entity_description.value_fn(self.data.supervisor)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Per-source counters, for a network receiver's counts."""
        return self.entity_description.attrs_fn(self.data.supervisor)

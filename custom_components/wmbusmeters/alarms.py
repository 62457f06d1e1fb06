"""A meter's alarm sensors: leak, burst, tamper, battery low, reverse flow and dry pipe, each
on while the meter's status says so (the rule, status word -> kind, is data: wmbus/alarms.py).

Which a meter gets does not wait for its first alarm, or no automation could be set up on one:
those its driver can raise (DriverCatalog.async_alarms, the same on both wmbusmeters versions),
and any other its telegrams raise (a driver newer than what the integration knows). Those an
earlier run registered come back as they were. Only a change of the meter's driver removes
sensors: those the new driver cannot raise (or a leak the old one reported would stay on for
good); nothing else is taken as proof that a meter cannot raise an alarm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import logging
from types import MappingProxyType
from typing import Final

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined]
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoredExtraData, RestoreEntity

from .const import DOMAIN
from .entity import WmbusMeterEntity
from .meters import MeterState
from .runtime import WmbusConfigEntry, WmbusData
from .wmbus import Telegram
from .wmbus.alarms import AlarmKind, readings_alarms

_LOGGER = logging.getLogger(__name__)

#: Each alarm kind's sensor; the error kind has none of its own (the problem sensor is on for
#: anything not OK). Unique id `<meter_id>_<key>` (CONTRACT.md).
ALARMS: Final[Mapping[AlarmKind, BinarySensorEntityDescription]] = MappingProxyType(
    {
        AlarmKind.LEAK: BinarySensorEntityDescription(
            key="leak", translation_key="leak", device_class=BinarySensorDeviceClass.MOISTURE
        ),
        AlarmKind.BURST: BinarySensorEntityDescription(
            key="burst", translation_key="burst", device_class=BinarySensorDeviceClass.PROBLEM
        ),
        AlarmKind.TAMPER: BinarySensorEntityDescription(
            key="tamper", translation_key="tamper", device_class=BinarySensorDeviceClass.TAMPER
        ),
        # A battery is the device's own upkeep: a diagnostic, as Home Assistant shows batteries.
        AlarmKind.BATTERY_LOW: BinarySensorEntityDescription(
            key="battery_low",
            translation_key="battery_low",
            device_class=BinarySensorDeviceClass.BATTERY,
            entity_category=EntityCategory.DIAGNOSTIC,
        ),
        AlarmKind.REVERSE_FLOW: BinarySensorEntityDescription(
            key="reverse_flow",
            translation_key="reverse_flow",
            device_class=BinarySensorDeviceClass.PROBLEM,
        ),
        AlarmKind.DRY: BinarySensorEntityDescription(
            key="dry", translation_key="dry", device_class=BinarySensorDeviceClass.PROBLEM
        ),
    }
)


#: The kinds that have no sensor of their own (the problem sensor's).
_NO_SENSOR = frozenset(AlarmKind) - ALARMS.keys()

#: The name of a task that asks for the alarms of a driver a telegram names.
ALARMS_TASK = "wmbusmeters alarms of"


class MeterAlarms:
    """The alarm sensors of one meter; lives as long as the meter."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: WmbusConfigEntry,
        meter: MeterState,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.meter = meter
        self.data = entry.runtime_data
        self._add_entities = async_add_entities
        self.sensors: dict[AlarmKind, WmbusMeterAlarm] = {}
        #: The drivers whose alarms were asked for (a meter on `auto` reports its driver).
        self._asked: set[str] = set()
        #: The alarms last shown: a telegram that says the same changes no sensor.
        self._shown: frozenset[AlarmKind] | None = None

    @callback
    def start(self) -> None:
        """The sensors an earlier run registered (restored as they were) and those the
        meter's driver can raise (known before the platforms follow the meter:
        Meters.async_document), at once; then each telegram's."""
        meter = self.meter
        registry = er.async_get(self.hass)
        self._add(
            kind
            for kind, description in ALARMS.items()
            if registry.async_get_entity_id(
                Platform.BINARY_SENSOR, DOMAIN, f"{meter.meter_id}_{description.key}"
            )
        )
        if meter.alarms is not None:
            self._asked.add(meter.config.driver)
            self._add(meter.alarms)
        meter.async_add_listener(self._async_handle_telegram)
        if meter.last_telegram is not None:
            self._async_handle_telegram(meter.last_telegram)

    @callback
    def driver_changed(self) -> None:
        """The meter was given another driver (and its alarms are learnt, if they can be):
        its sensors are the new driver's; those of the old one it cannot raise are removed,
        or a leak the old one reported would stay on for good."""
        meter = self.meter
        self._asked = set()
        self._shown = None  # each sensor is told again with the next status
        if meter.alarms is None:
            return  # not known (`auto`: learnt from its telegrams' driver): nothing removed
        self._asked.add(meter.config.driver)
        self._add(meter.alarms)
        registry = er.async_get(self.hass)
        for kind in set(ALARMS) - meter.alarms:
            self.sensors.pop(kind, None)
            unique_id = f"{meter.meter_id}_{ALARMS[kind].key}"
            if entity_id := registry.async_get_entity_id(Platform.BINARY_SENSOR, DOMAIN, unique_id):
                _LOGGER.info(
                    "Meter %s: driver %s reports no %s alarm; %s is removed",
                    meter.name,
                    meter.config.driver,
                    kind,
                    entity_id,
                )
                registry.async_remove(entity_id)

    @callback
    def _async_handle_telegram(self, telegram: Telegram) -> None:
        # The one listener of the meter's alarms (scripts/benchmark: one call per telegram,
        # not one per sensor); a sensor added here takes this telegram as it is created.
        if telegram.driver and self.meter.config.driver == "auto":
            # Only `auto` learns its driver from telegrams: another driver is configured
            # otherwise (the old one's telegrams come in until wmbusmeters restarts).
            self._ask(telegram.driver)
        kinds = readings_alarms(telegram.readings)  # None: no status text in it
        if kinds is None or kinds == self._shown:
            return
        if new := kinds - self.sensors.keys() - _NO_SENSOR:
            self._add(new, kinds)
        for sensor in self.sensors.values():
            sensor.show(kinds)
        self._shown = kinds  # (told all: one that raised is told again with the next)

    @property
    def shown(self) -> frozenset[AlarmKind] | None:
        """The alarms of the meter's last status (None: none heard in this run): a sensor
        added later starts from them, not from the last telegram, which may have had none."""
        return self._shown

    @callback
    def _ask(self, driver: str) -> None:
        # A name the binary lists only: a telegram's `meter` goes to its command line. `auto`
        # says nothing of the meter: its telegrams name the driver that reads it.
        if driver in self._asked or driver == "auto" or driver not in self.data.catalog.drivers:
            return
        self._asked.add(driver)
        # Not waited for by an unload (it cancels it): the catalogue keeps the answer.
        self.entry.async_create_background_task(
            self.hass, self._async_driver_alarms(driver), f"{ALARMS_TASK} {driver}"
        )

    async def _async_driver_alarms(self, driver: str) -> None:
        # Only adds: a driver a telegram names (`auto`) says what the meter can raise, not
        # what it cannot (a newer driver than the integration knows).
        kinds = await self.data.catalog.async_alarms(driver)
        if kinds and not self.meter.closed:
            self._add(kinds - self.sensors.keys())

    @callback
    def _add(self, kinds: Iterable[AlarmKind], now: frozenset[AlarmKind] | None = None) -> None:
        """Sensors for these kinds; `now`: the alarms they start from (default: shown)."""
        wanted = set(kinds)
        start = self._shown if now is None else now
        new = [
            WmbusMeterAlarm(self.data, self.meter, kind, self, start)
            for kind in ALARMS  # (in one order, whatever the set's)
            if kind in wanted and kind not in self.sensors
        ]
        if not new:
            return
        for sensor in new:
            self.sensors[sensor.kind] = sensor
        self._add_entities(new, config_subentry_id=self.meter.subentry_id)


class WmbusMeterAlarm(WmbusMeterEntity, BinarySensorEntity, RestoreEntity):
    """On while the meter's status raises this alarm; off when it reports a status without
    it; unknown until it has reported one. Its MeterAlarms reads the telegrams for it."""

    _follows_telegrams = False

    def __init__(
        self,
        data: WmbusData,
        meter: MeterState,
        kind: AlarmKind,
        owner: MeterAlarms,
        start: frozenset[AlarmKind] | None,
    ) -> None:
        """Start from the meter's last status in this run, if any."""
        super().__init__(data, meter, ALARMS[kind])
        self.kind = kind
        self.owner = owner
        #: In Home Assistant (added, not removed): its state may be written.
        self._live = False
        self._take_kinds(start)

    def _take_kinds(self, kinds: frozenset[AlarmKind] | None) -> bool:
        if kinds is None or (self.kind in kinds) is self._attr_is_on:
            return False
        self._attr_is_on = self.kind in kinds
        return True

    @callback
    def show(self, kinds: frozenset[AlarmKind]) -> None:
        """The alarms the meter's latest status raises."""
        if self._take_kinds(kinds) and self._live:
            self.async_write_ha_state()

    async def async_added_to_hass(self) -> None:
        """Restore the last alarm until the meter is heard (a meter may sleep for hours: a
        leak it reported stays on across a restart), from the entity's own data: its state is
        "unavailable" whenever it was saved while the meter was silent."""
        await super().async_added_to_hass()
        self._take_kinds(self.owner.shown)  # heard since it was created
        if self._attr_is_on is None:
            last = await self.async_get_last_extra_data()
            alarm = last.as_dict().get("alarm") if last is not None else None
            if isinstance(alarm, bool) and self._attr_is_on is None:  # (not heard meanwhile)
                self._attr_is_on = alarm
        # From here on the owner's telegrams write the state (Home Assistant writes it once
        # as the entity is added, after this).
        self._live = True

    async def async_will_remove_from_hass(self) -> None:
        """No more state writes (the owner keeps it while the meter lives)."""
        self._live = False
        await super().async_will_remove_from_hass()

    @property
    def extra_restore_state_data(self) -> RestoredExtraData | None:
        """Whether the alarm was on, kept for the next start."""
        return (
            RestoredExtraData({"alarm": self._attr_is_on}) if self._attr_is_on is not None else None
        )

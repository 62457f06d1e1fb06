"""Binary sensors: a meter reports a problem, and its alarms (alarms.py); the receiver is
running and hearing."""

from __future__ import annotations

from functools import partial
from typing import Any

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined]
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoredExtraData, RestoreEntity

from .alarms import MeterAlarms
from .const import DOMAIN
from .coordinator import signal_meter_retyped
from .entity import (
    WmbusMeterEntity,
    WmbusReceiverEntity,
    async_follow_meters,
    async_own_meter,
)
from .meters import MeterState
from .runtime import WmbusConfigEntry, WmbusData
from .units import HEALTH_FIELDS
from .wmbus import Telegram

PARALLEL_UPDATES = 0

PROBLEM = BinarySensorEntityDescription(
    key="problem",
    translation_key="problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
)
RUNNING = BinarySensorEntityDescription(
    key="running",
    translation_key="running",
    device_class=BinarySensorDeviceClass.RUNNING,
    entity_category=EntityCategory.DIAGNOSTIC,
)
#: What wmbusmeters prints in `status` when nothing is wrong.
_OK_STATUS = frozenset({"OK", ""})


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A problem sensor per meter that reports a status, its alarm sensors, and the
    receiver's "running"."""
    data = entry.runtime_data
    registry = er.async_get(hass)
    async_add_entities([WmbusReceiverRunning(data)])
    #: Meters that have their problem sensor.
    added: set[str] = set()
    #: Each meter's alarm sensors.
    alarms: dict[str, MeterAlarms] = {}

    @callback
    def add(meter: MeterState) -> None:
        added.add(meter.meter_id)
        meter.async_on_remove(partial(added.discard, meter.meter_id))
        async_add_entities([WmbusMeterProblem(data, meter)], config_subentry_id=meter.subentry_id)

    @callback
    def add_meter(meter: MeterState) -> None:
        """Its alarm sensors; its problem sensor once the meter is known to report a status:
        registered by an earlier run, or heard now (a meter without a status gets none)."""
        if meter.meter_id not in alarms:
            async_own_meter(alarms, meter, MeterAlarms(hass, entry, meter, async_add_entities))
            alarms[meter.meter_id].start()
        if meter.meter_id in added:
            return  # heard (new fields) before it was announced
        known = registry.async_get_entity_id(
            Platform.BINARY_SENSOR, DOMAIN, f"{meter.meter_id}_{PROBLEM.key}"
        )
        if known or (meter.last_telegram is not None and _has_status(meter.last_telegram)):
            add(meter)

    @callback
    def new_fields(meter: MeterState, telegram: Telegram, _fields: list[str]) -> None:
        if meter.meter_id not in added and not meter.closed and _has_status(telegram):
            add(meter)

    @callback
    def retyped(meter: MeterState) -> None:
        if (meter_alarms := alarms.get(meter.meter_id)) is not None:
            meter_alarms.driver_changed()

    async_follow_meters(hass, entry, add_meter, new_fields)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_meter_retyped(entry.entry_id), retyped)
    )


def _has_status(telegram: Telegram) -> bool:
    return isinstance(telegram.readings.get(HEALTH_FIELDS.get(telegram.driver, "status")), str)


class WmbusMeterProblem(WmbusMeterEntity, BinarySensorEntity, RestoreEntity):
    """On when the meter's own status is not OK (leak, dry, battery, tamper...); for a meter
    whose `status` is a state (a door contact), its error flags."""

    def __init__(self, data: WmbusData, meter: MeterState) -> None:
        """Start from the last telegram, if any."""
        super().__init__(data, meter, PROBLEM)
        self._status: str | None = None
        if meter.last_telegram is not None:
            self._take(meter.last_telegram)

    def _take(self, telegram: Telegram) -> bool:
        status = telegram.readings.get(HEALTH_FIELDS.get(telegram.driver, "status"))
        if not isinstance(status, str) or status == self._status:
            return False
        self._take_status(status)
        return True

    def _take_status(self, status: str) -> None:
        self._status = status
        self._attr_is_on = status.strip() not in _OK_STATUS

    async def async_added_to_hass(self) -> None:
        """Restore the last status until the meter is heard (a meter may sleep for hours:
        a leak it reported stays on across a restart and a reload). From the entity's own
        data, not its state: that is "unavailable" whenever it was saved while the receiver
        stopped or the meter was silent."""
        await super().async_added_to_hass()
        if self._status is not None:
            return
        last = await self.async_get_last_extra_data()
        status = last.as_dict().get("status") if last is not None else None
        if isinstance(status, str) and self._status is None:  # (not heard meanwhile)
            self._take_status(status)

    @property
    def extra_restore_state_data(self) -> RestoredExtraData | None:
        """The status words, kept for the next start."""
        return RestoredExtraData({"status": self._status}) if self._status is not None else None

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The status words, so automations can tell a leak from a low battery."""
        return {"status": self._status} if self._status is not None else None

    @callback
    def _async_handle_telegram(self, telegram: Telegram) -> None:
        if self._take(telegram):
            self.async_write_ha_state()


class WmbusReceiverRunning(WmbusReceiverEntity, BinarySensorEntity):
    """On while wmbusmeters runs."""

    def __init__(self, data: WmbusData) -> None:
        """Bind to the receiver."""
        super().__init__(data, RUNNING)

    @property
    def is_on(self) -> bool:
        """Whether wmbusmeters runs with its radio there: off while it backs off, is stopped,
        or waits for a dongle that is missing."""
        return self.data.availability.receiving

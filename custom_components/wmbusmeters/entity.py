"""Base entities: one device per meter, linked to the receiver's device."""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from .compat import HAS_VIA_DEVICE_ID
from .const import DOMAIN
from .coordinator import WmbusCoordinator
from .meters import MeterState
from .wmbus import Telegram


def meter_device_info(coordinator: WmbusCoordinator, meter: MeterState) -> DeviceInfo:
    """The meter's device, as CONTRACT.md fixes it."""
    info = DeviceInfo(
        identifiers={(DOMAIN, meter.meter_id)},
        name=meter.name,
        serial_number=meter.meter_id,
        model=meter.driver,
        manufacturer=coordinator.catalog.manufacturer(meter.driver),
    )
    if HAS_VIA_DEVICE_ID and coordinator.receiver_device_id:
        info["via_device_id"] = coordinator.receiver_device_id
    elif not HAS_VIA_DEVICE_ID:
        info["via_device"] = (DOMAIN, coordinator.entry.entry_id)  # type: ignore[typeddict-unknown-key]
    return info


class WmbusMeterEntity(Entity):
    """An entity of one meter, updated by push when its telegram arrives."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, coordinator: WmbusCoordinator, meter: MeterState, key: str) -> None:
        """Bind to the meter; `key` is the field (CONTRACT.md unique id)."""
        self.coordinator = coordinator
        self.meter = meter
        self.meter_id = meter.meter_id
        self._attr_unique_id = f"{meter.meter_id}_{key}"
        self._attr_device_info = meter_device_info(coordinator, meter)

    async def async_added_to_hass(self) -> None:
        """Listen to this meter's telegrams only (the listener ends with the meter too)."""
        await super().async_added_to_hass()
        self.async_on_remove(self.meter.async_add_listener(self._async_handle_telegram))

    @property
    def available(self) -> bool:
        """Unavailable while wmbusmeters is down or the meter has gone silent."""
        return self.coordinator.meter_available(self.meter)

    @callback
    def _async_handle_telegram(self, telegram: Telegram | None) -> None:
        """Update from a telegram (None: only availability may have changed)."""
        self.async_write_ha_state()


class WmbusReceiverEntity(Entity):
    """An entity of the receiver's own device."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, coordinator: WmbusCoordinator, key: str) -> None:
        """Bind to the receiver."""
        self.coordinator = coordinator
        self._attr_unique_id = f"{coordinator.entry.entry_id}_{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, coordinator.entry.entry_id)})

    async def async_added_to_hass(self) -> None:
        """Follow the runner's state."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_receiver_listener(self.async_write_ha_state)
        )

"""Entity bases taking a description: one device per meter, linked to the receiver's device."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription

from .availability import signal_meter, signal_meters, signal_receiver
from .compat import HAS_VIA_DEVICE_ID
from .const import DOMAIN
from .coordinator import signal_meter_added, signal_new_fields
from .meters import MeterState
from .runtime import WmbusConfigEntry, WmbusData
from .wmbus import Telegram


@callback
def async_follow_meters(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    add_meter: Callable[[MeterState], None],
    new_fields: Callable[[MeterState, Telegram, list[str]], None],
) -> None:
    """A platform's entities follow the receiver's meters: each meter now and each one added,
    and the fields the coordinator announces. The subscriptions end with the entry's unload
    (its delivery has stopped before: __init__.async_unload_entry).

    wmbusmeters starts before the platforms (and a meter is heard before it is announced):
    a meter a platform starts following offers all its fields again with its next telegram,
    so that fields heard before, not only those of its last telegram, get their entities.
    """

    @callback
    def follow(meter: MeterState) -> None:
        add_meter(meter)
        meter.fields.clear()

    for meter in entry.runtime_data.meters.by_id.values():
        follow(meter)
    for signal, target in (
        (signal_meter_added(entry.entry_id), follow),
        (signal_new_fields(entry.entry_id), new_fields),
    ):
        entry.async_on_unload(async_dispatcher_connect(hass, signal, target))


@callback
def async_own_meter[T](owners: dict[str, T], meter: MeterState, owner: T) -> T:
    """Keep `owner` as the meter's in `owners` while the meter lives: removed with it, unless
    a meter of the same id (removed and added again) has its own by then."""
    owners[meter.meter_id] = owner

    @callback
    def gone() -> None:
        if owners.get(meter.meter_id) is owner:
            del owners[meter.meter_id]

    meter.async_on_remove(gone)
    return owner


def meter_device_info(data: WmbusData, meter: MeterState) -> DeviceInfo:
    """The meter's device, as CONTRACT.md fixes it."""
    info = DeviceInfo(
        identifiers={(DOMAIN, meter.meter_id)},
        name=meter.name,
        serial_number=meter.meter_id,
        model=meter.driver,
        manufacturer=data.catalog.manufacturer(meter.driver),
    )
    if HAS_VIA_DEVICE_ID:
        info["via_device_id"] = data.receiver_device_id
    else:
        info["via_device"] = (DOMAIN, data.coordinator.entry.entry_id)  # type: ignore[typeddict-unknown-key]
    return info


class WmbusMeterEntity(Entity):
    """An entity of one meter, updated by push when its telegram arrives."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    #: Called with each of the meter's telegrams (an entity whose owner reads them for it,
    #: once for several, says no).
    _follows_telegrams = True

    def __init__(self, data: WmbusData, meter: MeterState, description: EntityDescription) -> None:
        """Bind to the meter; the description's key is the field (CONTRACT.md unique id)."""
        self.data = data
        self.meter = meter
        self.meter_id = meter.meter_id
        self.entity_description = description
        self._attr_unique_id = f"{meter.meter_id}_{description.key}"
        self._attr_device_info = meter_device_info(data, meter)

    async def async_added_to_hass(self) -> None:
        """Listen to this meter's telegrams only, and to its availability (the listeners end
        with the entity, and with the meter)."""
        await super().async_added_to_hass()
        entry_id = self.data.coordinator.entry.entry_id
        if self._follows_telegrams:
            self.async_on_remove(self.meter.async_add_listener(self._async_handle_telegram))
        for signal in (signal_meters(entry_id), signal_meter(entry_id, self.meter_id)):
            self.async_on_remove(
                async_dispatcher_connect(self.hass, signal, self.async_write_ha_state)
            )

    @property
    def available(self) -> bool:
        """Unavailable while wmbusmeters is down or the meter has gone silent."""
        return self.data.availability.meter_available(self.meter_id)

    @callback
    def _async_handle_telegram(self, telegram: Telegram) -> None:
        """Update from a telegram."""
        self.async_write_ha_state()


class WmbusReceiverEntity(Entity):
    """An entity of the receiver's own device."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, data: WmbusData, description: EntityDescription) -> None:
        """Bind to the receiver."""
        self.data = data
        self.entity_description = description
        entry_id = data.coordinator.entry.entry_id
        self._attr_unique_id = f"{entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, entry_id)})

    async def async_added_to_hass(self) -> None:
        """Follow the receiver's state."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_receiver(self.data.coordinator.entry.entry_id),
                self.async_write_ha_state,
            )
        )

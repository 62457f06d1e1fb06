"""A restart button on the receiver, for users who prefer a button to an action."""

from __future__ import annotations

from homeassistant.components.button import (  # type: ignore[attr-defined]
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import WmbusReceiverEntity
from .runtime import WmbusConfigEntry, WmbusData

PARALLEL_UPDATES = 0

RESTART = ButtonEntityDescription(
    key="restart",
    device_class=ButtonDeviceClass.RESTART,
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The receiver's restart button."""
    async_add_entities([WmbusRestartButton(entry.runtime_data)])


class WmbusRestartButton(WmbusReceiverEntity, ButtonEntity):
    """Restart wmbusmeters now."""

    def __init__(self, data: WmbusData) -> None:
        """Bind to the receiver."""
        super().__init__(data, RESTART)

    async def async_press(self) -> None:
        """Restart without backoff."""
        self.data.supervisor.restart()

"""The wmbusmeters a receiver runs, as an update: installed is the running binary's version,
latest the static one this release ships for the machine (wmbus/bundled.py). Installing
switches the receiver to the bundled binary and restarts it; a system binary the user chose
is never touched on disk. Nothing is downloaded: the release brings the binary."""

from __future__ import annotations

from typing import Any

from homeassistant.components.update import (
    UpdateEntity,
    UpdateEntityDescription,
    UpdateEntityFeature,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_COMMAND
from .entity import WmbusReceiverEntity
from .runtime import WmbusConfigEntry, WmbusData
from .wmbus import ProbeError, probe_version
from .wmbus.bundled import bundled_binary, release_notes

PARALLEL_UPDATES = 0

BINARY = UpdateEntityDescription(
    key="wmbusmeters",
    translation_key="wmbusmeters",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WmbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """An update entity when this release ships a wmbusmeters for this machine that runs."""
    bundled = await hass.async_add_executor_job(bundled_binary)
    if bundled is None:
        return
    try:
        version = await probe_version(bundled)
    except ProbeError:
        return  # a bundled binary that does not run here is not offered
    async_add_entities([WmbusBinaryUpdate(entry.runtime_data, bundled, version)])


class WmbusBinaryUpdate(WmbusReceiverEntity, UpdateEntity):
    """The receiver's wmbusmeters against the bundled one."""

    _attr_supported_features = UpdateEntityFeature.INSTALL | UpdateEntityFeature.RELEASE_NOTES

    def __init__(self, data: WmbusData, bundled: str, version: str) -> None:
        """Bind to the receiver and the bundled binary."""
        super().__init__(data, BINARY)
        self._bundled = bundled
        self._bundled_version = version
        self._attr_latest_version = version
        self._attr_release_summary = (
            f"wmbusmeters {version}, built static and shipped with this integration."
        )

    @property
    def installed_version(self) -> str | None:
        """The running binary's version (it changes when the receiver restarts on another)."""
        return self.data.coordinator.version

    async def async_release_notes(self) -> str | None:
        """The changelog's section of the release that ships the bundled binary."""
        return await self.hass.async_add_executor_job(release_notes, self._bundled_version)

    async def async_install(self, version: str | None, backup: bool, **kwargs: Any) -> None:
        """Run the bundled binary from now on: the entry's command changes and the receiver
        reloads with it (update listener)."""
        entry = self.data.coordinator.entry
        if entry.data[CONF_COMMAND] != self._bundled:
            self.hass.config_entries.async_update_entry(
                entry, data={**entry.data, CONF_COMMAND: self._bundled}
            )

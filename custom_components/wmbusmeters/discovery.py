"""Meters a receiver hears that nobody configured: each is offered once as a discovery flow."""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY, ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import discovery_flow

from .const import DOMAIN
from .drivers import DriverCatalog
from .meters import meter_owner


class MeterDiscovery:
    """Offers the meters one receiver hears, once per Home Assistant run."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, catalog: DriverCatalog) -> None:
        """Nothing offered yet."""
        self.hass = hass
        self.entry = entry
        self.catalog = catalog
        self._offered: set[str] = set()

    @callback
    def offer(self, meter_id: str, driver: str, media: str, *, encrypted: bool) -> None:
        """Offer a meter heard nearby, unless a receiver has it already. Once per run: an
        ignored one never again (the flow aborts on the ignored entry's unique id)."""
        if meter_id in self._offered:
            return
        self._offered.add(meter_id)
        if meter_owner(self.hass, meter_id) is not None:
            return  # configured on another receiver, which hears it too
        discovery_flow.async_create_flow(
            self.hass,
            DOMAIN,
            context={"source": SOURCE_INTEGRATION_DISCOVERY},
            data={
                "entry_id": self.entry.entry_id,
                "meter_id": meter_id,
                "driver": driver,
                "media": media,
                "manufacturer": self.catalog.manufacturer(driver) or "",
                "encrypted": encrypted,
            },
        )

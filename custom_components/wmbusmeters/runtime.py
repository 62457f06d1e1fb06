"""What a loaded receiver holds: its supervisor, coordinator and availability model (the
config entry's runtime data)."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import callback

from .availability import Availability
from .coordinator import WmbusCoordinator
from .drivers import DriverCatalog
from .meters import Meters
from .supervisor import ReceiverSupervisor


@dataclass(slots=True)
class WmbusData:
    """A loaded receiver."""

    supervisor: ReceiverSupervisor
    coordinator: WmbusCoordinator
    availability: Availability
    #: The receiver's own device (its meters' devices are linked to it).
    receiver_device_id: str

    @property
    def catalog(self) -> DriverCatalog:
        """The running binary's drivers."""
        return self.coordinator.catalog

    @property
    def meters(self) -> Meters:
        """The receiver's meters."""
        return self.coordinator.meters

    @callback
    def async_entry_updated(self) -> None:
        """The entry changed: the meters follow their subentries, then wmbusmeters and the
        port follow them (a restart only if what wmbusmeters is told changed)."""
        if self.supervisor.stopping:
            return  # unloading (or a failed unload): nothing may start or be routed again
        self.coordinator.async_entry_updated()
        self.supervisor.async_entry_updated()


type WmbusConfigEntry = ConfigEntry[WmbusData]

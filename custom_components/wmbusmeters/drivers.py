"""What the running wmbusmeters knows of its drivers: names, kinds of meter, manufacturers, and
the fields each documents (asked once per driver and kept)."""

from __future__ import annotations

import logging

from .manufacturers import manufacturer_for_codes
from .wmbus import DriverInfo, FieldInfo, WmbusmetersInfo, is_reading, list_drivers, list_fields

_LOGGER = logging.getLogger(__name__)


class DriverCatalog:
    """The drivers of one wmbusmeters binary."""

    def __init__(self, command: str, info: WmbusmetersInfo) -> None:
        """Empty until async_load()."""
        self.command = command
        self.info = info
        #: The binary's drivers by name (empty if it could not list them).
        self.drivers: dict[str, DriverInfo] = {}
        self._fields: dict[str, list[FieldInfo]] = {}

    async def async_load(self) -> bool:
        """Ask the binary for its drivers; whether it could say."""
        try:
            drivers = await list_drivers(self.command, self.info)
        except Exception:
            _LOGGER.debug("could not list wmbusmeters' drivers", exc_info=True)
            return False
        self.drivers = {driver.name: driver for driver in drivers}
        return True

    def kind(self, driver: str) -> str | None:
        """The kind of meter a driver reads (`WaterMeter`)."""
        info = self.drivers.get(driver)
        return info.meter_type if info else None

    def manufacturer(self, driver: str) -> str | None:
        """The manufacturer of the meters a driver reads, where one is known."""
        info = self.drivers.get(driver)
        return manufacturer_for_codes(info.manufacturers) if info else None

    async def async_fields(self, driver: str) -> list[FieldInfo]:
        """The reading fields wmbusmeters documents for a driver (empty if it cannot say)."""
        if driver not in self._fields:
            try:
                fields = await list_fields(self.command, driver)
            except Exception:
                _LOGGER.debug("could not list the fields of driver %s", driver, exc_info=True)
                return []
            self._fields[driver] = [f for f in fields if is_reading(f.name)]
        return self._fields[driver]

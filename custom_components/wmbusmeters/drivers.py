"""What a wmbusmeters binary knows of its drivers: one catalogue per command, shared by all."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .manufacturers import manufacturer_for_codes
from .wmbus import (
    DriverInfo,
    FieldInfo,
    WmbusmetersInfo,
    is_reading,
    list_drivers,
    list_fields,
    print_driver,
    probe_info,
)
from .wmbus.alarms import AlarmKind, definition_alarms, is_status_field
from .wmbus.bundled import restore_bundled
from .wmbus.driver_alarms import DRIVER_ALARMS

#: What `--printdriver` prints for a driver built into the binary (2.0.0 and 3.0.0).
BINARY_ONLY = "binary only"

_LOGGER = logging.getLogger(__name__)

#: The catalogue of each command, loaded or being loaded (one load however many ask).
_CATALOGS: HassKey[dict[str, asyncio.Task[DriverCatalog]]] = HassKey(f"{DOMAIN}_drivers")


class DriverCatalog:
    """The drivers of one wmbusmeters binary: names, kinds of meter, manufacturers, and the
    fields each documents (asked once per driver and kept)."""

    def __init__(self, command: str, info: WmbusmetersInfo | None = None) -> None:
        """Empty until async_load()."""
        self.command = command
        #: The binary's version and options; without them async_load() asks the binary.
        self.info = info
        #: The binary's drivers by name, in its order (empty if it could not list them).
        self.drivers: dict[str, DriverInfo] = {}
        self._fields: dict[str, list[FieldInfo]] = {}
        self._alarms: dict[str, frozenset[AlarmKind]] = {}
        #: One question per driver at a time: forty meters of one driver ask once.
        self._asking: dict[str, asyncio.Lock] = {}
        #: The binary's file when it was listed (_binary_stamp): kept while it is the same.
        self.stamp: tuple[int, int, int] | None = None

    @property
    def names(self) -> frozenset[str]:
        """Every driver name, `auto` included."""
        return frozenset(self.drivers) | {"auto"}

    async def async_load(self) -> bool:
        """Ask the binary for its drivers (and first its version, if not known); whether it
        could say."""
        try:
            if self.info is None:
                self.info = await probe_info(self.command)
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

    async def async_alarms(self, driver: str) -> frozenset[AlarmKind] | None:
        """The alarm sensors a driver's meters get (asked once per driver and kept): none
        without a status field; else those the 3.0.0 release source gives it (DRIVER_ALARMS:
        the same sensors on 2.0.0 and 3.0.0, so an upgrade adds or drops none) and any more
        its definition can raise as the binary prints it (a newer build's driver, a driver
        file of the user's). The error kind is no sensor of its own: the problem sensor is on
        for it. None: not known (the binary cannot say now, or a driver with a status that
        neither source knows), and not kept."""
        if (lock := self._asking.get(driver)) is None:
            lock = self._asking[driver] = asyncio.Lock()
        async with lock:
            if driver in self._alarms:
                return self._alarms[driver]
            fields = await self.async_fields(driver)
            if not fields:
                # Kept empty: it documents no field. Not kept: the binary could not say.
                return frozenset() if driver in self._fields else None
            kinds: frozenset[AlarmKind] = frozenset()
            if any(is_status_field(field.name) for field in fields):
                try:
                    output = await print_driver(self.command, driver)
                    printed = definition_alarms(output)
                except Exception:
                    _LOGGER.debug("could not read driver %s's definition", driver, exc_info=True)
                    return None
                if printed is None and BINARY_ONLY not in output:
                    _LOGGER.debug("driver %s's definition is no xmq: %s", driver, output[:200])
                    return None
                if printed is None and driver not in DRIVER_ALARMS:
                    return None  # built into the binary, and not into the table
                kinds = DRIVER_ALARMS.get(driver, frozenset()) | (printed or frozenset())
            kinds = self._alarms[driver] = kinds - {AlarmKind.ERROR}
            return kinds


async def async_get_catalog(
    hass: HomeAssistant, command: str, info: WmbusmetersInfo | None = None
) -> DriverCatalog:
    """The loaded catalogue of the binary at `command`, shared by the receivers that run it,
    their flows and their repairs.

    A receiver passes the `info` it probed: another version than the kept catalogue's means
    another binary at that path (a HACS update, an install), whose catalogue replaces it.
    Without `info` and with nothing kept, the binary is probed and listed. A listing that
    failed gives an empty catalogue that is not kept: the next call asks again. Callers that
    ask at the same time share one load.
    """
    loads = hass.data.setdefault(_CATALOGS, {})
    # The binary's file as it is now: replaced in place (a HACS download before the restart
    # it asks for, a package upgrade) it is another binary, whatever the kept version says.
    stamp = await hass.async_add_executor_job(_binary_stamp, command)
    previous: DriverCatalog | None = None
    while (load := loads.get(command)) is not None:
        catalog = previous = await asyncio.shield(load)
        if catalog.stamp == stamp and (
            info is None or (catalog.info is not None and catalog.info.version == info.version)
        ):
            return catalog
        if loads.get(command) is load:
            del loads[command]
    load = loads[command] = hass.async_create_background_task(
        _async_load(command, info, stamp), name=f"wmbusmeters drivers of {command}"
    )

    def forget_failed(task: asyncio.Task[DriverCatalog]) -> None:
        if loads.get(command) is task and (
            task.cancelled() or task.exception() is not None or not task.result().drivers
        ):
            del loads[command]

    load.add_done_callback(forget_failed)
    catalog = await asyncio.shield(load)
    if not catalog.drivers and previous is not None and previous.drivers:
        # The new file cannot say (yet): the last binary's drivers are a better offer than
        # `auto` alone, until it can.
        return previous
    return catalog


def _binary_stamp(command: str) -> tuple[int, int, int] | None:
    """The binary's file: inode, size and modification time (None: not found), after its
    exec bits are back if it is the bundled one (a HACS download replaced it). Blocking:
    from an executor."""
    restore_bundled(command)
    path = shutil.which(command) or command
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


async def _async_load(
    command: str, info: WmbusmetersInfo | None, stamp: tuple[int, int, int] | None
) -> DriverCatalog:
    catalog = DriverCatalog(command, info)
    catalog.stamp = stamp
    await catalog.async_load()
    return catalog

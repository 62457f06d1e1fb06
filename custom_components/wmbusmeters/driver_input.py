"""The driver field, shared by the meter form and the unknown-driver repair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .compat import vol
from .const import CONF_DRIVER
from .wmbus import DriverInfo, ProbeError, WmbusConfigError, list_drivers
from .wmbus.config import validate_driver


@dataclass(frozen=True, slots=True)
class DriverList:
    """The drivers of one wmbusmeters binary (empty if it could not list them)."""

    drivers: tuple[DriverInfo, ...]

    @property
    def names(self) -> frozenset[str]:
        """Every driver name, `auto` included."""
        return frozenset(d.name for d in self.drivers) | {"auto"}

    @classmethod
    async def async_load(cls, command: str) -> DriverList:
        """Ask the binary (its --listdrivers or --listmeters, whichever it has)."""
        try:
            return cls(tuple(await list_drivers(command)))
        except ProbeError:
            return cls(())


def driver_field(drivers: DriverList, *, default: str | None = None) -> dict[Any, SelectSelector]:
    """A dropdown of the binary's drivers with the kind of meter each reads, `auto` first."""
    options = [SelectOptionDict(value="auto", label="auto")]
    options.extend(
        SelectOptionDict(value=d.name, label=f"{d.name} ({d.meter_type})")
        for d in drivers.drivers
        if d.name != "auto"
    )
    key = vol.Required(CONF_DRIVER, default=default) if default else vol.Required(CONF_DRIVER)
    return {
        key: SelectSelector(
            SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN, sort=False)
        )
    }


def read_driver(
    user_input: dict[str, Any], drivers: DriverList, errors: dict[str, str]
) -> str | None:
    """The chosen driver, or None with a form error (unknown to the binary)."""
    try:
        return validate_driver(user_input[CONF_DRIVER], drivers.names if drivers.drivers else None)
    except WmbusConfigError:
        errors[CONF_DRIVER] = "unknown_driver"
        return None

"""The wired M-Bus forms: the master's speed, and a wired meter's address and poll interval."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.helpers.selector import (
    NumberSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .compat import vol
from .const import CONF_BAUD_RATE, CONF_POLL_INTERVAL, CONF_PRIMARY_ADDRESS
from .number_input import number_box
from .wmbus.config import MBUS_BAUD_RATES, MBUS_PRIMARY_RANGE, POLL_INTERVAL_RANGE


def baud_rate_field() -> dict[Any, SelectSelector]:
    """The bus speed: one of the three M-Bus speeds (stored as a number)."""
    return {
        vol.Required(CONF_BAUD_RATE): SelectSelector(
            SelectSelectorConfig(
                options=[str(rate) for rate in MBUS_BAUD_RATES], mode=SelectSelectorMode.LIST
            )
        )
    }


def read_baud_rate(user_input: Mapping[str, Any], errors: dict[str, str]) -> int | None:
    """The chosen speed, or None with an error."""
    try:
        rate = int(str(user_input.get(CONF_BAUD_RATE)))
    except ValueError:
        rate = 0
    if rate not in MBUS_BAUD_RATES:
        errors[CONF_BAUD_RATE] = "invalid_baud_rate"
        return None
    return rate


def wired_meter_fields() -> dict[Any, NumberSelector]:
    """A wired meter's primary address (empty: polled at its secondary address, its id) and
    poll interval."""
    return {
        vol.Optional(CONF_PRIMARY_ADDRESS): number_box(MBUS_PRIMARY_RANGE, 1),
        vol.Required(CONF_POLL_INTERVAL): number_box(POLL_INTERVAL_RANGE, 1, "s"),
    }


def _whole_in(value: object, limits: tuple[int, int]) -> bool:
    """A number box's value that is a whole number within the limits (boxes give floats)."""
    return (
        isinstance(value, (int, float))
        and float(value).is_integer()
        and limits[0] <= value <= limits[1]
    )


def read_wired_meter(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The wired meter's data (address, interval), with errors keyed by field."""
    data: dict[str, Any] = {}
    address = user_input.get(CONF_PRIMARY_ADDRESS)
    if address in (None, ""):
        data[CONF_PRIMARY_ADDRESS] = None
    elif _whole_in(address, MBUS_PRIMARY_RANGE):
        data[CONF_PRIMARY_ADDRESS] = int(address)
    else:
        errors[CONF_PRIMARY_ADDRESS] = "invalid_primary_address"
    interval: Any = user_input.get(CONF_POLL_INTERVAL)
    if _whole_in(interval, POLL_INTERVAL_RANGE):
        data[CONF_POLL_INTERVAL] = int(interval)
    else:
        errors[CONF_POLL_INTERVAL] = "invalid_poll_interval"
    return data

"""A number box for the forms (the receiver's, the network port, a wired meter's)."""

from __future__ import annotations

from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)


def number_box(limits: tuple[float, float], step: float, unit: str | None = None) -> NumberSelector:
    """A box (not a slider) from limits[0] to limits[1], with its unit if it has one."""
    config = NumberSelectorConfig(
        min=limits[0], max=limits[1], step=step, mode=NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)

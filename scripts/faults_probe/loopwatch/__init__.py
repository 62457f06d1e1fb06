"""scripts/faults' probe inside Home Assistant: how long its event loop was blocked.

A task sleeps 10 ms again and again; any lateness beyond that is time the loop spent on
something else without yielding. The longest since the last `loopwatch.reset` is published as
the state of `sensor.loopwatch_block` (milliseconds). Never part of the integration.
"""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers.typing import ConfigType

TICK = 0.01


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Start watching at once."""
    longest = 0.0

    def reset(_call: ServiceCall) -> None:
        nonlocal longest
        longest = 0.0
        hass.states.async_set("sensor.loopwatch_block", "0")

    async def watch() -> None:
        nonlocal longest
        loop = asyncio.get_running_loop()
        published = loop.time()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            late = loop.time() - before - TICK
            longest = max(longest, late)
            if loop.time() - published > 0.5:
                published = loop.time()
                hass.states.async_set("sensor.loopwatch_block", f"{longest * 1000:.1f}")

    hass.services.async_register("loopwatch", "reset", reset)
    hass.async_create_background_task(watch(), "loopwatch")
    return True

"""The `wmbusmeters.restart` service action."""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .compat import get_config_entry, vol
from .const import ATTR_CONFIG_ENTRY_ID, DOMAIN, SERVICE_RESTART
from .runtime import WmbusData
from .supervisor import ReceiverSupervisor

RESTART_TIMEOUT = 30.0

RESTART_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})


def _supervisors(hass: HomeAssistant, entry_id: str | None) -> list[ReceiverSupervisor]:
    """The loaded receivers the call names (all of them without an id).

    A named one through HA's own service.async_get_config_entry where it exists (2026.10:
    its errors are translated by HA in every language); 2026.2 lacks it, so it is looked up
    here with the same checks.
    """
    if entry_id is None:
        loaded = [
            entry.runtime_data.supervisor
            for entry in hass.config_entries.async_entries(DOMAIN)
            if entry.state is ConfigEntryState.LOADED
        ]
        if not loaded:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_receiver")
        return loaded
    if get_config_entry is not None:
        named: ConfigEntry[WmbusData] = get_config_entry(hass, DOMAIN, entry_id)
        return [named.runtime_data.supervisor]
    entry = hass.config_entries.async_get_entry(entry_id)  # pragma: no cover - 2026.2
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_receiver",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="receiver_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    supervisor: ReceiverSupervisor = entry.runtime_data.supervisor
    return [supervisor]


async def _async_restart(call: ServiceCall) -> None:
    """Restart wmbusmeters; return once the new process runs."""
    supervisors = _supervisors(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    waiters = []
    for supervisor in supervisors:
        waiter = asyncio.ensure_future(supervisor.runner.wait_running())
        if supervisor.restart():
            waiters.append(waiter)
        else:
            waiter.cancel()  # unloading meanwhile: nothing to wait for
    try:
        async with asyncio.timeout(RESTART_TIMEOUT):
            await asyncio.gather(*waiters)
    except (TimeoutError, RuntimeError) as err:
        for waiter in waiters:
            waiter.cancel()
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="restart_failed"
        ) from err


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the service actions (from async_setup: the action-setup rule)."""
    hass.services.async_register(DOMAIN, SERVICE_RESTART, _async_restart, schema=RESTART_SCHEMA)

"""The service actions: `wmbusmeters.restart`, and `wmbusmeters.analyze` (what the receiver's
wmbusmeters makes of one telegram: wmbus/analyze.py)."""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util.hass_dict import HassKey

from .compat import get_config_entry, vol
from .const import (
    ATTR_CONFIG_ENTRY_ID,
    CONF_DRIVER,
    CONF_KEY,
    DOMAIN,
    SERVICE_ANALYZE,
    SERVICE_RESTART,
)
from .meters import meter_owner, meter_subentries
from .runtime import WmbusData
from .supervisor import ReceiverSupervisor
from .wmbus.analyze import (
    AnalyzeError,
    AnalyzeTimeoutError,
    UnknownDriverError,
    analyze,
    normalize_telegram,
)
from .wmbus.config import WmbusConfigError, normalize_key
from .wmbus.errors import WmbusError
from .wmbus.probe import BundledAlteredProbeError

RESTART_TIMEOUT = 30.0

RESTART_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})

#: The lock that lets one analysis run at a time.
_ANALYZING: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_analyzing")
ATTR_TELEGRAM = "telegram"
ATTR_DRIVER = "driver"
ATTR_KEY = "key"
ANALYZE_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_TELEGRAM): vol.All(cv.string, vol.Length(max=2048)),
        vol.Optional(ATTR_DRIVER): vol.All(cv.string, vol.Length(max=64)),
        vol.Optional(ATTR_KEY): vol.All(cv.string, vol.Length(max=128)),
    }
)


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


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _saved_meter(hass: HomeAssistant, meter_id: str) -> tuple[str, str] | None:
    """The driver and key of the configured meter with this id (on any receiver)."""
    if (entry := meter_owner(hass, meter_id)) is None:
        return None
    sub = next(s for s in meter_subentries(entry) if s.unique_id == meter_id)
    return str(sub.data[CONF_DRIVER]), str(sub.data.get(CONF_KEY) or "")


async def _async_analyze(call: ServiceCall) -> ServiceResponse:
    """What the receiver's wmbusmeters makes of a telegram: its drivers, its reading of the
    bytes, the values and whether the key works (the given one, else the saved meter's)."""
    hass = call.hass
    supervisors = _supervisors(hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    if len({supervisor.runner.command for supervisor in supervisors}) > 1:
        # (receivers running different programs: which one's answer is wanted)
        raise _invalid("analyze_which_receiver")
    entry = supervisors[0].entry
    try:
        telegram = normalize_telegram(call.data[ATTR_TELEGRAM])
    except AnalyzeError as err:
        raise _invalid(err.translation_key) from err
    key: str | None = None
    if given := str(call.data.get(ATTR_KEY) or "").strip():
        try:
            key = normalize_key(given)
        except WmbusConfigError as err:
            raise _invalid("analyze_invalid_key") from err  # (the key is never echoed)
    driver = str(call.data.get(ATTR_DRIVER) or "").strip() or None
    catalog = entry.runtime_data.catalog
    try:
        if driver is not None and catalog.names and driver not in catalog.names:
            # (said as wmbusmeters' own "No such driver" is: the name shown redacted)
            raise UnknownDriverError(driver)
        # One analysis at a time: each runs wmbusmeters twice (a script calling it in a loop
        # waits its turn instead of starting processes without end).
        async with hass.data[_ANALYZING]:
            found = await analyze(
                supervisors[0].runner.command,
                telegram,
                driver=driver,
                key=key,
                saved=lambda meter_id: _saved_meter(hass, meter_id),
            )
    except AnalyzeTimeoutError as err:
        # (not the input's fault: an error of the program, not of the call's data)
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key=err.translation_key
        ) from err
    except AnalyzeError as err:
        raise _invalid(err.translation_key, **err.placeholders) from err
    except BundledAlteredProbeError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="bundled_altered"
        ) from err
    except WmbusError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="analyze_failed",
            translation_placeholders={"title": entry.title},
        ) from err
    version = catalog.info.version if catalog.info is not None else None
    return {"receiver": entry.title, "wmbusmeters": version, **found.as_dict()}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the service actions (from async_setup: the action-setup rule)."""
    hass.services.async_register(DOMAIN, SERVICE_RESTART, _async_restart, schema=RESTART_SCHEMA)
    hass.data[_ANALYZING] = asyncio.Lock()
    # For administrators only: it runs programs, and may be given a key.
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_ANALYZE,
        _async_analyze,
        schema=ANALYZE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )

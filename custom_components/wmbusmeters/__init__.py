"""The wmbusmeters integration: wireless M-Bus meters through the real wmbusmeters program."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
import os
from pathlib import Path
import shutil
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.importlib import async_import_module
from homeassistant.helpers.typing import ConfigType

from .addon_import import async_take_over
from .availability import Availability
from .const import (
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_LISTEN_PORT,
    CONF_MQTT_TOPIC,
    CONFIG_SUBDIR,
    DOMAIN,
)
from .coordinator import WmbusCoordinator
from .drivers import async_get_catalog
from .history import ReceiverHistory
from .issues import (
    ISSUE_BUNDLED_ALTERED,
    ISSUE_DEVICE_TYPE,
    ReceiverIssues,
    async_clear_receiver_issue,
    async_clear_receiver_issues,
    async_raise_device_type_issue,
    async_raise_receiver_issue,
)
from .runtime import WmbusConfigEntry, WmbusData
from .services import async_setup_services
from .supervisor import ReceiverSupervisor
from .wmbus import DEVICE_KEYWORDS, ProbeError, needs_device_type, probe_info
from .wmbus.bundled import BundledAlteredError, prepare_bundled
from .wmbus.config import MBUS, STDIN_DEVICE
from .wmbus.listener import ListenerError

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.SENSOR,
    Platform.UPDATE,
]


def receiver_model(data: Mapping[str, Any]) -> str:
    """What the receiver device is called in the device registry."""
    if CONF_MQTT_TOPIC in data:
        return "MQTT receiver"
    if data[CONF_DEVICE] == STDIN_DEVICE:
        return "Network receiver"
    if data.get(CONF_DEVICE_TYPE) == MBUS:
        return "Wired M-Bus master"
    return "Wireless M-Bus receiver"


def device_present(device: str) -> bool:
    """Whether the radio device is there (keywords are probed by wmbusmeters itself)."""
    return device in DEVICE_KEYWORDS or os.path.exists(device)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the service actions (once, whatever the number of receivers)."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: WmbusConfigEntry) -> bool:
    """1.1 -> 1.2: receivers get device_type. A serial port saved bare stays without one (its
    type cannot be guessed): setup raises a repair that asks for it."""
    if entry.version > 1:
        return False  # saved by a newer version of the integration
    if entry.minor_version < 2:
        hass.config_entries.async_update_entry(
            entry, data={CONF_DEVICE_TYPE: "", **entry.data}, minor_version=2
        )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: WmbusConfigEntry) -> bool:
    """Check the command and the device, then start wmbusmeters."""
    command: str = entry.data[CONF_COMMAND]
    device: str = entry.data[CONF_DEVICE]
    if needs_device_type(device) and not entry.data.get(CONF_DEVICE_TYPE):
        # Saved with a bare serial port: wmbusmeters would exit at once, again and again.
        async_raise_device_type_issue(hass, entry.entry_id, entry.title, device)
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key=ISSUE_DEVICE_TYPE,
            translation_placeholders={"device": device},
        )
    async_clear_receiver_issue(hass, entry.entry_id, ISSUE_DEVICE_TYPE)
    if CONF_MQTT_TOPIC in entry.data:
        # Not before Home Assistant's MQTT is there (nothing probed or started meanwhile);
        # imported here: only an MQTT receiver loads it.
        module = await async_import_module(hass, f"{__package__}.mqtt_receiver")
        await module.async_wait_for_mqtt(hass)
    # Created by an import: the add-on's entities it takes over, before anything else.
    async_take_over(hass, entry)
    # After a HACS update the bundled binary has lost its exec bit: back before it is run; and
    # it runs only as the release built it (never a half-extracted or altered file, and no
    # retries: it stays altered until it is installed again, which restarts Home Assistant).
    try:
        await hass.async_add_executor_job(prepare_bundled, command)
    except BundledAlteredError as err:
        async_raise_receiver_issue(
            hass, entry.entry_id, ISSUE_BUNDLED_ALTERED, {"title": entry.title, "file": err.file}
        )
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key=ISSUE_BUNDLED_ALTERED,
            translation_placeholders={"file": err.file},
        ) from err
    async_clear_receiver_issue(hass, entry.entry_id, ISSUE_BUNDLED_ALTERED)
    try:
        info = await probe_info(command)
    except ProbeError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=err.translation_key,
            translation_placeholders={"command": command},
        ) from err
    if not await hass.async_add_executor_job(device_present, device):
        # The dongle is unplugged: HA retries with backoff.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="device_missing",
            translation_placeholders={"device": device},
        )

    catalog = await async_get_catalog(hass, command, info)
    availability = Availability(hass, entry.entry_id)
    issues = ReceiverIssues(hass, entry.entry_id, entry.title)
    entry.async_on_unload(issues.start())
    coordinator = WmbusCoordinator(
        hass, entry, info=info, catalog=catalog, availability=availability, issues=issues
    )
    supervisor = ReceiverSupervisor(hass, entry, coordinator, availability, issues)
    receiver = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        manufacturer="wmbusmeters",
        model=receiver_model(entry.data),
        name=entry.title,
        sw_version=info.version,
    )
    entry.runtime_data = WmbusData(supervisor, coordinator, availability, receiver.id)
    # Whatever step of the set-up fails or is cancelled from here, nothing is left running
    # (the unload, HA's stop and this may each ask: each stop runs once).
    entry.async_on_unload(partial(_async_stop, entry))
    await coordinator.async_start()
    if "recorder" in hass.config.components:
        # Before wmbusmeters starts: its first telegrams carry the meters' past.
        entry.async_on_unload(ReceiverHistory(hass, entry.entry_id, coordinator.meters).start())
    try:
        await supervisor.async_start()
    except ListenerError as err:
        # A network receiver's port is taken (another program since the flow checked it):
        # HA retries with backoff; nothing was started.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=err.translation_key,
            translation_placeholders={"port": str(entry.data.get(CONF_LISTEN_PORT))},
        ) from err

    async def _on_hass_stop(_event: Event) -> None:
        await _async_stop(entry)

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _on_hass_stop))
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_stop(entry: WmbusConfigEntry) -> None:
    """Stop delivery: wmbusmeters and the port first (no more telegrams), then the routing
    to the meters (no more new entities)."""
    await entry.runtime_data.supervisor.async_stop()
    entry.runtime_data.coordinator.close()


async def _async_entry_updated(hass: HomeAssistant, entry: WmbusConfigEntry) -> None:
    """Meters, options or the radio changed: restart wmbusmeters with them. Only another
    command reloads the receiver (its version and drivers are asked again)."""
    data = entry.runtime_data
    if entry.data[CONF_COMMAND] != data.supervisor.runner.command:
        hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    data.async_entry_updated()


async def async_unload_entry(hass: HomeAssistant, entry: WmbusConfigEntry) -> bool:
    """Stop delivery first, then unload the platforms: no telegram reaches a platform while
    its entities are removed (it would add them again, as orphans). The platforms'
    subscriptions end with the entry's unload."""
    await _async_stop(entry)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: WmbusConfigEntry) -> None:
    """A deleted receiver leaves no repair issue and no configuration (with its keys) behind;
    a meter another receiver also held (saved before the flows refused it) is read there now."""
    async_clear_receiver_issues(hass, entry.entry_id)
    for other in hass.config_entries.async_loaded_entries(DOMAIN):
        if other.entry_id != entry.entry_id:
            other.runtime_data.async_entry_updated()
    config_dir = Path(hass.config.path(CONFIG_SUBDIR, entry.entry_id))
    await hass.async_add_executor_job(shutil.rmtree, config_dir, True)

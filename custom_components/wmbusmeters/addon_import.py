"""Taking over an existing wmbusmeters setup (the add-on's, a source install's): where its
files may be read from, what of it becomes a receiver and its meters, and the summary the
user confirms (the files themselves are read by wmbus/setup_files.py; issue 27).

Only directories Home Assistant may read are read: its configuration directory (the add-on
keeps its files in `<config>/wmbusmeters`), the directories allowed in its configuration
(`allowlist_external_dirs`), and `/etc` (a source install's `wmbusmeters.conf` and
`wmbusmeters.d/`; nothing else of it is opened), each as its path really leads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
import logging
import os
from pathlib import Path
import re
from types import MappingProxyType
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_platform,
    entity_registry as er,
    restore_state,
)
from homeassistant.helpers.entity import entity_sources
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .drivers import DriverCatalog
from .meters import meter_owner
from .units import FieldKind, kind_from_description
from .wmbus.config import MBUS
from .wmbus.kem import KeyFileMeter
from .wmbus.setup_files import ImportedMeter, ImportedSetup, Skipped, read_setup
from .wmbus.upgrades import renamed_driver

_LOGGER = logging.getLogger(__name__)

#: Where the add-on keeps its files, under Home Assistant's configuration directory.
ADDON_DIR: Final = "wmbusmeters"
#: A source install's files.
ETC: Final = "/etc"
#: The translations of why something is not taken (strings.json: selector.import_reason).
REASONS: Final = "import_reason"
#: The most lines a summary lists of each kind (the rest are counted).
MAX_LISTED: Final = 30
#: The add-on's entities: MQTT discovery's, unique id `wmbusmeters_<id>_<field>` (its
#: mqtt_discovery/<driver>.json templates), discovery topic
#: `<prefix>/<component>/wmbusmeters/<id>_<field>/config` (its mqtt_discovery.sh).
ADDON_PLATFORM: Final = "mqtt"
#: Seconds the add-on's entity has to leave Home Assistant once its registry entry is removed.
RELEASE_TIMEOUT: Final = 15  # (MQTT waits 10 s for the broker's acknowledgement)
#: Entities to take over when the receiver an import created is first set up, by the
#: receiver's unique id (its device).
TAKEOVERS: HassKey[dict[str, list[Takeover]]] = HassKey(f"{DOMAIN}_takeovers")


@dataclass(frozen=True, slots=True)
class Takeover:
    """An add-on entity whose entity id (and so its history and statistics) this
    integration's sensor of the same field takes."""

    meter_id: str
    field: str
    entity_id: str
    kind: FieldKind
    #: What the user set on the add-on's entity (name, icon, area, labels, aliases, hidden,
    #: disabled), for this integration's (async_release).
    settings: Mapping[str, Any] = MappingProxyType({})


def default_root(hass: HomeAssistant) -> str:
    """The add-on's data path if it is there, else /etc (blocking: stat)."""
    addon = hass.config.path(ADDON_DIR)
    return addon if os.path.isdir(addon) else ETC


def allowed_root(hass: HomeAssistant, path: str) -> str | None:
    """Where a setup in this directory really is, if Home Assistant may read it there: in
    its configuration directory or one its configuration allows, or /etc; None if not
    (blocking: resolves links). The setup is read from the resolved path, not through the
    links again."""
    if not os.path.isabs(path) or {".", ".."} & set(path.split("/")):
        return None
    if path == ETC:
        return ETC
    real = os.path.realpath(path)
    config = os.path.realpath(hass.config.config_dir)
    if os.path.commonpath([real, config]) == config or hass.config.is_allowed_path(real):
        return real
    return None


async def async_read(hass: HomeAssistant, path: str) -> ImportedSetup:
    """The setup's files, read in the executor (SetupFileError if they cannot be)."""
    return await hass.async_add_executor_job(read_setup, Path(path))


@dataclass(slots=True)
class ImportPlan:
    """What the import will create, and what it will not, with why."""

    setup: ImportedSetup
    meters: list[ImportedMeter] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    takeovers: list[Takeover] = field(default_factory=list)
    #: The meters whose key a utility's key file gave (shown as such in the summary).
    keys_from_file: set[str] = field(default_factory=set)

    @property
    def receiver_possible(self) -> bool:
        """A radio this integration's receiver form can hold (a wired bus is set up by hand)."""
        device = self.setup.device
        return device is not None and device.device_type != MBUS


def plan_import(hass: HomeAssistant, setup: ImportedSetup, catalog: DriverCatalog) -> ImportPlan:
    """The setup's meters this integration can take: drivers the running wmbusmeters lists,
    ids no receiver holds yet."""
    plan = ImportPlan(setup, skipped=list(setup.skipped))
    if setup.device is not None and setup.device.device_type == MBUS:
        plan.skipped.append(Skipped("wmbusmeters.conf:device", "wired_bus"))
    listed = catalog.drivers
    for found in setup.meters:
        # A setup of an older wmbusmeters: its name for the driver (multical21) as the
        # running one calls it (kamwater).
        renamed = renamed_driver(found.driver, listed) if listed else None
        meter = replace(found, driver=renamed) if renamed else found
        if listed and meter.driver != "auto" and meter.driver not in listed:
            plan.skipped.append(Skipped(meter.file, "driver_not_listed"))
        elif meter_owner(hass, meter.meter_id) is not None:
            plan.skipped.append(Skipped(meter.file, "meter_configured"))
        else:
            plan.meters.append(meter)
    _plan_takeovers(hass, plan)
    return plan


def take_keys(plan: ImportPlan, from_file: list[KeyFileMeter]) -> int:
    """The keys of a utility's key file for the imported meters it lists (the utility's key
    replaces one the setup's file has: the file was given for that); how many it gave."""
    keys = {meter.meter_id: meter.key for meter in from_file}
    given = 0
    for index, meter in enumerate(plan.meters):
        if (key := keys.get(meter.meter_id.lower())) is not None:
            plan.meters[index] = replace(meter, key=key)
            plan.keys_from_file.add(meter.meter_id)
            given += 1
    return given


def _plan_takeovers(hass: HomeAssistant, plan: ImportPlan) -> None:
    """The add-on's entities of the imported meters: a sensor whose field this integration
    shows the same way (unit, kind) is taken over; a derived one (its `status_*` binary
    sensors: the alarm sensors replace them) or one shown otherwise is not, and said so."""
    registry = er.async_get(hass)
    # (the add-on writes the id as its user typed it: upper or lower case)
    by_prefix = {f"wmbusmeters_{meter.meter_id}_": meter for meter in plan.meters}
    for entry in list(registry.entities.values()):
        if entry.platform != ADDON_PLATFORM or not entry.unique_id.startswith("wmbusmeters_"):
            continue
        prefix = "_".join(entry.unique_id.split("_", 2)[:2]) + "_"
        if (meter := by_prefix.get(prefix.lower())) is None:
            continue
        name = entry.unique_id.removeprefix(prefix)
        if entry.domain != Platform.SENSOR:
            plan.skipped.append(Skipped(entry.entity_id, "derived_entity"))
            continue
        capabilities = entry.capabilities or {}
        kind = kind_from_description(
            name,
            meter.driver,
            device_class=entry.original_device_class,
            state_class=capabilities.get("state_class"),
            unit=entry.unit_of_measurement,
            options=None,
        )
        if kind.unit != entry.unit_of_measurement:
            plan.skipped.append(Skipped(entry.entity_id, "shown_otherwise"))
            continue
        plan.takeovers.append(Takeover(meter.meter_id, name, entry.entity_id, kind))


def release_problem(hass: HomeAssistant, plan: ImportPlan) -> str | None:
    """Why the add-on's entities cannot leave cleanly now (a translation key), or None.
    With MQTT set up, it must be running and connected: an entity leaving clears its retained
    discovery topic then; otherwise the topic would bring it back, and a retained reading
    could be written over the sensor that takes its id."""
    if not plan.takeovers:
        return None
    entries = hass.config_entries.async_entries(ADDON_PLATFORM)
    if not entries:
        return None  # no MQTT at all: nothing can bring them back
    if any(entry.state is not ConfigEntryState.LOADED for entry in entries):
        return "mqtt_not_ready"
    from homeassistant.components.mqtt import is_connected  # noqa: PLC0415 (MQTT runs)

    return None if is_connected(hass) else "mqtt_not_ready"


async def async_release(hass: HomeAssistant, plan: ImportPlan) -> None:
    """Confirmed (release_problem said none): the add-on's entities to take over leave Home
    Assistant now, before the receiver is created, so that nothing of theirs can touch the
    sensors that take their ids. What the user set on each is kept for them; each leaves the
    entity registry (MQTT clears its discovery topic then: it cannot come back), its removal
    is awaited (forced past RELEASE_TIMEOUT), and its last saved value is forgotten (it is the
    add-on's, perhaps weeks old: the sensor shows the meter's next reading instead)."""
    registry = er.async_get(hass)
    devices = dr.async_get(hass)
    kept: list[Takeover] = []
    leaving: dict[str, asyncio.Future[None]] = {}
    for takeover in plan.takeovers:
        old = registry.async_get(takeover.entity_id)
        if old is None or old.platform != ADDON_PLATFORM:
            continue  # gone meanwhile
        device = devices.async_get(old.device_id) if old.device_id else None
        settings = {
            "name": old.name,
            "icon": old.icon,
            "area_id": old.area_id or (device.area_id if device else None),
            "labels": set(old.labels),
            # (a set before 2026.10, an ordered list since: kept as it is)
            "aliases": old.aliases.copy(),
            "hidden_by": old.hidden_by,
            "disabled_by": old.disabled_by
            if old.disabled_by is er.RegistryEntryDisabler.USER
            else None,
        }
        if old.entity_id in entity_sources(hass):
            leaving[old.entity_id] = _async_state_removed(hass, old.entity_id)
        registry.async_remove(old.entity_id)
        kept.append(replace(takeover, settings=settings))
    if leaving:
        _done, late = await asyncio.wait(leaving.values(), timeout=RELEASE_TIMEOUT)
        for entity_id, future in leaving.items():
            if future in late:
                future.cancel()
                await _async_force_remove(hass, entity_id)
    restore = restore_state.async_get(hass)
    for takeover in kept:
        hass.states.async_remove(takeover.entity_id)  # (a state without an entity: none left)
        restore.last_states.pop(takeover.entity_id, None)
    if kept:
        await restore.async_dump_states()  # (the old values must not come back after a crash)
    plan.takeovers = kept


async def _async_force_remove(hass: HomeAssistant, entity_id: str) -> None:
    """An MQTT entity that did not leave in time (its broker slow to acknowledge the cleared
    discovery topic): removed from its platform now."""
    _LOGGER.warning("%s: the add-on's entity did not leave in time; removing it", entity_id)
    for platform in entity_platform.async_get_platforms(hass, ADDON_PLATFORM):
        if (entity := platform.entities.get(entity_id)) is not None:
            await entity.async_remove(force_remove=True)


def _async_state_removed(hass: HomeAssistant, entity_id: str) -> asyncio.Future[None]:
    """A future done when the entity's state leaves the state machine."""
    future: asyncio.Future[None] = hass.loop.create_future()

    @callback
    def removed(event: Event[EventStateChangedData]) -> None:
        if event.data["new_state"] is None and not future.done():
            future.set_result(None)

    unsub = async_track_state_change_event(hass, entity_id, removed)
    future.add_done_callback(lambda _f: unsub())
    return future


@callback
def async_take_over(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """A receiver an import created, set up for the first time: this integration's sensor
    of each field taken over is registered under the add-on entity's id (its history and
    long-term statistics go on in the same series), with what the user had set on it. The
    sensor is restored from this registration when the platform starts (as after a
    restart)."""
    takeovers = hass.data.get(TAKEOVERS, {}).pop(entry.unique_id or "", [])
    registry = er.async_get(hass)
    subentries = {sub.unique_id: sub.subentry_id for sub in entry.subentries.values()}
    for takeover in takeovers:
        subentry_id = subentries.get(takeover.meter_id)
        if subentry_id is None or registry.async_get(takeover.entity_id) is not None:
            _LOGGER.warning("%s: not taken over (its meter or its id is gone)", takeover.entity_id)
            continue
        kind = takeover.kind
        new = registry.async_get_or_create(
            Platform.SENSOR,
            DOMAIN,
            f"{takeover.meter_id}_{takeover.field}",
            config_entry=entry,
            config_subentry_id=subentry_id,
            suggested_object_id=takeover.entity_id.split(".", 1)[1],
            original_device_class=kind.device_class,
            unit_of_measurement=kind.unit,
            capabilities={"state_class": kind.state_class} if kind.state_class else None,
        )
        if new.entity_id != takeover.entity_id:
            # Registered before (this meter tried out earlier): its old id comes back first.
            new = registry.async_update_entity(new.entity_id, new_entity_id=takeover.entity_id)
        registry.async_update_entity(new.entity_id, **takeover.settings)
        _LOGGER.info("%s: taken over from the wmbusmeters add-on", new.entity_id)


async def async_summary(hass: HomeAssistant, plan: ImportPlan) -> dict[str, str]:
    """The summary step's placeholders: the receiver, the meters, what is not taken and why
    (in the user's language). A meter's key is never shown: only whether it has one."""
    translations = await async_get_translations(hass, hass.config.language, "selector", [DOMAIN])
    prefix = f"component.{DOMAIN}.selector.{REASONS}.options."

    def reason(key: str) -> str:
        return translations.get(prefix + key, key)

    device = plan.setup.device
    receiver = "-"
    if device is not None:
        receiver = " ".join(
            part
            for part in (device.device, device.device_type, ",".join(device.link_modes))
            if part
        )
    meters = [
        f"- {_md(m.name)} · {m.driver} · {m.meter_id}"
        + (
            f" · {reason('key_from_file')}"
            if m.meter_id in plan.keys_from_file
            else f" · {reason('has_key')}"
            if m.key
            else ""
        )
        for m in plan.meters
    ]
    skipped = [f"- {_md(s.what)}: {reason(s.reason)}" for s in plan.skipped]
    takeovers = [f"- {t.entity_id} ({_md(t.field)})" for t in plan.takeovers]
    return {
        "path": _md(str(plan.setup.root)),
        "receiver": _md(receiver),
        "meters": _listed(meters) or "-",
        "takeovers": _listed(takeovers) or "-",
        "skipped": _listed(skipped) or "-",
    }


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def _md(text: str) -> str:
    """Text from the setup's files as the summary's markdown shows it, never as markup (a
    meter's name `![x](http://...)` is no image)."""
    return _MARKDOWN.sub(r"\\\1", text)


def _listed(lines: list[str]) -> str:
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"- … (+{len(lines) - MAX_LISTED})"]
    return "\n".join(lines)

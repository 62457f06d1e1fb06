"""Taking over an existing wmbusmeters setup (the add-on's, a source install's): where its
files may be read from, what of it becomes a receiver and its meters, and the summary the
user confirms (the files themselves are read by wmbus/setup_files.py; issue 27).

Only directories Home Assistant may read are read: its configuration directory (the add-on
keeps its files in `<config>/wmbusmeters`), the directories allowed in its configuration
(`allowlist_external_dirs`), and `/etc` (a source install's `wmbusmeters.conf`; nothing else
of it is opened).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import logging
import os
from pathlib import Path
from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .drivers import DriverCatalog
from .meters import meter_owner
from .units import FieldKind, kind_from_description
from .wmbus.config import MBUS
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


def default_root(hass: HomeAssistant) -> str:
    """The add-on's data path if it is there, else /etc (blocking: stat)."""
    addon = hass.config.path(ADDON_DIR)
    return addon if os.path.isdir(addon) else ETC


def allowed_root(hass: HomeAssistant, path: str) -> bool:
    """Whether Home Assistant may read a setup from this directory."""
    if not os.path.isabs(path) or {".", ".."} & set(path.split("/")):
        return False
    return path == ETC or hass.config.is_allowed_path(path)


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
    for found in setup.meters:
        meter = found
        if (
            meter.driver != "auto"
            and catalog.drivers
            and meter.driver not in catalog.drivers
            and (renamed := renamed_driver(meter.driver, catalog.drivers)) is not None
        ):
            # A setup of an older wmbusmeters (multical21, which 3.0 calls kamwater).
            meter = replace(found, driver=renamed)
        if meter.driver != "auto" and catalog.drivers and meter.driver not in catalog.drivers:
            plan.skipped.append(Skipped(meter.file, "driver_not_listed"))
        elif meter_owner(hass, meter.meter_id) is not None:
            plan.skipped.append(Skipped(meter.file, "meter_configured"))
        else:
            plan.meters.append(meter)
    _plan_takeovers(hass, plan)
    return plan


def _plan_takeovers(hass: HomeAssistant, plan: ImportPlan) -> None:
    """The add-on's entities of the imported meters: a sensor whose field this integration
    shows the same way (unit, kind) is taken over; a derived one (its `status_*` binary
    sensors: the alarm sensors replace them) or one shown otherwise is not, and said so."""
    registry = er.async_get(hass)
    by_prefix = {f"wmbusmeters_{meter.meter_id}_": meter for meter in plan.meters}
    for entry in list(registry.entities.values()):
        if entry.platform != ADDON_PLATFORM or not entry.unique_id.startswith("wmbusmeters_"):
            continue
        prefix = "_".join(entry.unique_id.split("_", 2)[:2]) + "_"
        if (meter := by_prefix.get(prefix)) is None:
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


@callback
def async_take_over(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """A receiver an import created, set up for the first time: each add-on entity it takes
    over leaves the entity registry, and this integration's sensor of that field is
    registered under its entity id (its history and long-term statistics go on in the same
    series), with the user's name, icon, area and labels for it. The sensor is restored from
    this registration when the platform starts (as after a restart)."""
    takeovers = hass.data.get(TAKEOVERS, {}).pop(entry.unique_id or "", [])
    registry = er.async_get(hass)
    subentries = {sub.unique_id: sub.subentry_id for sub in entry.subentries.values()}
    for takeover in takeovers:
        old = registry.async_get(takeover.entity_id)
        subentry_id = subentries.get(takeover.meter_id)
        if old is None or old.platform != ADDON_PLATFORM or subentry_id is None:
            continue  # gone meanwhile, or already someone else's
        registry.async_remove(old.entity_id)
        # The MQTT entity leaves its state behind until its own removal runs (a task): the id
        # is free for this integration's sensor now, not a loop turn later.
        hass.states.async_remove(old.entity_id)
        kind = takeover.kind
        new = registry.async_get_or_create(
            Platform.SENSOR,
            DOMAIN,
            f"{takeover.meter_id}_{takeover.field}",
            config_entry=entry,
            config_subentry_id=subentry_id,
            suggested_object_id=old.entity_id.split(".", 1)[1],
            original_device_class=kind.device_class,
            unit_of_measurement=kind.unit,
            capabilities={"state_class": kind.state_class} if kind.state_class else None,
        )
        if new.entity_id != old.entity_id:
            new = registry.async_update_entity(new.entity_id, new_entity_id=old.entity_id)
        registry.async_update_entity(
            new.entity_id,
            name=old.name,
            icon=old.icon,
            area_id=old.area_id,
            labels=old.labels,
        )
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
        f"- {m.name} · {m.driver} · {m.meter_id}{' · ' + reason('has_key') if m.key else ''}"
        for m in plan.meters
    ]
    skipped = [f"- {s.what}: {reason(s.reason)}" for s in plan.skipped]
    takeovers = [f"- {t.entity_id} ({t.field})" for t in plan.takeovers]
    return {
        "path": str(plan.setup.root),
        "receiver": receiver,
        "meters": _listed(meters) or "-",
        "takeovers": _listed(takeovers) or "-",
        "skipped": _listed(skipped) or "-",
    }


def _listed(lines: list[str]) -> str:
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"- … (+{len(lines) - MAX_LISTED})"]
    return "\n".join(lines)

"""Taking over an existing wmbusmeters setup (the add-on's, a source install's): where its
files may be read from, what of it becomes a receiver and its meters, and the summary the
user confirms (the files themselves are read by wmbus/setup_files.py; issue 27).

Only directories Home Assistant may read are read: its configuration directory (the add-on
keeps its files in `<config>/wmbusmeters`), the directories allowed in its configuration
(`allowlist_external_dirs`), and `/etc` (a source install's `wmbusmeters.conf`; nothing else
of it is opened).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations

from .const import DOMAIN
from .drivers import DriverCatalog
from .meters import meter_owner
from .wmbus.config import MBUS
from .wmbus.setup_files import ImportedMeter, ImportedSetup, Skipped, read_setup

#: Where the add-on keeps its files, under Home Assistant's configuration directory.
ADDON_DIR: Final = "wmbusmeters"
#: A source install's files.
ETC: Final = "/etc"
#: The translations of why something is not taken (strings.json: selector.import_reason).
REASONS: Final = "import_reason"
#: The most lines a summary lists of each kind (the rest are counted).
MAX_LISTED: Final = 30


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
    for meter in setup.meters:
        if meter.driver != "auto" and catalog.drivers and meter.driver not in catalog.drivers:
            plan.skipped.append(Skipped(meter.file, "driver_not_listed"))
        elif meter_owner(hass, meter.meter_id) is not None:
            plan.skipped.append(Skipped(meter.file, "meter_configured"))
        else:
            plan.meters.append(meter)
    return plan


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
    return {
        "path": str(plan.setup.root),
        "receiver": receiver,
        "meters": _listed(meters) or "-",
        "skipped": _listed(skipped) or "-",
    }


def _listed(lines: list[str]) -> str:
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"- … (+{len(lines) - MAX_LISTED})"]
    return "\n".join(lines)

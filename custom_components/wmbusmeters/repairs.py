"""Repair issues for meters wmbusmeters cannot decrypt, with a fix flow that asks for the key.

Modelled on knx/repairs.py. 2.0.0 ignores a meter for the rest of its run after a failed
decryption, so a fixed key restarts wmbusmeters (through the subentry update listener).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components import persistent_notification
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.translation import async_get_translations

from .compat import vol
from .const import CONF_COMMAND, CONF_DRIVER, CONF_KEY, CONF_METER_ID, DOMAIN
from .driver_input import DriverList, driver_field, read_driver
from .key_input import key_field, read_key
from .wmbus import DecryptionProblem
from .wmbus.upgrades import DRIVER_REPLACEMENTS

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlowResult

    from .coordinator import MeterState, WmbusCoordinator

ISSUE_DECRYPTION = "decryption_failed"
ISSUE_UNKNOWN_DRIVER = "unknown_driver"
ISSUE_REMOVED_FIELDS = "fields_removed"


def decryption_issue_id(meter_id: str) -> str:
    """The repair issue id of a meter (CONTRACT.md)."""
    return f"{ISSUE_DECRYPTION}_{meter_id}"


def effective_problem(problem: DecryptionProblem, has_key: bool) -> DecryptionProblem:
    """What the user has to do.

    2.0.0 says "did you use the correct decryption key?" also for an encrypted meter that has no
    key at all (compact frames): that is a missing key, not a wrong one.
    """
    if problem is DecryptionProblem.WRONG_KEY and not has_key:
        return DecryptionProblem.MISSING_KEY
    return problem


@callback
def async_raise_decryption_issue(
    hass: HomeAssistant,
    coordinator: WmbusCoordinator,
    meter: MeterState,
    problem: DecryptionProblem,
) -> None:
    """A fixable issue for the meter, and a notification the first time."""
    issue_id = decryption_issue_id(meter.meter_id)
    first = ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_DECRYPTION,
        translation_placeholders={"name": meter.name, "meter_id": meter.meter_id},
        data={
            "entry_id": coordinator.entry.entry_id,
            "subentry_id": meter.subentry_id,
            "meter_id": meter.meter_id,
            "problem": problem.value,
        },
    )
    if first:
        hass.async_create_task(_async_notify(hass, meter, problem), eager_start=True)


@callback
def async_clear_decryption_issue(hass: HomeAssistant, meter_id: str) -> None:
    """The meter decodes again: the issue and its notification go away."""
    ir.async_delete_issue(hass, DOMAIN, decryption_issue_id(meter_id))
    persistent_notification.async_dismiss(hass, f"{DOMAIN}_{decryption_issue_id(meter_id)}")


@callback
def async_raise_receiver_issue(
    hass: HomeAssistant, entry_id: str, kind: str, placeholders: dict[str, str]
) -> None:
    """A receiver problem (command_missing, device_missing, crash_loop); not fixable here,
    it clears itself when the receiver works again."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"{kind}_{entry_id}",
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind,
        translation_placeholders=placeholders,
    )


@callback
def async_clear_receiver_issue(hass: HomeAssistant, entry_id: str, kind: str) -> None:
    """The receiver works again."""
    ir.async_delete_issue(hass, DOMAIN, f"{kind}_{entry_id}")


def unknown_driver_issue_id(meter_id: str) -> str:
    """The repair issue id of a meter whose driver the binary does not know."""
    return f"{ISSUE_UNKNOWN_DRIVER}_{meter_id}"


@callback
def async_raise_unknown_driver_issue(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry
) -> None:
    """wmbusmeters has no such driver (removed in its release): pick a replacement."""
    driver = subentry.data[CONF_DRIVER]
    ir.async_create_issue(
        hass,
        DOMAIN,
        unknown_driver_issue_id(subentry.data[CONF_METER_ID]),
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_UNKNOWN_DRIVER,
        translation_placeholders={"name": subentry.title, "driver": driver},
        data={"entry_id": entry.entry_id, "subentry_id": subentry.subentry_id},
    )


@callback
def async_clear_unknown_driver_issue(hass: HomeAssistant, meter_id: str) -> None:
    """The meter's driver is known (again, or replaced)."""
    ir.async_delete_issue(hass, DOMAIN, unknown_driver_issue_id(meter_id))


def removed_fields_issue_id(meter_id: str) -> str:
    """The repair issue id of a meter with entities of readings wmbusmeters no longer has."""
    return f"{ISSUE_REMOVED_FIELDS}_{meter_id}"


@callback
def async_raise_removed_fields_issue(
    hass: HomeAssistant, entry_id: str, meter: MeterState, entity_ids: list[str], version: str
) -> None:
    """Entities whose field the running wmbusmeters neither documents nor sends (removed in
    its release): they would keep their last value for good. Offer to remove them."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        removed_fields_issue_id(meter.meter_id),
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_REMOVED_FIELDS,
        translation_placeholders={"name": meter.name},
        data={
            "entry_id": entry_id,
            "name": meter.name,
            "version": version,
            "entity_ids": ",".join(entity_ids),
        },
    )


@callback
def async_clear_removed_fields_issue(hass: HomeAssistant, meter_id: str) -> None:
    """Every entity of the meter is a reading wmbusmeters has."""
    ir.async_delete_issue(hass, DOMAIN, removed_fields_issue_id(meter_id))


async def _async_notify(hass: HomeAssistant, meter: MeterState, problem: DecryptionProblem) -> None:
    """A persistent notification in the user's language, linking to the repair."""
    translations = await async_get_translations(hass, hass.config.language, "issues", [DOMAIN])
    prefix = f"component.{DOMAIN}.issues.{ISSUE_DECRYPTION}"
    title = translations.get(f"{prefix}.title", "Meter {name} cannot be read")
    message = translations.get(
        f"{prefix}.fix_flow.step.{problem.value}.description",
        "wmbusmeters cannot decrypt meter {name} ({meter_id}).",
    )
    placeholders = {"name": meter.name, "meter_id": meter.meter_id}
    persistent_notification.async_create(
        hass,
        message.format(**placeholders) + "\n\n[Settings → Repairs](/config/repairs)",
        title=title.format(**placeholders),
        notification_id=f"{DOMAIN}_{decryption_issue_id(meter.meter_id)}",
    )


class DecryptionRepairFlow(RepairsFlow):
    """Ask for the corrected key (or none), store it on the meter, restart wmbusmeters."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which meter this is about."""
        self._entry_id: str = data["entry_id"]
        self._subentry_id: str = data["subentry_id"]
        self._problem = DecryptionProblem(data["problem"])

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """The step is worded for the case: wrong key, missing key, key but not encrypted.

        (The repairs manager passes the issue's data here, not a user's answer.)
        """
        return await self._async_step_key(self._problem.value, None)

    async def async_step_wrong_key(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Wrong key."""
        return await self._async_step_key("wrong_key", user_input)

    async def async_step_missing_key(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """No key for an encrypted meter."""
        return await self._async_step_key("missing_key", user_input)

    async def async_step_not_encrypted(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """A key for a meter that sends in the clear: offer no key."""
        return await self._async_step_key("not_encrypted", user_input)

    async def _async_step_key(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> RepairsFlowResult:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        subentry = entry.subentries.get(self._subentry_id) if entry else None
        if entry is None or subentry is None:
            return self.async_abort(reason="meter_removed")
        errors: dict[str, str] = {}
        if user_input is not None and (key := read_key(user_input, errors)) is not None:
            # The update listener restarts wmbusmeters with the new key.
            self.hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, CONF_KEY: key}
            )
            return self.async_create_entry(data={})
        schema = vol.Schema(key_field())
        return self.async_show_form(
            step_id=step_id,
            data_schema=schema,
            errors=errors,
            description_placeholders={"name": subentry.title, "meter_id": subentry.unique_id or ""},
        )


class UnknownDriverRepairFlow(RepairsFlow):
    """Pick the driver that replaces one the running wmbusmeters does not have."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which meter this is about."""
        self._entry_id: str = data["entry_id"]
        self._subentry_id: str = data["subentry_id"]
        self._drivers: DriverList | None = None

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """(The repairs manager passes the issue's data here, not a user's answer.)"""
        return await self.async_step_pick_driver()

    async def async_step_pick_driver(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """The binary's own drivers, upstream's suggested replacement preselected."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        subentry = entry.subentries.get(self._subentry_id) if entry else None
        if entry is None or subentry is None:
            return self.async_abort(reason="meter_removed")
        if self._drivers is None:
            self._drivers = await DriverList.async_load(entry.data[CONF_COMMAND])
        errors: dict[str, str] = {}
        if (
            user_input is not None
            and (driver := read_driver(user_input, self._drivers, errors)) is not None
        ):
            # The update listener restarts wmbusmeters with it and clears this issue.
            self.hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, CONF_DRIVER: driver}
            )
            return self.async_create_entry(data={})
        old = subentry.data[CONF_DRIVER]
        suggestion = DRIVER_REPLACEMENTS.get(old, "auto")
        if suggestion not in self._drivers.names:
            suggestion = "auto"
        return self.async_show_form(
            step_id="pick_driver",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(driver_field(self._drivers)), user_input or {CONF_DRIVER: suggestion}
            ),
            errors=errors,
            description_placeholders={"name": subentry.title, "driver": old},
        )


class RemovedFieldsRepairFlow(RepairsFlow):
    """Remove the entities of readings the running wmbusmeters no longer reports."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which entities this is about."""
        self._entry_id: str = data["entry_id"]
        self._entity_ids: list[str] = str(data["entity_ids"]).split(",")
        self._placeholders = {
            "name": str(data["name"]),
            "version": str(data["version"]),
            "entities": "\n".join(f"- {entity_id}" for entity_id in self._entity_ids),
        }

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """(The repairs manager passes the issue's data here, not a user's answer.)"""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """List them; on submit, remove those that are still this receiver's."""
        if user_input is not None:
            registry = er.async_get(self.hass)
            for entity_id in self._entity_ids:
                entity = registry.async_get(entity_id)
                if entity is not None and entity.config_entry_id == self._entry_id:
                    registry.async_remove(entity_id)  # its history stays in the recorder
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=self._placeholders,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow of a decryption, an unknown-driver or a removed-fields issue."""
    if issue_id.startswith(f"{ISSUE_DECRYPTION}_") and data:
        return DecryptionRepairFlow(dict(data))
    if issue_id.startswith(f"{ISSUE_UNKNOWN_DRIVER}_") and data:
        return UnknownDriverRepairFlow(dict(data))
    if issue_id.startswith(f"{ISSUE_REMOVED_FIELDS}_") and data:
        return RemovedFieldsRepairFlow(dict(data))
    raise ValueError(f"unknown repair {issue_id}")

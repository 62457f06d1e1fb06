"""The fix flows of the integration's repair issues (issues.py raises and clears them).

Modelled on knx/repairs.py. 2.0.0 ignores a meter for the rest of its run after a failed
decryption, so a fixed key restarts wmbusmeters (through the subentry update listener).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .compat import vol
from .const import (
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_KEY,
    CONF_LINK_MODES,
)
from .drivers import DriverCatalog, async_get_catalog
from .forms import dongle_modes_text, driver_field, key_field, radio_fields
from .issues import (
    ISSUE_DECRYPTION,
    ISSUE_DEVICE_TYPE,
    ISSUE_DUPLICATE_METER,
    ISSUE_REMOVED_FIELDS,
    ISSUE_UNKNOWN_DRIVER,
)
from .key_files import async_key_for_meter, key_file_section
from .validation import dongle_errors, read_driver, read_key
from .wmbus import DecryptionProblem
from .wmbus.upgrades import DRIVER_REPLACEMENTS

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlowResult


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
        if user_input is not None:
            user_input = dict(user_input)
            # A utility's key file instead of the typed key: this meter's key from it.
            await async_key_for_meter(self.hass, user_input, subentry.data, errors)
        if (
            user_input is not None
            and not errors
            and (key := read_key(user_input, errors)) is not None
        ):
            # The update listener restarts wmbusmeters with the new key.
            self.hass.config_entries.async_update_subentry(
                entry, subentry, data={**subentry.data, CONF_KEY: key}
            )
            return self.async_create_entry(data={})
        # (a meter that sends in the clear needs no key, from a file or typed)
        schema = vol.Schema(
            {**key_field(), **(key_file_section() if step_id != "not_encrypted" else {})}
        )
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
        self._drivers: DriverCatalog | None = None

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
            self._drivers = await async_get_catalog(self.hass, entry.data[CONF_COMMAND])
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


class DuplicateMeterRepairFlow(RepairsFlow):
    """Remove the copy of a meter that another receiver holds as well."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which copy this is about."""
        self._entry_id: str = data["entry_id"]
        self._subentry_id: str = data["subentry_id"]
        self._placeholders = {
            key: str(data.get(key, "")) for key in ("name", "meter_id", "receiver", "owner")
        }

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """(The repairs manager passes the issue's data here, not a user's answer.)"""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """On submit, the copy leaves this receiver (the owner's device and entities stay)."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or self._subentry_id not in entry.subentries:
            return self.async_abort(reason="meter_removed")
        if user_input is not None:
            # Its update listener clears this issue with the meter's other issues.
            self.hass.config_entries.async_remove_subentry(entry, self._subentry_id)
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=self._placeholders,
        )


class DeviceTypeRepairFlow(RepairsFlow):
    """Ask a receiver saved with a bare serial port for its dongle's type, then start it."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Remember which receiver this is about."""
        self._entry_id: str = data["entry_id"]

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """(The repairs manager passes the issue's data here, not a user's answer.)"""
        return await self.async_step_device_type()

    async def async_step_device_type(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """The type, and link modes where the dongle needs them; saved, the receiver starts."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="receiver_removed")
        device: str = entry.data[CONF_DEVICE]
        errors: dict[str, str] = {}
        if user_input is not None:
            device_type: str = user_input[CONF_DEVICE_TYPE]
            link_modes = list(user_input.get(CONF_LINK_MODES, []))
            errors = await dongle_errors(entry.data, device_type, link_modes)
            if not errors:
                self.hass.config_entries.async_update_entry(
                    entry,
                    data={**entry.data, CONF_DEVICE_TYPE: device_type, CONF_LINK_MODES: link_modes},
                )
                # It failed to set up, so no update listener runs: start it from here.
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="device_type",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(radio_fields(type_required=True)),
                user_input or {CONF_LINK_MODES: entry.data.get(CONF_LINK_MODES, [])},
            ),
            errors=errors,
            description_placeholders={
                "title": entry.title,
                "device": device,
                "modes": dongle_modes_text((user_input or {}).get(CONF_DEVICE_TYPE)),
            },
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow of one of the integration's fixable issues (issues.py)."""
    if issue_id.startswith(f"{ISSUE_DECRYPTION}_") and data:
        return DecryptionRepairFlow(dict(data))
    if issue_id.startswith(f"{ISSUE_UNKNOWN_DRIVER}_") and data:
        return UnknownDriverRepairFlow(dict(data))
    if issue_id.startswith(f"{ISSUE_REMOVED_FIELDS}_") and data:
        return RemovedFieldsRepairFlow(dict(data))
    if issue_id.startswith(f"{ISSUE_DUPLICATE_METER}_") and data:
        return DuplicateMeterRepairFlow(dict(data))
    if issue_id.startswith(f"{ISSUE_DEVICE_TYPE}_") and data:
        return DeviceTypeRepairFlow(dict(data))
    raise ValueError(f"unknown repair {issue_id}")

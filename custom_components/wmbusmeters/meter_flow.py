"""Add and change a receiver's meters in the UI (its config subentries)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .compat import vol
from .const import (
    CONF_COMMAND,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_KEY,
    CONF_METER_ID,
    CONF_NAME,
    CONF_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    SUBENTRY_METER,
)
from .drivers import DriverCatalog, async_get_catalog
from .forms import meter_form_values, meter_schema
from .key_files import async_key_for_meter, async_key_from_file
from .meters import meter_owner
from .validation import read_meter, read_meter_id, read_name
from .wmbus.config import MBUS
from .wmbus.kem import KeyFileMeter

#: The form field of the other meters a key file lists, and how many are offered at most.
CONF_ADD_METERS = "add_meters"
MAX_OFFERED = 200


class MeterSubentryFlow(ConfigSubentryFlow):
    """A meter: name, driver, id and optional AES key (typed, or from a utility's key file)."""

    _drivers: DriverCatalog | None = None
    _new: tuple[str, dict[str, Any], str]
    _others: list[KeyFileMeter]

    async def _async_drivers(self) -> DriverCatalog:
        """The receiver's binary's drivers: those its running wmbusmeters listed, if any."""
        if self._drivers is None:
            self._drivers = await async_get_catalog(self.hass, self._get_entry().data[CONF_COMMAND])
        return self._drivers

    @property
    def _wired(self) -> bool:
        """Whether the meter is on a wired M-Bus (polled: address and interval)."""
        return bool(self._get_entry().data.get(CONF_DEVICE_TYPE) == MBUS)

    async def _validate(self, user_input: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        """Normalised meter data, with errors keyed by field."""
        return read_meter(user_input, await self._async_drivers(), errors, wired=self._wired)

    @staticmethod
    def _name(user_input: dict[str, Any], errors: dict[str, str], default: str) -> str:
        return read_name(user_input, errors, default) or default

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a meter."""
        errors: dict[str, str] = {}
        placeholders = {"receiver": ""}
        if user_input is not None:
            user_input = dict(user_input)
            file_meters = await async_key_from_file(
                self.hass, user_input, read_meter_id(user_input, {}), errors
            )
            data = await self._validate(user_input, errors)
            if (meter_id := read_meter_id(user_input, errors)) is not None:
                owner = meter_owner(self.hass, meter_id)
                if owner is not None and owner.entry_id == self._get_entry().entry_id:
                    return self.async_abort(reason="already_configured")
                if owner is not None:
                    # Its entities' unique ids are the meter id's: one receiver holds it.
                    errors[CONF_METER_ID] = "meter_on_other_receiver"
                    placeholders["receiver"] = owner.title
            name = self._name(user_input, errors, user_input[CONF_METER_ID].strip().lower())
            if meter_id is not None and not errors:
                self._new = (name, {CONF_NAME: name, **data, CONF_METER_ID: meter_id}, meter_id)
                # The file lists more meters nobody set up: offered before this one is added.
                # (not on a wired bus: a polled meter names its driver, `auto` reads nothing)
                self._others = [
                    m
                    for m in ([] if self._wired else file_meters or [])
                    if m.meter_id != meter_id and meter_owner(self.hass, m.meter_id) is None
                ][:MAX_OFFERED]
                if self._others:
                    return await self.async_step_key_file_meters()
                return self._async_create_new()
        schema = meter_schema(await self._async_drivers(), wired=self._wired, new=True)
        suggested = user_input or (
            {CONF_POLL_INTERVAL: DEFAULT_POLL_INTERVAL} if self._wired else None
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _async_create_new(self) -> SubentryFlowResult:
        name, data, meter_id = self._new
        return self.async_create_entry(title=name, data=data, unique_id=meter_id)

    async def async_step_key_file_meters(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The key file lists other meters: add those chosen too (driver `auto`, the file's
        number of the meter as their name), with their keys."""
        if user_input is None:
            options = [
                SelectOptionDict(
                    value=m.meter_id, label=f"{m.meter_id}" + (f" ({m.number})" if m.number else "")
                )
                for m in self._others
            ]
            return self.async_show_form(
                step_id="key_file_meters",
                data_schema=vol.Schema(
                    {
                        vol.Optional(CONF_ADD_METERS, default=[]): SelectSelector(
                            SelectSelectorConfig(
                                options=options, multiple=True, mode=SelectSelectorMode.LIST
                            )
                        )
                    }
                ),
                description_placeholders={"count": str(len(options))},
            )
        entry = self._get_entry()
        chosen = set(user_input.get(CONF_ADD_METERS) or [])
        for other in self._others:
            if other.meter_id in chosen and meter_owner(self.hass, other.meter_id) is None:
                name = read_name({CONF_NAME: other.number or ""}, {}, "") or other.meter_id
                self.hass.config_entries.async_add_subentry(
                    entry,
                    ConfigSubentry(
                        data=MappingProxyType(
                            {
                                CONF_NAME: name,
                                CONF_DRIVER: "auto",
                                CONF_KEY: other.key,
                                CONF_METER_ID: other.meter_id,
                            }
                        ),
                        subentry_type=SUBENTRY_METER,
                        title=name,
                        unique_id=other.meter_id,
                    ),
                )
        return self._async_create_new()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a meter's name, driver or key (its id is what it is)."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input = dict(user_input)
            await async_key_for_meter(self.hass, user_input, subentry.data, errors)
            data = await self._validate(user_input, errors)
            name = self._name(user_input, errors, subentry.data[CONF_METER_ID])
            if not errors:
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=name,
                    data_updates={CONF_NAME: name, **data},
                )
        schema = meter_schema(await self._async_drivers(), wired=self._wired, new=False)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or meter_form_values(subentry.data)
            ),
            errors=errors,
            description_placeholders={CONF_METER_ID: subentry.data[CONF_METER_ID]},
        )

"""Add and change a receiver's meters in the UI (its config subentries)."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult

from .const import (
    CONF_COMMAND,
    CONF_DEVICE_TYPE,
    CONF_METER_ID,
    CONF_NAME,
    CONF_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from .drivers import DriverCatalog, async_get_catalog
from .forms import meter_form_values, meter_schema
from .meters import meter_owner
from .validation import read_meter, read_meter_id, read_name
from .wmbus.config import MBUS


class MeterSubentryFlow(ConfigSubentryFlow):
    """A meter: name, driver, id and optional AES key."""

    _drivers: DriverCatalog | None = None

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
                return self.async_create_entry(
                    title=name,
                    data={CONF_NAME: name, **data, CONF_METER_ID: meter_id},
                    unique_id=meter_id,
                )
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

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a meter's name, driver or key (its id is what it is)."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
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

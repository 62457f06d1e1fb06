"""The add-receiver steps that take over an existing wmbusmeters setup (the add-on's, a source
install's): where its files are, then what will be created and what not, why (addon_import.py
plans it; wmbus/setup_files.py reads the files)."""

from __future__ import annotations

import os
from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, ConfigSubentryData

from .addon_import import (
    TAKEOVERS,
    ImportPlan,
    allowed_root,
    async_read,
    async_release,
    async_summary,
    default_root,
    plan_import,
    release_problem,
    take_keys,
)
from .compat import vol
from .const import (
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_METER_ID,
    CONF_NAME,
    SUBENTRY_METER,
)
from .drivers import async_get_catalog
from .forms import CONF_SETUP_PATH, import_setup_schema, receiver_data
from .key_files import SECTION_KEY_FILE, async_read_key_file, key_file_section, keys_taken
from .validation import probe_command, validate_receiver
from .wmbus.bundled import default_command
from .wmbus.setup_files import SetupFileError


class ImportSetupSteps(ConfigFlow):
    """The config flow's steps `import_setup` and `import_summary`."""

    _import: ImportPlan
    _import_command: str

    async def async_step_import_setup(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An existing wmbusmeters setup to take over: where its files are (the add-on's data
        path, a source install's /etc) and the program to run it with."""
        errors: dict[str, str] = {}
        placeholders = {"file": "-"}
        if user_input is not None:
            path = str(user_input[CONF_SETUP_PATH]).strip().rstrip("/") or "/"
            command = str(user_input[CONF_COMMAND])
            real = await self.hass.async_add_executor_job(allowed_root, self.hass, path)
            if real is None:
                errors[CONF_SETUP_PATH] = "path_not_allowed"
            else:
                try:
                    setup = await async_read(self.hass, real)
                except SetupFileError as err:
                    errors[CONF_SETUP_PATH] = f"setup_{err.translation_key}"
                    placeholders["file"] = err.file
            if not errors:
                await probe_command(command, errors)
            if not errors:
                if setup.device is not None:
                    # A radio a receiver already has: said now, not after the summary.
                    self._async_abort_entries_match({CONF_DEVICE: setup.device.device})
                catalog = await async_get_catalog(self.hass, command)
                self._import = plan_import(self.hass, setup, catalog)
                self._import_command = command
                return await self.async_step_import_summary()
        suggested = user_input or {
            CONF_SETUP_PATH: await self.hass.async_add_executor_job(default_root, self.hass),
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
        }
        return self.async_show_form(
            step_id="import_setup",
            data_schema=self.add_suggested_values_to_schema(import_setup_schema(), suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_import_summary(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """What the import will create and what not, why; on confirm, the radio is checked as
        the radio form checks it (wmbusmeters looks for the dongle: the add-on must be
        stopped first) and the receiver is created with its meters."""
        plan = self._import
        errors: dict[str, str] = {}
        if user_input is not None and SECTION_KEY_FILE in user_input:
            # A utility's key file for meters the setup has without their key: their keys
            # are taken and the summary shown again (nothing is created with this submit).
            section = dict(user_input)
            from_file = await async_read_key_file(self.hass, section, errors)
            if from_file is not None and not take_keys(plan, from_file):
                errors[SECTION_KEY_FILE] = "key_file_no_import_meter"
            elif from_file is not None:
                keys_taken(self.hass, user_input)
            if from_file is not None or errors:
                return self._show_summary(errors, await async_summary(self.hass, plan))
        if user_input is not None and plan.setup.device is not None and plan.receiver_possible:
            device = plan.setup.device
            data = {
                CONF_COMMAND: self._import_command,
                CONF_DEVICE: device.device,
                CONF_DEVICE_TYPE: device.device_type,
                CONF_LINK_MODES: list(device.link_modes),
            }
            self._async_abort_entries_match({CONF_DEVICE: device.device})
            found = await validate_receiver(self, data)
            # (keyed by the radio form's fields, which this step has not: shown as the step's)
            errors = {"base": next(iter(found.values()))} if found else {}
            if not errors and (problem := release_problem(self.hass, plan)) is not None:
                errors["base"] = problem
            if not errors:
                await self.async_set_unique_id(device.device)
                self._abort_if_unique_id_configured()
                await async_release(self.hass, plan)
                # Registered when the receiver is first set up (just after this).
                self.hass.data.setdefault(TAKEOVERS, {})[device.device] = plan.takeovers
                return self.async_create_entry(
                    title=f"wmbusmeters {os.path.basename(device.device)}",
                    data=receiver_data(data),
                    subentries=[
                        ConfigSubentryData(
                            data={
                                CONF_NAME: meter.name,
                                CONF_DRIVER: meter.driver,
                                CONF_METER_ID: meter.meter_id,
                                CONF_KEY: meter.key,
                            },
                            subentry_type=SUBENTRY_METER,
                            title=meter.name,
                            unique_id=meter.meter_id,
                        )
                        for meter in plan.meters
                    ],
                )
        elif user_input is not None:
            errors["base"] = "setup_no_radio"
        return self._show_summary(errors, await async_summary(self.hass, plan))

    def _show_summary(self, errors: dict[str, str], summary: dict[str, str]) -> ConfigFlowResult:
        # (the key file section starts empty each time: an upload is deleted once read)
        return self.async_show_form(
            step_id="import_summary",
            data_schema=vol.Schema(key_file_section()),
            errors=errors,
            description_placeholders=summary,
        )

"""Set up a receiver (config entry) in the UI, and its options; its meters: meter_flow.py."""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    ConfigEntry,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.helpers.service_info.usb import UsbServiceInfo

from .const import (
    CONF_BAUD_RATE,
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_IMPORT_HISTORY,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_LISTEN_PORT,
    CONF_LISTEN_PROTOCOL,
    CONF_METER_ID,
    CONF_MQTT_TOPIC,
    CONF_NAME,
    CONF_SILENCE_TIMEOUT,
    DEFAULT_BAUD_RATE,
    DEFAULT_IMPORT_HISTORY,
    DEFAULT_SILENCE_TIMEOUT,
    DOMAIN,
    SUBENTRY_METER,
)
from .forms import (
    RTL_KEYS,
    discovered_meter_schema,
    dongle_modes_text,
    mbus_schema,
    network_form_values,
    network_schema,
    network_suggested,
    network_unique_id,
    options_schema,
    receiver_data,
    receiver_form_values,
    receiver_schema,
    serial_devices,
    usb_confirm_schema,
    usb_suggested,
)
from .import_flow import ImportSetupSteps
from .meter_flow import MeterSubentryFlow
from .meters import meter_owner, receiver_entries
from .mqtt_flow import MqttSteps
from .validation import (
    program_placeholders,
    read_key,
    read_name,
    read_silence_timeout,
    same_radio,
    stable_port,
    validate_mbus,
    validate_network,
    validate_receiver,
)
from .wmbus.bundled import default_command
from .wmbus.config import MBUS, STDIN_DEVICE
from .wmbus.usb_ids import dongle_type_for


class WmbusConfigFlow(ImportSetupSteps, MqttSteps, domain=DOMAIN):
    """A receiver: the wmbusmeters command, the radio device, the link modes."""

    VERSION = 1
    #: 1.2: entry.data has device_type (async_migrate_entry in __init__.py).
    MINOR_VERSION = 2
    _discovered: dict[str, Any]

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> WmbusOptionsFlow:
        """The silence timeout."""
        return WmbusOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Meters are subentries of their receiver."""
        return {SUBENTRY_METER: MeterSubentryFlow}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which kind of receiver: a radio here, radios elsewhere sending to a port or through
        MQTT, or a wired M-Bus; or a whole setup taken over."""
        return self.async_show_menu(
            step_id="user", menu_options=["radio", "network", "mqtt_raw", "mbus", "import_setup"]
        )

    async def async_step_radio(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the command, device and link modes, and test them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._async_abort_entries_match({CONF_DEVICE: user_input[CONF_DEVICE]})
            errors = await validate_receiver(self, user_input)
            if not errors:
                await self.async_set_unique_id(user_input[CONF_DEVICE])
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"wmbusmeters {os.path.basename(user_input[CONF_DEVICE])}",
                    data=receiver_data(user_input),
                )
        suggested = user_input or {
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
            CONF_DEVICE: "auto",
            CONF_LINK_MODES: ["c1", "t1"],
        }
        devices = await self.hass.async_add_executor_job(serial_devices)
        return self.async_show_form(
            step_id="radio",
            data_schema=self.add_suggested_values_to_schema(receiver_schema(devices), suggested),
            errors=errors,
            description_placeholders={
                "modes": dongle_modes_text((user_input or {}).get(CONF_DEVICE_TYPE)),
                **await program_placeholders(suggested[CONF_COMMAND]),
            },
        )

    async def async_step_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A port on this machine that remote receivers send their telegrams to."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await validate_network(self, user_input)
            if not errors:
                await self.async_set_unique_id(network_unique_id(data))
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"wmbusmeters {data[CONF_LISTEN_PROTOCOL]} {data[CONF_LISTEN_PORT]}",
                    data=data,
                )
        suggested = user_input or network_suggested(
            await self.hass.async_add_executor_job(default_command)
        )
        return self.async_show_form(
            step_id="network",
            data_schema=self.add_suggested_values_to_schema(network_schema(), suggested),
            errors=errors,
            description_placeholders=await program_placeholders(suggested[CONF_COMMAND]),
        )

    async def async_step_mbus(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A wired M-Bus master on a serial port, and the bus' speed."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._async_abort_entries_match({CONF_DEVICE: user_input[CONF_DEVICE]})
            data, errors = await validate_mbus(self, user_input)
            if not errors:
                await self.async_set_unique_id(user_input[CONF_DEVICE])
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"wmbusmeters M-Bus {os.path.basename(user_input[CONF_DEVICE])}",
                    data=data,
                )
        devices = await self.hass.async_add_executor_job(serial_devices)
        suggested = user_input or {
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
            CONF_BAUD_RATE: str(DEFAULT_BAUD_RATE),
        }
        return self.async_show_form(
            step_id="mbus",
            data_schema=self.add_suggested_values_to_schema(mbus_schema(devices), suggested),
            errors=errors,
            description_placeholders=await program_placeholders(suggested[CONF_COMMAND]),
        )

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """A dongle was plugged in (the manifest's `usb` matchers): offer it, port and type
        filled in, unless a receiver already uses that port."""
        device_type = dongle_type_for(
            discovery_info.vid, discovery_info.pid, discovery_info.description
        )
        if device_type is None:
            return self.async_abort(reason="not_a_dongle")
        configured = [entry.data[CONF_DEVICE] for entry in receiver_entries(self.hass)]
        port, used = await self.hass.async_add_executor_job(
            stable_port, discovery_info.device, configured
        )
        if used:
            return self.async_abort(reason="already_configured")
        await self.async_set_unique_id(port)
        self._abort_if_unique_id_configured()
        self._discovered = {CONF_DEVICE: port, CONF_DEVICE_TYPE: device_type}
        self.context["title_placeholders"] = {"name": f"{device_type} ({os.path.basename(port)})"}
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm the dongle's type and link modes; wmbusmeters looks for it before saving."""
        port = self._discovered[CONF_DEVICE]
        device_type = self._discovered[CONF_DEVICE_TYPE]
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**user_input, CONF_DEVICE: port}
            errors = await validate_receiver(self, data)
            if not errors:
                return self.async_create_entry(
                    title=f"wmbusmeters {os.path.basename(port)}", data=receiver_data(data)
                )
            device_type = user_input.get(CONF_DEVICE_TYPE, device_type)
        suggested = user_input or usb_suggested(
            await self.hass.async_add_executor_job(default_command), device_type
        )
        return self.async_show_form(
            step_id="usb_confirm",
            data_schema=self.add_suggested_values_to_schema(usb_confirm_schema(), suggested),
            errors=errors,
            description_placeholders={
                "port": port,
                "modes": dongle_modes_text(device_type),
                **await program_placeholders(suggested[CONF_COMMAND]),
            },
        )

    async def async_step_integration_discovery(
        self, discovery_info: dict[str, Any]
    ) -> ConfigFlowResult:
        """A meter a receiver hears but nobody configured (see discovery.py).

        A discovery flow, not a subentry flow: HA lists it under Discovered, and its Ignore
        button stores the unique id, so a dismissed meter is never offered again.
        """
        meter_id: str = discovery_info["meter_id"]
        await self.async_set_unique_id(f"meter_{meter_id}")
        self._abort_if_unique_id_configured()
        entry = self.hass.config_entries.async_get_entry(discovery_info["entry_id"])
        if entry is None:
            return self.async_abort(reason="receiver_removed")
        if meter_owner(self.hass, meter_id) is not None:
            return self.async_abort(reason="meter_configured")
        self._discovered = discovery_info
        kind = discovery_info["media"] or discovery_info["driver"]
        self.context["title_placeholders"] = {"name": f"{meter_id} ({kind})"}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Name it (and give its key, if it is encrypted); it becomes a meter of the receiver."""
        info = self._discovered
        entry = self.hass.config_entries.async_get_entry(info["entry_id"])
        if entry is None:
            return self.async_abort(reason="receiver_removed")
        errors: dict[str, str] = {}
        if meter_owner(self.hass, info["meter_id"]) is not None:
            return self.async_abort(reason="meter_configured")  # added meanwhile
        if user_input is not None:
            key = read_key(user_input, errors)
            if info["encrypted"] and key == "":
                errors[CONF_KEY] = "key_required"
            name = read_name(user_input, errors, info["meter_id"])
            if key is not None and name is not None and not errors:
                self.hass.config_entries.async_add_subentry(
                    entry,
                    ConfigSubentry(
                        data=MappingProxyType(
                            {
                                CONF_NAME: name,
                                CONF_DRIVER: info["driver"],
                                CONF_METER_ID: info["meter_id"],
                                CONF_KEY: key,
                            }
                        ),
                        subentry_type=SUBENTRY_METER,
                        title=name,
                        unique_id=info["meter_id"],
                    ),
                )
                return self.async_abort(reason="meter_added")
        return self.async_show_form(
            step_id="discovery_confirm",
            data_schema=self.add_suggested_values_to_schema(
                discovered_meter_schema(), user_input or {CONF_NAME: f"Meter {info['meter_id']}"}
            ),
            errors=errors,
            description_placeholders={
                "meter_id": info["meter_id"],
                "driver": info["driver"],
                "media": info["media"] or "?",
                "manufacturer": info["manufacturer"] or "?",
                "encrypted": "yes" if info["encrypted"] else "no",
                "receiver": entry.title,
            },
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change command, device or link modes; wmbusmeters restarts with them."""
        entry = self._get_reconfigure_entry()
        if CONF_MQTT_TOPIC in entry.data:
            return await self.async_step_reconfigure_mqtt_raw(user_input)
        if entry.data[CONF_DEVICE] == STDIN_DEVICE:
            return await self.async_step_reconfigure_network(user_input)
        if entry.data.get(CONF_DEVICE_TYPE) == MBUS:
            return await self.async_step_reconfigure_mbus(user_input)
        errors: dict[str, str] = {}
        if user_input is not None:
            # Its own wmbusmeters holds the port it has: only a new port is looked at.
            moved = user_input[CONF_DEVICE] != entry.data[CONF_DEVICE]
            errors = await validate_receiver(self, user_input, detect=moved)
            if not errors:
                await self._async_release_ignored(user_input[CONF_DEVICE])
                # The update listener restarts wmbusmeters with it (once; a reload only for
                # another command): no reload from here, HA 2026.12 refuses it. The whole
                # radio is replaced: the RTL-SDR tuning of a stick left behind goes with it.
                return self.async_update_and_abort(
                    entry,
                    unique_id=user_input[CONF_DEVICE],
                    data={
                        **{k: v for k, v in entry.data.items() if k not in RTL_KEYS},
                        **receiver_data(user_input),
                    },
                )
        devices = await self.hass.async_add_executor_job(serial_devices)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                receiver_schema(devices), user_input or receiver_form_values(entry.data)
            ),
            errors=errors,
            description_placeholders={
                "modes": dongle_modes_text((user_input or entry.data).get(CONF_DEVICE_TYPE))
            },
        )

    async def _async_release_ignored(self, unique_id: str) -> None:
        """A reconfigure onto a radio or port whose discovery was ignored: the ignored entry
        goes (as HA's own flows drop it when that unique id is set up), so no two entries of
        the domain share a unique id. Another receiver's was refused by the validation."""
        for other in self.hass.config_entries.async_entries(DOMAIN):
            if other.source != SOURCE_IGNORE or other.unique_id is None:
                continue
            # The ignored dongle's id is its by-id name; the form may name the port otherwise.
            if await self.hass.async_add_executor_job(same_radio, unique_id, other.unique_id):
                await self.hass.config_entries.async_remove(other.entry_id)

    async def async_step_reconfigure_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Another port, protocol, format or allow-list: the listener restarts; wmbusmeters
        only for another format or command."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await validate_network(self, user_input)
            if not errors:
                await self._async_release_ignored(network_unique_id(data))
                return self.async_update_and_abort(
                    entry, unique_id=network_unique_id(data), data_updates=data
                )
        return self.async_show_form(
            step_id="reconfigure_network",
            data_schema=self.add_suggested_values_to_schema(
                network_schema(), user_input or network_form_values(entry.data)
            ),
            errors=errors,
            description_placeholders=await program_placeholders(entry.data[CONF_COMMAND]),
        )

    async def async_step_reconfigure_mbus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Another port or speed for the M-Bus master."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await validate_mbus(self, user_input)
            if not errors:
                await self._async_release_ignored(data[CONF_DEVICE])
                return self.async_update_and_abort(
                    entry, unique_id=data[CONF_DEVICE], data_updates=data
                )
        devices = await self.hass.async_add_executor_job(serial_devices)
        current = {**entry.data, CONF_BAUD_RATE: str(entry.data.get(CONF_BAUD_RATE))}
        return self.async_show_form(
            step_id="reconfigure_mbus",
            data_schema=self.add_suggested_values_to_schema(
                mbus_schema(devices), user_input or current
            ),
            errors=errors,
            description_placeholders=await program_placeholders(entry.data[CONF_COMMAND]),
        )


class WmbusOptionsFlow(OptionsFlow):
    """Receiver options."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The silence timeout (minutes without any telegram before a restart), and whether
        meters' dated registers go into their statistics."""
        errors: dict[str, str] = {}
        if user_input is not None:
            minutes = read_silence_timeout(user_input, errors)
            if minutes is not None:
                return self.async_create_entry(
                    data={
                        CONF_SILENCE_TIMEOUT: minutes,
                        CONF_IMPORT_HISTORY: bool(
                            user_input.get(CONF_IMPORT_HISTORY, DEFAULT_IMPORT_HISTORY)
                        ),
                    }
                )
        options = self.config_entry.options
        current = {
            CONF_SILENCE_TIMEOUT: options.get(CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT),
            CONF_IMPORT_HISTORY: options.get(CONF_IMPORT_HISTORY, DEFAULT_IMPORT_HISTORY),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                options_schema(), user_input or current
            ),
            errors=errors,
        )

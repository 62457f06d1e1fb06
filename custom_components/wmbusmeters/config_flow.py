"""Set up a receiver (config entry) and its meters (config subentries) in the UI."""

from __future__ import annotations

from collections.abc import Mapping
import glob
import os
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
from homeassistant.helpers.service_info.usb import UsbServiceInfo

from .compat import vol
from .const import (
    CONF_BAUD_RATE,
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_LISTEN_PORT,
    CONF_LISTEN_PROTOCOL,
    CONF_METER_ID,
    CONF_NAME,
    CONF_POLL_INTERVAL,
    CONF_PRIMARY_ADDRESS,
    CONF_RTL_FREQUENCY,
    CONF_RTL_PPM,
    CONF_RTL_SERIAL,
    CONF_SILENCE_TIMEOUT,
    DEFAULT_BAUD_RATE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SILENCE_TIMEOUT,
    DOMAIN,
    SECTION_RTL,
    SUBENTRY_METER,
)
from .driver_input import DriverList, driver_field, read_driver
from .key_input import key_field, read_key
from .mbus_input import baud_rate_field, read_baud_rate, read_wired_meter, wired_meter_fields
from .meters import meter_owner, receiver_entries
from .name_input import read_name
from .network_input import (
    network_form_values,
    network_schema,
    network_suggested,
    network_unique_id,
    port_errors,
    read_network,
)
from .number_input import number_box
from .radio_input import detection_errors, dongle_modes_text, link_modes_needed, radio_fields
from .wmbus import (
    RTL_DEVICES,
    ProbeError,
    WmbusConfigError,
    needs_device_type,
    normalize_meter_id,
    probe_version,
)
from .wmbus.bundled import default_command
from .wmbus.config import (
    DONGLE_MODES,
    MBUS,
    RTL_FREQUENCY_RANGE_MHZ,
    RTL_PPM_RANGE,
    STDIN_DEVICE,
    ReceiverConfig,
    RtlOptions,
    check_dongle_link_modes,
    device_kind_problem,
    validate_device,
)
from .wmbus.probe import check_command
from .wmbus.usb_ids import dongle_type_for

#: The form is shown at once: a program slower than this to say its version shows "-".
PROGRAM_PROBE_TIMEOUT = 3.0
#: A day: a meter that is silent longer is lost, not waiting for a restart.
MAX_SILENCE_MINUTES = 1440
#: Stored only with an RTL-SDR stick (CONTRACT.md).
_RTL_KEYS = (CONF_RTL_SERIAL, CONF_RTL_PPM, CONF_RTL_FREQUENCY)
_SERIAL_GLOBS = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*")


def _serial_devices() -> list[str]:
    """Serial devices present, stable /dev/serial/by-id names first (blocking)."""
    found: list[str] = []
    for pattern in _SERIAL_GLOBS:
        found.extend(sorted(glob.glob(pattern)))
    return found


def _check_receiver(command: str, device: str, others: list[str]) -> dict[str, str]:
    """Form errors for a command and a device that do not exist, are no radio, or are the
    radio of another receiver under any of its names (blocking: stat)."""
    errors: dict[str, str] = {}
    try:
        check_command(command)
    except ProbeError as err:
        errors[CONF_COMMAND] = err.translation_key
    try:
        if validate_device(device) == STDIN_DEVICE:
            raise WmbusConfigError("stdin is the network receiver's, not a radio")  # noqa: TRY301
    except WmbusConfigError:
        errors[CONF_DEVICE] = "invalid_device"
    else:
        if problem := device_kind_problem(device):
            errors[CONF_DEVICE] = problem
        elif any(_same_radio(device, other) for other in others):
            # Two wmbusmeters on one radio steal each other's bytes.
            errors[CONF_DEVICE] = "device_in_use"
    return errors


def _same_radio(device: str, other: str) -> bool:
    """Whether two receivers' devices are one radio: the same keyword (`auto`, `rtlwmbus`),
    or one port under two names (blocking: realpath)."""
    if device == other or (device in RTL_DEVICES and other in RTL_DEVICES):
        return True  # rtlwmbus and rtl433 open the same stick
    return (
        device.startswith("/")
        and other.startswith("/")
        and os.path.realpath(other) == os.path.realpath(device)
    )


def _rtl_options(data: Mapping[str, Any]) -> RtlOptions:
    """The RTL-SDR tuning of a form (its collapsed section) or of stored entry data."""
    section_data: Mapping[str, Any] = data.get(SECTION_RTL, data)
    ppm = section_data.get(CONF_RTL_PPM) or 0
    frequency = section_data.get(CONF_RTL_FREQUENCY)
    return RtlOptions(
        serial=str(section_data.get(CONF_RTL_SERIAL) or "").strip(),
        # A number box gives floats; 17.5 ppm is refused rather than rounded.
        ppm=int(ppm) if float(ppm).is_integer() else ppm,
        frequency_mhz=float(frequency) if frequency not in (None, "") else None,
    )


async def _probe_command(command: str, errors: dict[str, str]) -> None:
    """The command answers --version (unless it already has an error)."""
    if CONF_COMMAND not in errors:
        try:
            await probe_version(command)
        except ProbeError as err:
            errors[CONF_COMMAND] = err.translation_key


async def _command_and_device_errors(flow: ConfigFlow, command: str, device: str) -> dict[str, str]:
    """A command that runs and a serial device that exists and is no other receiver's."""
    this = flow.context.get("entry_id")  # a reconfigure: its own radio is no conflict
    others = [entry.data[CONF_DEVICE] for entry in receiver_entries(flow.hass, exclude=this)]
    errors = await flow.hass.async_add_executor_job(_check_receiver, command, device, others)
    await _probe_command(command, errors)
    return errors


async def _validate_receiver(
    flow: ConfigFlow, data: Mapping[str, Any], *, detect: bool = True
) -> dict[str, str]:
    """Everything a receiver needs before it is saved; errors keyed by field.

    With `detect`, a dongle is looked for by wmbusmeters itself on its port (with the link
    modes chosen): a port with nothing or something else on it is refused here, not found
    broken after saving. Not while this receiver's own wmbusmeters holds the port.
    """
    command, device = data[CONF_COMMAND], data[CONF_DEVICE]
    device_type = data.get(CONF_DEVICE_TYPE, "")
    errors = await _command_and_device_errors(flow, command, device)
    if CONF_DEVICE not in errors and needs_device_type(device) and not device_type:
        # A bare tty never starts: "You have to specify the expected device type".
        errors[CONF_DEVICE_TYPE] = "device_type_required"
    if (
        CONF_DEVICE not in errors
        and not data.get(CONF_LINK_MODES)
        and link_modes_needed(device, device_type)
    ):
        errors[CONF_LINK_MODES] = "link_modes_required"
    if errors:
        return errors
    device_type = _receiver_data_type(data)  # a type given with `auto` is not used
    try:
        check_dongle_link_modes(device_type, data.get(CONF_LINK_MODES, ()))
        config = ReceiverConfig(
            device=device,
            device_type=device_type,
            link_modes=tuple(data.get(CONF_LINK_MODES, ())),
            rtl=_rtl_options(data) if device in RTL_DEVICES else RtlOptions(),
        )
    except WmbusConfigError as err:
        field = CONF_LINK_MODES if err.translation_key.startswith("link_modes") else "base"
        return {field: err.translation_key}
    return await detection_errors(command, config) if detect else {}


async def _program(command: str) -> dict[str, str]:
    """Which wmbusmeters the form proposes and the version it answers ("-" when none)."""
    if not command:
        return {"program": "-", "version": "-"}
    try:
        version = await probe_version(command, timeout=PROGRAM_PROBE_TIMEOUT)
    except ProbeError:
        version = "-"
    return {"program": command, "version": version}


def _receiver_data_type(user_input: Mapping[str, Any]) -> str:
    """The dongle type that is stored: only with a serial path."""
    if not needs_device_type(user_input[CONF_DEVICE]):
        return ""
    return str(user_input.get(CONF_DEVICE_TYPE, ""))


def _receiver_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored of a validated receiver form: a type only with a serial path, the
    RTL-SDR tuning only with an RTL-SDR stick."""
    device = user_input[CONF_DEVICE]
    data = {
        CONF_COMMAND: user_input[CONF_COMMAND],
        CONF_DEVICE: device,
        CONF_DEVICE_TYPE: _receiver_data_type(user_input),
        CONF_LINK_MODES: list(user_input.get(CONF_LINK_MODES, [])),
    }
    if device in RTL_DEVICES:
        rtl = _rtl_options(user_input)
        data |= {
            CONF_RTL_SERIAL: rtl.serial,
            CONF_RTL_PPM: rtl.ppm,
            CONF_RTL_FREQUENCY: rtl.frequency_mhz,
        }
    return data


def _form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored receiver data as the form shows it (the RTL-SDR tuning in its section)."""
    values = {k: v for k, v in data.items() if v not in ("", None) and k not in _RTL_KEYS}
    values[SECTION_RTL] = {k: data[k] for k in _RTL_KEYS if data.get(k) not in ("", None, 0)}
    return values


def _receiver_schema(devices: list[str]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_COMMAND): TextSelector(),
            vol.Required(CONF_DEVICE): SelectSelector(
                SelectSelectorConfig(
                    options=["auto", *devices, *RTL_DEVICES],
                    custom_value=True,
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key=CONF_DEVICE,
                )
            ),
            **radio_fields(),
            vol.Optional(SECTION_RTL, default={}): section(
                vol.Schema(
                    {
                        vol.Optional(CONF_RTL_SERIAL): TextSelector(),
                        vol.Optional(CONF_RTL_PPM): number_box(RTL_PPM_RANGE, 1, "ppm"),
                        vol.Optional(CONF_RTL_FREQUENCY): number_box(
                            RTL_FREQUENCY_RANGE_MHZ, 0.001, "MHz"
                        ),
                    }
                ),
                {"collapsed": True},
            ),
        }
    )


def _mbus_schema(devices: list[str]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_COMMAND): TextSelector(),
            vol.Required(CONF_DEVICE): SelectSelector(
                SelectSelectorConfig(
                    options=devices, custom_value=True, mode=SelectSelectorMode.DROPDOWN
                )
            ),
            **baud_rate_field(),
        }
    )


async def _validate_network(
    flow: ConfigFlow, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entry data of a network form, and the errors keyed by field (data only without)."""
    errors: dict[str, str] = {}
    data = read_network(user_input, errors)
    await _probe_command(user_input[CONF_COMMAND], errors)
    if data is None or errors:
        return {}, errors
    this = flow.context.get("entry_id")
    for entry in receiver_entries(flow.hass, exclude=this):
        if entry.data[CONF_DEVICE] != STDIN_DEVICE:
            continue
        if network_unique_id(entry.data) == network_unique_id(data):
            return {}, {CONF_LISTEN_PORT: "port_in_use"}
    own = flow.hass.config_entries.async_get_entry(this) if this else None
    if own is not None and own.state is ConfigEntryState.LOADED:
        listener = own.runtime_data.listener
        if listener is not None and network_unique_id(own.data) == network_unique_id(data):
            return data, {}  # its own listener holds the port: nothing to check
    if errors := await port_errors(data):
        return {}, errors
    return data, {}


async def _validate_mbus(
    flow: ConfigFlow, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entry data of an M-Bus form, and the errors keyed by field (data only without)."""
    command, device = user_input[CONF_COMMAND], user_input[CONF_DEVICE]
    errors = await _command_and_device_errors(flow, command, device)
    if CONF_DEVICE not in errors and not needs_device_type(device):
        errors[CONF_DEVICE] = "not_a_serial_port"  # auto, an RTL-SDR or a simulation file
    rate = read_baud_rate(user_input, errors)
    if errors or rate is None:
        return {}, errors
    return {
        CONF_COMMAND: command,
        CONF_DEVICE: device,
        CONF_DEVICE_TYPE: MBUS,
        CONF_LINK_MODES: [],
        CONF_BAUD_RATE: rate,
    }, {}


def _stable_port(device: str, configured: list[str]) -> tuple[str, bool]:
    """The /dev/serial/by-id name of a discovered port (it survives replugging), and whether
    a receiver already uses that port under any of its names (blocking: readlink)."""
    real = os.path.realpath(device)
    stable = device
    if not device.startswith("/dev/serial/by-id/"):
        stable = next((p for p in _serial_devices() if os.path.realpath(p) == real), device)
    used = any(os.path.realpath(path) == real for path in configured if path.startswith("/"))
    return stable, used


class WmbusConfigFlow(ConfigFlow, domain=DOMAIN):
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
        """Which kind of receiver: a radio here, a radio elsewhere on the network, or a wired
        M-Bus."""
        return self.async_show_menu(step_id="user", menu_options=["radio", "network", "mbus"])

    async def async_step_radio(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the command, device and link modes, and test them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._async_abort_entries_match({CONF_DEVICE: user_input[CONF_DEVICE]})
            errors = await _validate_receiver(self, user_input)
            if not errors:
                await self.async_set_unique_id(user_input[CONF_DEVICE])
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"wmbusmeters {os.path.basename(user_input[CONF_DEVICE])}",
                    data=_receiver_data(user_input),
                )
        suggested = user_input or {
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
            CONF_DEVICE: "auto",
            CONF_LINK_MODES: ["c1", "t1"],
        }
        devices = await self.hass.async_add_executor_job(_serial_devices)
        return self.async_show_form(
            step_id="radio",
            data_schema=self.add_suggested_values_to_schema(_receiver_schema(devices), suggested),
            errors=errors,
            description_placeholders={
                "modes": dongle_modes_text((user_input or {}).get(CONF_DEVICE_TYPE)),
                **await _program(suggested[CONF_COMMAND]),
            },
        )

    async def async_step_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A port on this machine that remote receivers send their telegrams to."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await _validate_network(self, user_input)
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
            description_placeholders=await _program(suggested[CONF_COMMAND]),
        )

    async def async_step_mbus(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A wired M-Bus master on a serial port, and the bus' speed."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._async_abort_entries_match({CONF_DEVICE: user_input[CONF_DEVICE]})
            data, errors = await _validate_mbus(self, user_input)
            if not errors:
                await self.async_set_unique_id(user_input[CONF_DEVICE])
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"wmbusmeters M-Bus {os.path.basename(user_input[CONF_DEVICE])}",
                    data=data,
                )
        devices = await self.hass.async_add_executor_job(_serial_devices)
        suggested = user_input or {
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
            CONF_BAUD_RATE: str(DEFAULT_BAUD_RATE),
        }
        return self.async_show_form(
            step_id="mbus",
            data_schema=self.add_suggested_values_to_schema(_mbus_schema(devices), suggested),
            errors=errors,
            description_placeholders=await _program(suggested[CONF_COMMAND]),
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
            _stable_port, discovery_info.device, configured
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
            errors = await _validate_receiver(self, data)
            if not errors:
                return self.async_create_entry(
                    title=f"wmbusmeters {os.path.basename(port)}", data=_receiver_data(data)
                )
            device_type = user_input.get(CONF_DEVICE_TYPE, device_type)
        # rawtty (offered by the type's dropdown) has no link modes of its own.
        rule = DONGLE_MODES.get(device_type)
        both = next(iter(rule.pairs), None) if rule is not None else None
        schema = vol.Schema(
            {
                vol.Required(CONF_COMMAND): TextSelector(),
                **radio_fields(type_required=True),
            }
        )
        suggested = user_input or {
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
            CONF_DEVICE_TYPE: device_type,
            CONF_LINK_MODES: sorted(both) if both else rule.modes[-1:] if rule else [],
        }
        return self.async_show_form(
            step_id="usb_confirm",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={
                "port": port,
                "modes": dongle_modes_text(device_type),
                **await _program(suggested[CONF_COMMAND]),
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
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): TextSelector(),
                **key_field(),
            }
        )
        return self.async_show_form(
            step_id="discovery_confirm",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or {CONF_NAME: f"Meter {info['meter_id']}"}
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
        if entry.data[CONF_DEVICE] == STDIN_DEVICE:
            return await self.async_step_reconfigure_network(user_input)
        if entry.data.get(CONF_DEVICE_TYPE) == MBUS:
            return await self.async_step_reconfigure_mbus(user_input)
        errors: dict[str, str] = {}
        if user_input is not None:
            # Its own wmbusmeters holds the port it has: only a new port is looked at.
            moved = user_input[CONF_DEVICE] != entry.data[CONF_DEVICE]
            errors = await _validate_receiver(self, user_input, detect=moved)
            if not errors:
                await self._async_release_ignored(user_input[CONF_DEVICE])
                # The update listener restarts wmbusmeters with it (once; a reload only for
                # another command): no reload from here, HA 2026.12 refuses it. The whole
                # radio is replaced: the RTL-SDR tuning of a stick left behind goes with it.
                return self.async_update_and_abort(
                    entry,
                    unique_id=user_input[CONF_DEVICE],
                    data={
                        **{k: v for k, v in entry.data.items() if k not in _RTL_KEYS},
                        **_receiver_data(user_input),
                    },
                )
        devices = await self.hass.async_add_executor_job(_serial_devices)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _receiver_schema(devices), user_input or _form_values(entry.data)
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
            if await self.hass.async_add_executor_job(_same_radio, unique_id, other.unique_id):
                await self.hass.config_entries.async_remove(other.entry_id)

    async def async_step_reconfigure_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Another port, protocol, format or allow-list: the listener restarts; wmbusmeters
        only for another format or command."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await _validate_network(self, user_input)
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
            description_placeholders=await _program(entry.data[CONF_COMMAND]),
        )

    async def async_step_reconfigure_mbus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Another port or speed for the M-Bus master."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await _validate_mbus(self, user_input)
            if not errors:
                await self._async_release_ignored(data[CONF_DEVICE])
                return self.async_update_and_abort(
                    entry, unique_id=data[CONF_DEVICE], data_updates=data
                )
        devices = await self.hass.async_add_executor_job(_serial_devices)
        current = {**entry.data, CONF_BAUD_RATE: str(entry.data.get(CONF_BAUD_RATE))}
        return self.async_show_form(
            step_id="reconfigure_mbus",
            data_schema=self.add_suggested_values_to_schema(
                _mbus_schema(devices), user_input or current
            ),
            errors=errors,
            description_placeholders=await _program(entry.data[CONF_COMMAND]),
        )


class WmbusOptionsFlow(OptionsFlow):
    """Receiver options."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The silence timeout (minutes without any telegram before a restart)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            minutes = float(user_input[CONF_SILENCE_TIMEOUT])
            # The watchdog counts whole minutes; 0.5 was stored as 0 (off) and 1.9 as 1.
            if minutes.is_integer() and 0 <= minutes <= MAX_SILENCE_MINUTES:
                return self.async_create_entry(data={CONF_SILENCE_TIMEOUT: int(minutes)})
            errors[CONF_SILENCE_TIMEOUT] = "whole_minutes"
        schema = vol.Schema(
            {vol.Required(CONF_SILENCE_TIMEOUT): number_box((0, MAX_SILENCE_MINUTES), 1, "min")}
        )
        current = {
            CONF_SILENCE_TIMEOUT: self.config_entry.options.get(
                CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT
            )
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or current),
            errors=errors,
        )


class MeterSubentryFlow(ConfigSubentryFlow):
    """A meter: name, driver, id and optional AES key."""

    _drivers: DriverList | None = None

    async def _async_drivers(self) -> DriverList:
        if self._drivers is None:
            self._drivers = await DriverList.async_load(self._get_entry().data[CONF_COMMAND])
        return self._drivers

    @property
    def _wired(self) -> bool:
        """Whether the meter is on a wired M-Bus (polled: address and interval)."""
        return bool(self._get_entry().data.get(CONF_DEVICE_TYPE) == MBUS)

    async def _validate(self, user_input: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
        """Normalised meter data, with errors keyed by field."""
        data: dict[str, Any] = {}
        if (driver := read_driver(user_input, await self._async_drivers(), errors)) is not None:
            data[CONF_DRIVER] = driver
            if self._wired and driver == "auto":
                errors[CONF_DRIVER] = "driver_required"  # a poll names its driver
        if (key := read_key(user_input, errors)) is not None:
            data[CONF_KEY] = key
        if self._wired:
            data |= read_wired_meter(user_input, errors)
        return data

    def _wired_fields(self) -> dict[Any, Any]:
        return wired_meter_fields() if self._wired else {}

    @staticmethod
    def _name(user_input: dict[str, Any], errors: dict[str, str], default: str) -> str:
        return read_name(user_input, errors, default) or default

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a meter."""
        errors: dict[str, str] = {}
        placeholders = {"receiver": ""}
        if user_input is not None:
            data = await self._validate(user_input, errors)
            try:
                meter_id = normalize_meter_id(user_input[CONF_METER_ID])
            except WmbusConfigError:
                errors[CONF_METER_ID] = "invalid_meter_id"
            else:
                owner = meter_owner(self.hass, meter_id)
                if owner is not None and owner.entry_id == self._get_entry().entry_id:
                    return self.async_abort(reason="already_configured")
                if owner is not None:
                    # Its entities' unique ids are the meter id's: one receiver holds it.
                    errors[CONF_METER_ID] = "meter_on_other_receiver"
                    placeholders["receiver"] = owner.title
            name = self._name(user_input, errors, user_input[CONF_METER_ID].strip().lower())
            if not errors:
                return self.async_create_entry(
                    title=name,
                    data={CONF_NAME: name, **data, CONF_METER_ID: meter_id},
                    unique_id=meter_id,
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): TextSelector(),
                vol.Required(CONF_METER_ID): TextSelector(),
                **driver_field(
                    await self._async_drivers(), default=None if self._wired else "auto"
                ),
                **key_field(),
                **self._wired_fields(),
            }
        )
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
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): TextSelector(),
                **driver_field(await self._async_drivers()),
                **key_field(),
                **self._wired_fields(),
            }
        )
        # The key is prefilled (masked): an empty field means "no key", not "unchanged".
        suggested = user_input or {
            CONF_NAME: subentry.data[CONF_NAME],
            CONF_DRIVER: subentry.data[CONF_DRIVER],
            CONF_KEY: subentry.data.get(CONF_KEY, ""),
            CONF_POLL_INTERVAL: subentry.data.get(CONF_POLL_INTERVAL),
            CONF_PRIMARY_ADDRESS: subentry.data.get(CONF_PRIMARY_ADDRESS),
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={CONF_METER_ID: subentry.data[CONF_METER_ID]},
        )

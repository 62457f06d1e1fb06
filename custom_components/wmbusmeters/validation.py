"""Whether a form's values are acceptable: each check gives the form's errors, keyed by field."""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import ipaddress
import os
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigFlow

from .const import (
    CONF_ALLOWED_SOURCES,
    CONF_BAUD_RATE,
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_LISTEN_HOST,
    CONF_LISTEN_PORT,
    CONF_LISTEN_PROTOCOL,
    CONF_METER_ID,
    CONF_NAME,
    CONF_POLL_INTERVAL,
    CONF_PRIMARY_ADDRESS,
    CONF_SILENCE_TIMEOUT,
)
from .drivers import DriverCatalog
from .forms import (
    CONF_LINE_FORMAT,
    MAX_SILENCE_MINUTES,
    network_unique_id,
    receiver_data_type,
    rtl_options,
    serial_devices,
)
from .meters import receiver_entries
from .wmbus import (
    RTL_DEVICES,
    ProbeError,
    ReceiverConfig,
    WmbusConfigError,
    is_simulation,
    needs_device_type,
    normalize_key,
    normalize_meter_id,
    probe_version,
)
from .wmbus.config import (
    DONGLE_TYPES,
    MAX_NAME,
    MBUS,
    MBUS_BAUD_RATES,
    MBUS_PRIMARY_RANGE,
    POLL_INTERVAL_RANGE,
    RAWTTY,
    STDIN_DEVICE,
    RtlOptions,
    check_dongle_link_modes,
    device_kind_problem,
    validate_device,
    validate_driver,
)
from .wmbus.listener import (
    LINE_FORMATS,
    PROTOCOLS,
    ListenerConfig,
    ListenerError,
    TelegramListener,
    parse_allowed,
)
from .wmbus.probe import LinkModesRefusedError, check_command, detect_dongle

#: The form is shown at once: a program slower than this to say its version shows "-".
PROGRAM_PROBE_TIMEOUT = 3.0
MAX_ALLOWED_SOURCES = 32


# -- the program and the radio ----------------------------------------------------------------


async def program_placeholders(command: str) -> dict[str, str]:
    """Which wmbusmeters the form proposes and the version it answers ("-" when none)."""
    if not command:
        return {"program": "-", "version": "-"}
    try:
        version = await probe_version(command, timeout=PROGRAM_PROBE_TIMEOUT)
    except ProbeError:
        version = "-"
    return {"program": command, "version": version}


def check_receiver(command: str, device: str, others: list[str]) -> dict[str, str]:
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
        elif any(same_radio(device, other) for other in others):
            # Two wmbusmeters on one radio steal each other's bytes.
            errors[CONF_DEVICE] = "device_in_use"
    return errors


def same_radio(device: str, other: str) -> bool:
    """Whether two receivers' devices are one radio: the same keyword (`auto`, `rtlwmbus`),
    or one port under two names (blocking: realpath)."""
    if device == other or (device in RTL_DEVICES and other in RTL_DEVICES):
        return True  # rtlwmbus and rtl433 open the same stick
    return (
        device.startswith("/")
        and other.startswith("/")
        and os.path.realpath(other) == os.path.realpath(device)
    )


def stable_port(device: str, configured: list[str]) -> tuple[str, bool]:
    """The /dev/serial/by-id name of a discovered port (it survives replugging), and whether
    a receiver already uses that port under any of its names (blocking: readlink)."""
    real = os.path.realpath(device)
    stable = device
    if not device.startswith("/dev/serial/by-id/"):
        stable = next((p for p in serial_devices() if os.path.realpath(p) == real), device)
    used = any(os.path.realpath(path) == real for path in configured if path.startswith("/"))
    return stable, used


async def probe_command(command: str, errors: dict[str, str]) -> None:
    """The command answers --version (unless it already has an error)."""
    if CONF_COMMAND not in errors:
        try:
            await probe_version(command)
        except ProbeError as err:
            errors[CONF_COMMAND] = err.translation_key


async def command_and_device_errors(flow: ConfigFlow, command: str, device: str) -> dict[str, str]:
    """A command that runs and a serial device that exists and is no other receiver's."""
    this = flow.context.get("entry_id")  # a reconfigure: its own radio is no conflict
    others = [entry.data[CONF_DEVICE] for entry in receiver_entries(flow.hass, exclude=this)]
    errors = await flow.hass.async_add_executor_job(check_receiver, command, device, others)
    await probe_command(command, errors)
    return errors


def link_modes_needed(device: str, device_type: str) -> bool:
    """Whether wmbusmeters needs link modes for this radio: 2.0.0 refuses a dongle without
    ("You must supply which link modes"); a simulation file, an RTL-SDR stick (it listens to
    S1, T1 and C1 at once) and a raw tty (it passes every telegram it carries) do not."""
    return not (is_simulation(device) or device in RTL_DEVICES or device_type == RAWTTY)


async def detection_errors(command: str, config: ReceiverConfig) -> dict[str, str]:
    """wmbusmeters' own look for the dongle a serial receiver names (none for other radios),
    as form errors: refused link modes on the link modes, no dongle on the form."""
    if config.device_type not in DONGLE_TYPES:
        return {}
    try:
        await detect_dongle(command, config.device_spec)
    except LinkModesRefusedError as err:
        return {CONF_LINK_MODES: err.translation_key}
    except ProbeError as err:
        return {"base": err.translation_key}
    return {}


async def validate_receiver(
    flow: ConfigFlow, data: Mapping[str, Any], *, detect: bool = True
) -> dict[str, str]:
    """Everything a radio receiver needs before it is saved; errors keyed by field.

    With `detect`, a dongle is looked for by wmbusmeters itself on its port (with the link
    modes chosen): a port with nothing or something else on it is refused here, not found
    broken after saving. Not while this receiver's own wmbusmeters holds the port.
    """
    command, device = data[CONF_COMMAND], data[CONF_DEVICE]
    device_type = data.get(CONF_DEVICE_TYPE, "")
    errors = await command_and_device_errors(flow, command, device)
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
    device_type = receiver_data_type(data)  # a type given with `auto` is not used
    try:
        check_dongle_link_modes(device_type, data.get(CONF_LINK_MODES, ()))
        config = ReceiverConfig(
            device=device,
            device_type=device_type,
            link_modes=tuple(data.get(CONF_LINK_MODES, ())),
            rtl=rtl_options(data) if device in RTL_DEVICES else RtlOptions(),
        )
    except WmbusConfigError as err:
        field = CONF_LINK_MODES if err.translation_key.startswith("link_modes") else "base"
        return {field: err.translation_key}
    return await detection_errors(command, config) if detect else {}


async def dongle_errors(
    entry_data: Mapping[str, Any], device_type: str, link_modes: list[str]
) -> dict[str, str]:
    """A type (and link modes) given to a receiver saved with a bare serial port: the link
    modes it needs and allows, then wmbusmeters' own look for the dongle on the port (the
    receiver is not running: it could not start without a type)."""
    device: str = entry_data[CONF_DEVICE]
    if not link_modes and link_modes_needed(device, device_type):
        return {CONF_LINK_MODES: "link_modes_required"}
    try:
        check_dongle_link_modes(device_type, link_modes)
        config = ReceiverConfig(
            device=device, device_type=device_type, link_modes=tuple(link_modes)
        )
    except WmbusConfigError as err:
        return {CONF_LINK_MODES: err.translation_key}
    return await detection_errors(entry_data[CONF_COMMAND], config)


# -- the network and the wired M-Bus ----------------------------------------------------------


def read_network(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any] | None:
    """The entry data of a network form, or None with errors keyed by field."""
    host = str(user_input.get(CONF_LISTEN_HOST, "")).strip()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        errors[CONF_LISTEN_HOST] = "invalid_listen_host"
    port = user_input.get(CONF_LISTEN_PORT)
    if not isinstance(port, (int, float)) or not float(port).is_integer() or not 0 < port < 65536:
        errors[CONF_LISTEN_PORT] = "invalid_listen_port"
    protocol = user_input.get(CONF_LISTEN_PROTOCOL)
    line_format = user_input.get(CONF_LINE_FORMAT)
    if protocol not in PROTOCOLS or line_format not in LINE_FORMATS:
        errors["base"] = "invalid_config"
    sources = [str(s).strip() for s in user_input.get(CONF_ALLOWED_SOURCES) or [] if str(s).strip()]
    try:
        parse_allowed(sources)
    except ValueError:
        errors[CONF_ALLOWED_SOURCES] = "invalid_source"
    if len(sources) > MAX_ALLOWED_SOURCES:
        errors[CONF_ALLOWED_SOURCES] = "too_many_sources"
    if errors:
        return None
    return {
        CONF_COMMAND: user_input[CONF_COMMAND],
        CONF_DEVICE: STDIN_DEVICE,
        CONF_DEVICE_TYPE: line_format,
        CONF_LINK_MODES: [],
        CONF_LISTEN_HOST: host,
        CONF_LISTEN_PORT: int(port),  # type: ignore[arg-type]
        CONF_LISTEN_PROTOCOL: protocol,
        CONF_ALLOWED_SOURCES: sources,
    }


async def port_errors(data: Mapping[str, Any]) -> dict[str, str]:
    """Whether the port can be listened on now: it is opened and closed again."""
    probe = TelegramListener(
        ListenerConfig(
            host=data[CONF_LISTEN_HOST],
            port=data[CONF_LISTEN_PORT],
            protocol=data[CONF_LISTEN_PROTOCOL],
            line_format=data[CONF_DEVICE_TYPE],
        ),
        lambda _line: False,
    )
    try:
        await probe.start()
    except ListenerError as err:
        return {CONF_LISTEN_PORT: err.translation_key}
    finally:
        with contextlib.suppress(OSError):
            await probe.stop()
    return {}


async def validate_network(
    flow: ConfigFlow, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entry data of a network form, and the errors keyed by field (data only without)."""
    errors: dict[str, str] = {}
    data = read_network(user_input, errors)
    await probe_command(user_input[CONF_COMMAND], errors)
    if data is None or errors:
        return {}, errors
    this = flow.context.get("entry_id")
    for entry in receiver_entries(flow.hass, exclude=this):
        if entry.data[CONF_DEVICE] != STDIN_DEVICE or CONF_LISTEN_PORT not in entry.data:
            continue  # (an MQTT receiver reads stdin too, and has no port)
        if network_unique_id(entry.data) == network_unique_id(data):
            return {}, {CONF_LISTEN_PORT: "port_in_use"}
    own = flow.hass.config_entries.async_get_entry(this) if this else None
    if own is not None and own.state is ConfigEntryState.LOADED:
        listener = own.runtime_data.supervisor.listener
        if listener is not None and network_unique_id(own.data) == network_unique_id(data):
            return data, {}  # its own listener holds the port: nothing to check
    if errors := await port_errors(data):
        return {}, errors
    return data, {}


def read_baud_rate(user_input: Mapping[str, Any], errors: dict[str, str]) -> int | None:
    """The chosen speed, or None with an error."""
    try:
        rate = int(str(user_input.get(CONF_BAUD_RATE)))
    except ValueError:
        rate = 0
    if rate not in MBUS_BAUD_RATES:
        errors[CONF_BAUD_RATE] = "invalid_baud_rate"
        return None
    return rate


async def validate_mbus(
    flow: ConfigFlow, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entry data of an M-Bus form, and the errors keyed by field (data only without)."""
    command, device = user_input[CONF_COMMAND], user_input[CONF_DEVICE]
    errors = await command_and_device_errors(flow, command, device)
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


def read_silence_timeout(user_input: Mapping[str, Any], errors: dict[str, str]) -> int | None:
    """The silence timeout in whole minutes (0: off), or None with an error."""
    minutes = float(user_input[CONF_SILENCE_TIMEOUT])
    # The watchdog counts whole minutes; 0.5 was stored as 0 (off) and 1.9 as 1.
    if minutes.is_integer() and 0 <= minutes <= MAX_SILENCE_MINUTES:
        return int(minutes)
    errors[CONF_SILENCE_TIMEOUT] = "whole_minutes"
    return None


# -- meters -----------------------------------------------------------------------------------


def read_name(user_input: Mapping[str, Any], errors: dict[str, str], default: str) -> str | None:
    """A meter's name (the default when left empty; shown in Home Assistant only, never given
    to wmbusmeters), or None with an error: control characters (a pasted newline, a NUL) and
    names over MAX_NAME characters are refused."""
    name = str(user_input.get(CONF_NAME, "")).strip()
    if not name.isprintable():
        errors[CONF_NAME] = "invalid_name"
        return None
    if len(name) > MAX_NAME:
        errors[CONF_NAME] = "name_too_long"
        return None
    return name or default


def read_meter_id(user_input: Mapping[str, Any], errors: dict[str, str]) -> str | None:
    """The meter id as stored (8 hex digits, lower case), or None with an error."""
    try:
        return normalize_meter_id(user_input[CONF_METER_ID])
    except WmbusConfigError:
        errors[CONF_METER_ID] = "invalid_meter_id"
        return None


def read_key(user_input: Mapping[str, Any], errors: dict[str, str]) -> str | None:
    """The AES key as stored (32 upper-case hex digits or ""), or None with a form error."""
    try:
        return normalize_key(user_input.get(CONF_KEY, ""))
    except WmbusConfigError:
        errors[CONF_KEY] = "invalid_key"
        return None


def read_driver(
    user_input: Mapping[str, Any], drivers: DriverCatalog, errors: dict[str, str]
) -> str | None:
    """The chosen driver, or None with a form error (unknown to the binary; any well-formed
    name when the binary could not list its drivers)."""
    try:
        return validate_driver(user_input[CONF_DRIVER], drivers.names if drivers.drivers else None)
    except WmbusConfigError:
        errors[CONF_DRIVER] = "unknown_driver"
        return None


def _whole_in(value: object, limits: tuple[int, int]) -> bool:
    """A number box's value that is a whole number within the limits (boxes give floats)."""
    return (
        isinstance(value, (int, float))
        and float(value).is_integer()
        and limits[0] <= value <= limits[1]
    )


def read_wired_meter(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The wired meter's data (address, interval), with errors keyed by field."""
    data: dict[str, Any] = {}
    address = user_input.get(CONF_PRIMARY_ADDRESS)
    if address in (None, ""):
        data[CONF_PRIMARY_ADDRESS] = None
    elif _whole_in(address, MBUS_PRIMARY_RANGE):
        data[CONF_PRIMARY_ADDRESS] = int(address)
    else:
        errors[CONF_PRIMARY_ADDRESS] = "invalid_primary_address"
    interval: Any = user_input.get(CONF_POLL_INTERVAL)
    if _whole_in(interval, POLL_INTERVAL_RANGE):
        data[CONF_POLL_INTERVAL] = int(interval)
    else:
        errors[CONF_POLL_INTERVAL] = "invalid_poll_interval"
    return data


def read_meter(
    user_input: Mapping[str, Any], drivers: DriverCatalog, errors: dict[str, str], *, wired: bool
) -> dict[str, Any]:
    """A meter form's driver, key and (wired) address and interval, normalised, with errors
    keyed by field. A wired meter is polled: it names its driver."""
    data: dict[str, Any] = {}
    if (driver := read_driver(user_input, drivers, errors)) is not None:
        data[CONF_DRIVER] = driver
        if wired and driver == "auto":
            errors[CONF_DRIVER] = "driver_required"  # a poll names its driver
    if (key := read_key(user_input, errors)) is not None:
        data[CONF_KEY] = key
    if wired:
        data |= read_wired_meter(user_input, errors)
    return data

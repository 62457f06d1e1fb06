"""What the flows' and repairs' forms look like, and what their values become as entry data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import glob
from typing import Any

from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .compat import vol
from .const import (
    CONF_ALLOWED_SOURCES,
    CONF_BAUD_RATE,
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_IMPORT_HISTORY,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_LISTEN_HOST,
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
    DEFAULT_IMPORT_HISTORY,
    SECTION_RTL,
)
from .drivers import DriverCatalog
from .key_files import key_file_section
from .wmbus import DEVICE_TYPES, LINK_MODES, RTL_DEVICES, needs_device_type
from .wmbus.config import (
    DONGLE_MODES,
    MBUS,
    MBUS_BAUD_RATES,
    MBUS_PRIMARY_RANGE,
    POLL_INTERVAL_RANGE,
    RTL_FREQUENCY_RANGE_MHZ,
    RTL_PPM_RANGE,
    RtlOptions,
)
from .wmbus.listener import LINE_FORMATS, PROTOCOLS

#: Stored only with an RTL-SDR stick (CONTRACT.md).
RTL_KEYS = (CONF_RTL_SERIAL, CONF_RTL_PPM, CONF_RTL_FREQUENCY)
#: The network form's name for the line format (stored as the device_type of the `stdin` device).
CONF_LINE_FORMAT = "line_format"
#: What the HA add-on's netcat listened on (9022/tcp, 9011/udp): users' nodes already send there.
DEFAULT_PORTS = {"tcp": 9022, "udp": 9011}
#: A day: a meter that is silent longer is lost, not waiting for a restart.
MAX_SILENCE_MINUTES = 1440
_SERIAL_GLOBS = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*")


def serial_devices() -> list[str]:
    """Serial devices present, stable /dev/serial/by-id names first (blocking)."""
    found: list[str] = []
    for pattern in _SERIAL_GLOBS:
        found.extend(sorted(glob.glob(pattern)))
    return found


# -- fields -----------------------------------------------------------------------------------


def number_box(limits: tuple[float, float], step: float, unit: str | None = None) -> NumberSelector:
    """A box (not a slider) from limits[0] to limits[1], with its unit if it has one."""
    config = NumberSelectorConfig(
        min=limits[0], max=limits[1], step=step, mode=NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def key_field() -> dict[Any, TextSelector]:
    """An optional, masked AES key field (empty: no key)."""
    return {
        vol.Optional(CONF_KEY, default=""): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
    }


def driver_field(
    drivers: DriverCatalog, *, default: str | None = None
) -> dict[Any, SelectSelector]:
    """A dropdown of the binary's drivers with the kind of meter each reads, `auto` first."""
    options = [SelectOptionDict(value="auto", label="auto")]
    options.extend(
        SelectOptionDict(value=d.name, label=f"{d.name} ({d.meter_type})")
        for d in drivers.drivers.values()
        if d.name != "auto"
    )
    key = vol.Required(CONF_DRIVER, default=default) if default else vol.Required(CONF_DRIVER)
    return {
        key: SelectSelector(
            SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN, sort=False)
        )
    }


def radio_fields(*, type_required: bool = False) -> dict[Any, SelectSelector]:
    """The dongle type (what is on a serial port) and the link modes to listen to. A wired
    M-Bus master has a form of its own (its speed; its meters polled): not offered here."""
    key = vol.Required(CONF_DEVICE_TYPE) if type_required else vol.Optional(CONF_DEVICE_TYPE)
    types = tuple(t for t in DEVICE_TYPES if t != MBUS)
    return {
        key: SelectSelector(
            SelectSelectorConfig(
                options=list(types),
                mode=SelectSelectorMode.DROPDOWN,
                translation_key=CONF_DEVICE_TYPE,
            )
        ),
        vol.Optional(CONF_LINK_MODES, default=[]): SelectSelector(
            SelectSelectorConfig(
                options=list(LINK_MODES),
                multiple=True,
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_LINK_MODES,
            )
        ),
    }


def choice_list(options: Iterable[str], translation_key: str) -> SelectSelector:
    """One of a few translated choices, all shown (a network or MQTT receiver's protocol and
    formats)."""
    return SelectSelector(
        SelectSelectorConfig(
            options=list(options), mode=SelectSelectorMode.LIST, translation_key=translation_key
        )
    )


def baud_rate_field() -> dict[Any, SelectSelector]:
    """The bus speed: one of the three M-Bus speeds (stored as a number)."""
    return {
        vol.Required(CONF_BAUD_RATE): SelectSelector(
            SelectSelectorConfig(
                options=[str(rate) for rate in MBUS_BAUD_RATES], mode=SelectSelectorMode.LIST
            )
        )
    }


def wired_meter_fields() -> dict[Any, NumberSelector]:
    """A wired meter's primary address (empty: polled at its secondary address, its id) and
    poll interval."""
    return {
        vol.Optional(CONF_PRIMARY_ADDRESS): number_box(MBUS_PRIMARY_RANGE, 1),
        vol.Required(CONF_POLL_INTERVAL): number_box(POLL_INTERVAL_RANGE, 1, "s"),
    }


def dongle_modes_text(device_type: str | None) -> str:
    """What a dongle type listens to, for the link-mode error: `C1, S1, S1M, T1 (C1+T1)`."""
    rule = DONGLE_MODES.get(device_type or "")
    if rule is None:
        return "-"
    text = ", ".join(mode.upper() for mode in rule.modes)
    if rule.pairs:
        text += " (" + ", ".join("+".join(sorted(pair)).upper() for pair in rule.pairs) + ")"
    return text


# -- receiver forms ---------------------------------------------------------------------------


def receiver_schema(devices: list[str]) -> vol.Schema:
    """A radio receiver: command, device (the serial ports present offered), type, link modes
    and the RTL-SDR tuning in a collapsed section."""
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


def usb_confirm_schema() -> vol.Schema:
    """A plugged-in dongle (its port is known): command, type and link modes."""
    return vol.Schema(
        {vol.Required(CONF_COMMAND): TextSelector(), **radio_fields(type_required=True)}
    )


def usb_suggested(command: str, device_type: str) -> dict[str, Any]:
    """A plugged-in dongle's form: its type, and both modes of a pair it has (else its last)."""
    # rawtty (offered by the type's dropdown) has no link modes of its own.
    rule = DONGLE_MODES.get(device_type)
    both = next(iter(rule.pairs), None) if rule is not None else None
    return {
        CONF_COMMAND: command,
        CONF_DEVICE_TYPE: device_type,
        CONF_LINK_MODES: sorted(both) if both else rule.modes[-1:] if rule else [],
    }


def mbus_schema(devices: list[str]) -> vol.Schema:
    """A wired M-Bus master: command, serial port and the bus' speed."""
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


def network_schema() -> vol.Schema:
    """A network receiver: command, protocol, address, port, line format and allow-list."""
    return vol.Schema(
        {
            vol.Required(CONF_COMMAND): TextSelector(),
            vol.Required(CONF_LISTEN_PROTOCOL): choice_list(PROTOCOLS, CONF_LISTEN_PROTOCOL),
            vol.Required(CONF_LISTEN_HOST): TextSelector(),
            vol.Required(CONF_LISTEN_PORT): number_box((1, 65535), 1),
            vol.Required(CONF_LINE_FORMAT): choice_list(LINE_FORMATS, CONF_LINE_FORMAT),
            vol.Optional(CONF_ALLOWED_SOURCES): TextSelector(TextSelectorConfig(multiple=True)),
        }
    )


def network_suggested(command: str) -> dict[str, Any]:
    """A new network receiver's form: TCP on every address, the add-on's port."""
    return {
        CONF_COMMAND: command,
        CONF_LISTEN_PROTOCOL: "tcp",
        # Remote nodes must reach it (as the add-on listened); the allow-list narrows senders.
        CONF_LISTEN_HOST: "0.0.0.0",  # noqa: S104
        CONF_LISTEN_PORT: DEFAULT_PORTS["tcp"],
        CONF_LINE_FORMAT: "rtlwmbus",
    }


def network_form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A saved network receiver as its form shows it."""
    return {
        CONF_COMMAND: data[CONF_COMMAND],
        CONF_LISTEN_PROTOCOL: data[CONF_LISTEN_PROTOCOL],
        CONF_LISTEN_HOST: data[CONF_LISTEN_HOST],
        CONF_LISTEN_PORT: data[CONF_LISTEN_PORT],
        CONF_LINE_FORMAT: data[CONF_DEVICE_TYPE],
        CONF_ALLOWED_SOURCES: list(data.get(CONF_ALLOWED_SOURCES, [])),
    }


def network_unique_id(data: Mapping[str, Any]) -> str:
    """One receiver per protocol and port (whatever the address: two would fight for it)."""
    return f"{data[CONF_LISTEN_PROTOCOL]}:{data[CONF_LISTEN_PORT]}"


def receiver_form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored receiver data as the form shows it (the RTL-SDR tuning in its section)."""
    values = {k: v for k, v in data.items() if v not in ("", None) and k not in RTL_KEYS}
    values[SECTION_RTL] = {k: data[k] for k in RTL_KEYS if data.get(k) not in ("", None, 0)}
    return values


def rtl_options(data: Mapping[str, Any]) -> RtlOptions:
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


def receiver_data_type(user_input: Mapping[str, Any]) -> str:
    """The dongle type that is stored: only with a serial path."""
    if not needs_device_type(user_input[CONF_DEVICE]):
        return ""
    return str(user_input.get(CONF_DEVICE_TYPE, ""))


def receiver_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored of a validated receiver form: a type only with a serial path, the
    RTL-SDR tuning only with an RTL-SDR stick."""
    device = user_input[CONF_DEVICE]
    data = {
        CONF_COMMAND: user_input[CONF_COMMAND],
        CONF_DEVICE: device,
        CONF_DEVICE_TYPE: receiver_data_type(user_input),
        CONF_LINK_MODES: list(user_input.get(CONF_LINK_MODES, [])),
    }
    if device in RTL_DEVICES:
        rtl = rtl_options(user_input)
        data |= {
            CONF_RTL_SERIAL: rtl.serial,
            CONF_RTL_PPM: rtl.ppm,
            CONF_RTL_FREQUENCY: rtl.frequency_mhz,
        }
    return data


#: The directory of an existing wmbusmeters setup (the add-on's data path, /etc).
CONF_SETUP_PATH = "setup_path"


def import_setup_schema() -> vol.Schema:
    """Where an existing wmbusmeters setup's files are, and the program to run it with."""
    return vol.Schema(
        {
            vol.Required(CONF_SETUP_PATH): TextSelector(),
            vol.Required(CONF_COMMAND): TextSelector(),
        }
    )


def options_schema() -> vol.Schema:
    """The receiver's options: minutes without any telegram before wmbusmeters restarts;
    whether meters' dated registers are imported into their statistics."""
    return vol.Schema(
        {
            vol.Required(CONF_SILENCE_TIMEOUT): number_box((0, MAX_SILENCE_MINUTES), 1, "min"),
            vol.Optional(CONF_IMPORT_HISTORY, default=DEFAULT_IMPORT_HISTORY): BooleanSelector(),
        }
    )


# -- meter forms ------------------------------------------------------------------------------


def meter_schema(drivers: DriverCatalog, *, wired: bool, new: bool) -> vol.Schema:
    """A meter: name, id (a new one only: its id is what it is), driver, key, and a wired
    meter's address and poll interval. A new radio meter's driver is `auto` unless chosen."""
    driver = driver_field(drivers, default=None if wired or not new else "auto")
    return vol.Schema(
        {
            vol.Required(CONF_NAME): TextSelector(),
            **({vol.Required(CONF_METER_ID): TextSelector()} if new else {}),
            **driver,
            **key_field(),
            **(wired_meter_fields() if wired else {}),
            **key_file_section(),
        }
    )


def meter_form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """A saved meter as its form shows it; the key prefilled (masked): an empty field means
    "no key", not "unchanged"."""
    return {
        CONF_NAME: data[CONF_NAME],
        CONF_DRIVER: data[CONF_DRIVER],
        CONF_KEY: data.get(CONF_KEY, ""),
        CONF_POLL_INTERVAL: data.get(CONF_POLL_INTERVAL),
        CONF_PRIMARY_ADDRESS: data.get(CONF_PRIMARY_ADDRESS),
    }


def discovered_meter_schema() -> vol.Schema:
    """A meter a receiver heard: its name and key (the rest it told)."""
    return vol.Schema({vol.Required(CONF_NAME): TextSelector(), **key_field()})

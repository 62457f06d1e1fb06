"""The network receiver's form: where to listen, which line format, who may send."""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import ipaddress
from typing import Any

from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)

from .compat import vol
from .const import (
    CONF_ALLOWED_SOURCES,
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_LINK_MODES,
    CONF_LISTEN_HOST,
    CONF_LISTEN_PORT,
    CONF_LISTEN_PROTOCOL,
)
from .number_input import number_box
from .wmbus.config import STDIN_DEVICE
from .wmbus.listener import (
    LINE_FORMATS,
    PROTOCOLS,
    ListenerConfig,
    ListenerError,
    TelegramListener,
    parse_allowed,
)

#: The form's name for the line format (stored as the device_type of the `stdin` device).
CONF_LINE_FORMAT = "line_format"
#: What the HA add-on's netcat listened on (9022/tcp, 9011/udp): users' nodes already send there.
DEFAULT_PORTS = {"tcp": 9022, "udp": 9011}
MAX_ALLOWED_SOURCES = 32


def network_schema() -> vol.Schema:
    """Command, protocol, address, port, line format and allow-list."""
    return vol.Schema(
        {
            vol.Required(CONF_COMMAND): TextSelector(),
            vol.Required(CONF_LISTEN_PROTOCOL): SelectSelector(
                SelectSelectorConfig(
                    options=list(PROTOCOLS),
                    mode=SelectSelectorMode.LIST,
                    translation_key=CONF_LISTEN_PROTOCOL,
                )
            ),
            vol.Required(CONF_LISTEN_HOST): TextSelector(),
            vol.Required(CONF_LISTEN_PORT): number_box((1, 65535), 1),
            vol.Required(CONF_LINE_FORMAT): SelectSelector(
                SelectSelectorConfig(
                    options=list(LINE_FORMATS),
                    mode=SelectSelectorMode.LIST,
                    translation_key=CONF_LINE_FORMAT,
                )
            ),
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


def network_unique_id(data: Mapping[str, Any]) -> str:
    """One receiver per protocol and port (whatever the address: two would fight for it)."""
    return f"{data[CONF_LISTEN_PROTOCOL]}:{data[CONF_LISTEN_PORT]}"


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

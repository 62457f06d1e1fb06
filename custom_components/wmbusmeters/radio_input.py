"""The dongle type and link mode fields, shared by the receiver form and its repair."""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.selector import SelectSelector, SelectSelectorConfig, SelectSelectorMode

from .compat import vol
from .const import CONF_DEVICE_TYPE, CONF_LINK_MODES
from .wmbus import DEVICE_TYPES, LINK_MODES, RTL_DEVICES, ProbeError, ReceiverConfig, is_simulation
from .wmbus.config import DONGLE_MODES, DONGLE_TYPES, MBUS, RAWTTY
from .wmbus.probe import LinkModesRefusedError, detect_dongle


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


def link_modes_needed(device: str, device_type: str) -> bool:
    """Whether wmbusmeters needs link modes for this radio: 2.0.0 refuses a dongle without
    ("You must supply which link modes"); a simulation file, an RTL-SDR stick (it listens to
    S1, T1 and C1 at once) and a raw tty (it passes every telegram it carries) do not."""
    return not (is_simulation(device) or device in RTL_DEVICES or device_type == RAWTTY)


def dongle_modes_text(device_type: str | None) -> str:
    """What a dongle type listens to, for the link-mode error: `C1, S1, S1M, T1 (C1+T1)`."""
    rule = DONGLE_MODES.get(device_type or "")
    if rule is None:
        return "-"
    text = ", ".join(mode.upper() for mode in rule.modes)
    if rule.pairs:
        text += " (" + ", ".join("+".join(sorted(pair)).upper() for pair in rule.pairs) + ")"
    return text


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

"""Diagnostics for a receiver and for one meter. Keys never appear: they are redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntry

from .const import CONF_KEY, DOMAIN
from .coordinator import WmbusConfigEntry
from .meters import MeterState
from .wmbus.config import render_lines

TO_REDACT = {CONF_KEY}


def _meter(meter: MeterState) -> dict[str, Any]:
    telegram = meter.last_telegram
    return {
        "meter_id": meter.meter_id,
        "configured_driver": meter.config.driver,
        "reported_driver": meter.driver,
        "has_key": bool(meter.config.key),
        "documented_fields": meter.documented_fields,
        "last_seen": meter.last_seen.isoformat() if meter.last_seen else None,
        "lost": meter.lost,
        "last_telegram": None
        if telegram is None
        else {"media": telegram.media, "driver": telegram.driver, "readings": telegram.readings},
    }


def _rendered_config(entry: WmbusConfigEntry) -> dict[str, list[str]]:
    """The files wmbusmeters reads, with `key=` lines redacted."""
    files = render_lines(entry.runtime_data.runner.config)
    return {
        name: [
            "key=**REDACTED**" if line.startswith("key=") and line != "key=NOKEY" else line
            for line in lines
        ]
        for name, lines in files.items()
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: WmbusConfigEntry
) -> dict[str, Any]:
    """The receiver: versions, command line, configuration, runner, meters."""
    coordinator = entry.runtime_data
    return {
        "entry": {
            "data": dict(entry.data),
            "options": dict(entry.options),
            "subentries": [
                {"title": sub.title, "data": async_redact_data(dict(sub.data), TO_REDACT)}
                for sub in entry.subentries.values()
            ],
        },
        "wmbusmeters_config": _rendered_config(entry),
        # The runner keeps its stderr lines with keys already redacted.
        "runner": coordinator.diagnostics(),
        "meters": {meter.meter_id: _meter(meter) for meter in coordinator.meters.by_id.values()},
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: WmbusConfigEntry, device: DeviceEntry
) -> dict[str, Any]:
    """One meter (or the receiver's own device)."""
    coordinator = entry.runtime_data
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and (meter := coordinator.meters.by_id.get(identifier)):
            return {"version": coordinator.version, "meter": _meter(meter)}
    return await async_get_config_entry_diagnostics(hass, entry)

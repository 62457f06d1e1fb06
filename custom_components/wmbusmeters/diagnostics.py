"""Diagnostics for a receiver and for one meter, assembled from the supervisor, the meters and
the availability model. Keys never appear: they are redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntry

from .const import CONF_KEY, DOMAIN
from .meters import MeterState
from .runtime import WmbusConfigEntry, WmbusData
from .supervisor import ReceiverSupervisor
from .wmbus.config import render_lines

TO_REDACT = {CONF_KEY}


def _meter(data: WmbusData, meter: MeterState) -> dict[str, Any]:
    telegram = meter.last_telegram
    return {
        "meter_id": meter.meter_id,
        "configured_driver": meter.config.driver,
        "reported_driver": meter.driver,
        "has_key": bool(meter.config.key),
        "documented_fields": meter.documented_fields,
        "last_seen": meter.last_seen.isoformat() if meter.last_seen else None,
        "lost": meter.meter_id in data.availability.lost,
        "last_telegram": None
        if telegram is None
        else {"media": telegram.media, "driver": telegram.driver, "readings": telegram.readings},
    }


def _rendered_config(entry: WmbusConfigEntry) -> dict[str, list[str]]:
    """The files wmbusmeters reads, with `key=` lines redacted."""
    files = render_lines(entry.runtime_data.supervisor.runner.config)
    return {
        name: [
            "key=**REDACTED**" if line.startswith("key=") and line != "key=NOKEY" else line
            for line in lines
        ]
        for name, lines in files.items()
    }


def _runner(supervisor: ReceiverSupervisor) -> dict[str, Any]:
    """Runner state and counters (no keys: the argv has none by construction)."""
    runner = supervisor.runner
    return {
        "version": supervisor.version,
        "argv": runner.argv,
        "status": {
            "state": runner.status.state.value,
            "reason": runner.status.reason,
            "returncode": runner.status.returncode,
        },
        "counters": {
            "telegrams": runner.counters.telegrams,
            "restarts": runner.counters.restarts,
            "skipped_lines": runner.counters.skipped_lines,
            "stderr_lines": runner.counters.stderr_lines,
            "flooded_lines": runner.counters.flooded_lines,
            "callback_errors": runner.counters.callback_errors,
            "refused_values": runner.counters.refused_values,
        },
        "stderr_tail": list(runner.stderr_tail),
        "listener": _listener(supervisor),
        "mqtt": _mqtt(supervisor),
    }


def _mqtt(supervisor: ReceiverSupervisor) -> dict[str, Any] | None:
    """An MQTT receiver's subscription and what each topic sent (None for other receivers)."""
    frames = supervisor.mqtt
    if frames is None:
        return None
    return {
        "topic": frames.config.topic,
        "payload_format": frames.config.payload_format,
        "connected": frames.connected,
        "totals": frames.gate.totals(),
        "topics": {topic: stats.as_dict() for topic, stats in frames.gate.topics.items()},
    }


def _listener(supervisor: ReceiverSupervisor) -> dict[str, Any] | None:
    """A network receiver's port and what each source sent (None for other receivers)."""
    listener = supervisor.listener
    if listener is None:
        return None
    return {
        "protocol": listener.config.protocol,
        "port": listener.bound_port,
        "listening": listener.listening,
        "connections": listener.connections,
        "refused_connections": listener.refused_connections,
        "totals": listener.totals(),
        "sources": {source: stats.as_dict() for source, stats in listener.sources.items()},
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: WmbusConfigEntry
) -> dict[str, Any]:
    """The receiver: versions, command line, configuration, runner, meters."""
    data = entry.runtime_data
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
        "runner": _runner(data.supervisor),
        "meters": {meter.meter_id: _meter(data, meter) for meter in data.meters.by_id.values()},
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: WmbusConfigEntry, device: DeviceEntry
) -> dict[str, Any]:
    """One meter (or the receiver's own device)."""
    data = entry.runtime_data
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and (meter := data.meters.by_id.get(identifier)):
            return {"version": data.coordinator.version, "meter": _meter(data, meter)}
    return await async_get_config_entry_diagnostics(hass, entry)

"""What differs between the supported Home Assistant versions (2026.2 to 2026.10), in one place."""

from __future__ import annotations

try:
    # 2026.10 validates schemas with probatio (voluptuous still imports, but is not typed as it).
    import probatio as vol
except ImportError:  # pragma: no cover - HA before 2026.10
    import voluptuous as vol  # type: ignore[no-redef]

from homeassistant.helpers.device_registry import DeviceInfo

#: 2026.10 links a device to its parent by device id; 2026.2 only by identifiers.
HAS_VIA_DEVICE_ID = "via_device_id" in DeviceInfo.__annotations__

__all__ = ["HAS_VIA_DEVICE_ID", "vol"]

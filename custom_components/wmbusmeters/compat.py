"""What differs between the supported Home Assistant versions (2026.2 to 2026.10), in one place."""

from __future__ import annotations

try:
    # 2026.10 validates schemas with probatio (voluptuous still imports, but is not typed as it).
    import probatio as vol
except ImportError:  # pragma: no cover - HA before 2026.10
    import voluptuous as vol  # type: ignore[no-redef]

from collections.abc import Callable
from typing import Any

from homeassistant.helpers import service
from homeassistant.helpers.device_registry import DeviceEntry, DeviceInfo, DeviceRegistry

#: 2026.10 finds an action's config entry (and says why not, translated); 2026.2 has none.
get_config_entry: Callable[..., Any] | None = getattr(service, "async_get_config_entry", None)

#: 2026.10 links a device to its parent by device id; 2026.2 only by identifiers.
HAS_VIA_DEVICE_ID = "via_device_id" in DeviceInfo.__annotations__


def find_device(
    registry: DeviceRegistry, identifier: tuple[str, str], config_entry_id: str
) -> DeviceEntry | None:
    """The entry's device with this identifier.

    2026.10 deprecates async_get_device (identifiers are unique per entry only); 2026.2 lacks
    its replacement.
    """
    if hasattr(registry, "async_get_device_by_identifier"):
        return registry.async_get_device_by_identifier(identifier, config_entry_id)
    return registry.async_get_device(identifiers={identifier})  # pragma: no cover - 2026.2


__all__ = ["HAS_VIA_DEVICE_ID", "find_device", "get_config_entry", "vol"]

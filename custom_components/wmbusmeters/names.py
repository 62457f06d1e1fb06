"""Entity names of a meter's fields: translated where a translation exists, derived from the
field's name otherwise, and never two alike on one device."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .units import FieldKind, number_suffix

# Field base name (the name without the unit suffix of a number; the whole name of text and
# dates) -> translation key, for the fields most meters have.
_TRANSLATED = {
    "total": "total",
    "target": "target",
    "flow": "flow",
    "max_flow": "max_flow",
    "flow_temperature": "flow_temperature",
    "return_temperature": "return_temperature",
    "external_temperature": "external_temperature",
    "current_temperature": "temperature",
    "temperature": "temperature",
    "power": "power",
    "current_power_consumption": "power_consumption",
    "current_power_production": "power_production",
    "total_energy_consumption": "energy_consumption",
    "total_energy_production": "energy_production",
    "total_energy": "energy",
    "total_volume": "volume",
    "current_consumption": "current_consumption",
    "status": "status",
    "current_status": "current_status",
    "battery": "battery",
    "battery_level": "battery",
    "battery_voltage": "battery",
    "rssi": "rssi",
    "timestamp": "last_telegram",
    "humidity": "humidity",
    "relative_humidity": "humidity",
    "current_relative_humidity": "humidity",
}


@dataclass(frozen=True, slots=True)
class FieldName:
    """A translation key, or a name of its own (has_entity_name: shown after the device's)."""

    translation_key: str | None = None
    name: str | None = None


def _base(field: str, kind: FieldKind) -> str:
    """The field's name without the unit suffix of a number (`total_m3` -> `total`); a date's
    or a text's name stays whole (`target_date` is a date, not a total)."""
    suffix = number_suffix(field)
    if suffix and kind.number:
        return field.removesuffix(f"_{suffix}")
    return field


def field_title(field: str, kind: FieldKind) -> str:
    """A readable name: `flow_temperature_c` -> `Flow temperature`, `meter_date` -> `Meter date`."""
    words = _base(field, kind).replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else field


def preferred_name(field: str, kind: FieldKind) -> FieldName:
    """The name a field gets when nothing else on its device has it."""
    if key := _TRANSLATED.get(_base(field, kind)):
        return FieldName(translation_key=key)
    return FieldName(name=field_title(field, kind))


class DeviceNames:
    """The names taken on one device, compared as the user reads them (in English)."""

    def __init__(self, english: Mapping[str, str]) -> None:
        """`english`: translation key -> English name."""
        self.english = english
        self._taken: set[str] = set()

    def _text(self, name: FieldName) -> str:
        if name.translation_key is not None:
            return self.english.get(name.translation_key, name.translation_key).casefold()
        return (name.name or "").casefold()

    def take(self, name: FieldName) -> None:
        """A name an entity has already (restored from the entity registry)."""
        self._taken.add(self._text(name))

    def name_for(self, field: str, kind: FieldKind) -> FieldName:
        """The preferred name if it is free; else the title with the unit (`Total (GJ)`) or
        the field itself: the first of these nobody on the device has."""
        title = field_title(field, kind)
        candidates = [preferred_name(field, kind)]
        if kind.unit:
            candidates.append(FieldName(name=f"{title} ({kind.unit})"))
        candidates.append(FieldName(name=f"{title} ({field})"))
        for candidate in candidates:
            if self._text(candidate) not in self._taken:
                self.take(candidate)
                return candidate
        number = 2
        while (name := FieldName(name=f"{title} ({field}) {number}")) and self._text(
            name
        ) in self._taken:
            number += 1
        self.take(name)
        return name

"""What a wmbusmeters field is, from its name: unit, device class, state class.

wmbusmeters names a numeric field `<quantity>_<unit suffix>` (`total_m3`, `flow_temperature_c`);
the suffixes are those of `wmbusmeters --listunits`. Only combinations that Home Assistant's
sensor component accepts are produced; the tests check every one against it.
"""

from __future__ import annotations

from dataclasses import dataclass
import re

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    DEGREE,
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfApparentPower,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfLength,
    UnitOfMass,
    UnitOfPower,
    UnitOfPressure,
    UnitOfReactiveEnergy,
    UnitOfReactivePower,
    UnitOfTemperature,
    UnitOfTime,
    UnitOfVolume,
    UnitOfVolumeFlowRate,
)

_DC = SensorDeviceClass
_TOTAL = SensorStateClass.TOTAL_INCREASING
_MEASUREMENT = SensorStateClass.MEASUREMENT


@dataclass(frozen=True, slots=True)
class FieldKind:
    """How to show one field."""

    unit: str | None = None
    device_class: SensorDeviceClass | None = None
    state_class: SensorStateClass | None = None
    #: A cumulative register (a meter's total): never let a 0 or a gap overwrite a reading.
    cumulative: bool = False
    entity_category: EntityCategory | None = None
    enabled_default: bool = True
    #: The value is text (status words, dates as text): no unit, no state class.
    text: bool = False
    #: The values of an enum field (the state is the JSON value, one of these).
    options: tuple[str, ...] | None = None

    @property
    def number(self) -> bool:
        """A JSON number is the state as it is (not text, not a timestamp)."""
        return not self.text and self.device_class is not _DC.TIMESTAMP


# Suffix -> (unit, device class, cumulative?). A cumulative quantity gets total_increasing,
# anything else measurement.
_SUFFIXES: dict[str, tuple[str | None, SensorDeviceClass | None, bool]] = {
    "kwh": (UnitOfEnergy.KILO_WATT_HOUR, _DC.ENERGY, True),
    "mwh": (UnitOfEnergy.MEGA_WATT_HOUR, _DC.ENERGY, True),
    "wh": (UnitOfEnergy.WATT_HOUR, _DC.ENERGY, True),
    "gj": (UnitOfEnergy.GIGA_JOULE, _DC.ENERGY, True),
    "mj": (UnitOfEnergy.MEGA_JOULE, _DC.ENERGY, True),
    "kvarh": (UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR, _DC.REACTIVE_ENERGY, True),
    "kvah": ("kVAh", None, True),
    "m3c": ("m³°C", None, True),
    "hca": (None, None, True),
    "counter": (None, None, True),
    "m3": (UnitOfVolume.CUBIC_METERS, _DC.VOLUME, True),
    "l": (UnitOfVolume.LITERS, _DC.VOLUME, True),
    "kw": (UnitOfPower.KILO_WATT, _DC.POWER, False),
    "w": (UnitOfPower.WATT, _DC.POWER, False),
    "mjh": ("MJ/h", None, False),
    "jh": ("J/h", None, False),
    "m3ch": ("m³°C/h", None, False),
    "kva": (UnitOfApparentPower.KILO_VOLT_AMPERE, _DC.APPARENT_POWER, False),
    "kvar": (UnitOfReactivePower.KILO_VOLT_AMPERE_REACTIVE, _DC.REACTIVE_POWER, False),
    "c": (UnitOfTemperature.CELSIUS, _DC.TEMPERATURE, False),
    "f": (UnitOfTemperature.FAHRENHEIT, _DC.TEMPERATURE, False),
    "k": (UnitOfTemperature.KELVIN, _DC.TEMPERATURE, False),
    "m3h": (UnitOfVolumeFlowRate.CUBIC_METERS_PER_HOUR, _DC.VOLUME_FLOW_RATE, False),
    "lh": (UnitOfVolumeFlowRate.LITERS_PER_HOUR, _DC.VOLUME_FLOW_RATE, False),
    "v": (UnitOfElectricPotential.VOLT, _DC.VOLTAGE, False),
    "a": (UnitOfElectricCurrent.AMPERE, _DC.CURRENT, False),
    "hz": (UnitOfFrequency.HERTZ, _DC.FREQUENCY, False),
    "bar": (UnitOfPressure.BAR, _DC.PRESSURE, False),
    "pa": (UnitOfPressure.PA, _DC.PRESSURE, False),
    "rh": (PERCENTAGE, _DC.HUMIDITY, False),
    "pct": (PERCENTAGE, None, False),
    "ppm": ("ppm", None, False),
    "dbm": (SIGNAL_STRENGTH_DECIBELS_MILLIWATT, _DC.SIGNAL_STRENGTH, False),
    "s": (UnitOfTime.SECONDS, _DC.DURATION, False),
    "min": (UnitOfTime.MINUTES, _DC.DURATION, False),
    "h": (UnitOfTime.HOURS, _DC.DURATION, False),
    "d": (UnitOfTime.DAYS, _DC.DURATION, False),
    # HA's duration class stops at days: months and years are plain numbers with a unit.
    "month": (UnitOfTime.MONTHS, None, False),
    "y": (UnitOfTime.YEARS, None, False),
    "kg": (UnitOfMass.KILOGRAMS, _DC.WEIGHT, False),
    "m": (UnitOfLength.METERS, _DC.DISTANCE, False),
    "deg": (DEGREE, None, False),
    "rad": ("rad", None, False),
    "mol": ("mol", None, False),
    "cd": ("cd", None, False),
    "nr": (None, None, False),
    "factor": (None, None, False),
}
# Point-in-time suffixes: wmbusmeters prints them as text in the meter's local time.
_TEXT_SUFFIXES = frozenset({"date", "datetime", "time", "txt", "utc", "ut"})

# A register read at a past date (billing date, start of month, history slots): it jumps
# and can go down when the date moves, so it is no running total.
_SNAPSHOT = re.compile(
    r"(^|_)(target|at_set_date|set_date|due_date|prev|previous|last|month|history|max|min|hist)(_|$)"
)

# Fields with their own meaning, whatever their suffix.
_SPECIAL: dict[str, FieldKind] = {
    "timestamp": FieldKind(device_class=_DC.TIMESTAMP, entity_category=EntityCategory.DIAGNOSTIC),
    "rssi_dbm": FieldKind(
        unit=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        device_class=_DC.SIGNAL_STRENGTH,
        state_class=_MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        enabled_default=False,
    ),
}

# Fields with a known set of values, per driver (wmbusmeters --listfields documents them).
_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("lansendw", "status"): ("OPEN", "CLOSED"),  # a door/window contact, not health flags
}
#: Drivers whose `status` field is not the meter's health: the field that is.
HEALTH_FIELDS: dict[str, str] = {"lansendw": "error_flags"}

_WATER_MEDIA = frozenset({"water", "cold water", "warm water", "hot water"})
_GAS_MEDIA = frozenset({"gas"})


def unit_suffix(field: str) -> str | None:
    """The unit suffix of a field name, if it has one wmbusmeters knows."""
    _, sep, suffix = field.rpartition("_")
    if sep and (suffix in _SUFFIXES or suffix in _TEXT_SUFFIXES):
        return suffix
    return None


def field_kind(field: str, media: str = "", driver: str = "") -> FieldKind:
    """Describe a field of a meter of the given media (`cold water`, `gas`, `heat`, ...)."""
    if special := _SPECIAL.get(field):
        return special
    if options := _ENUMS.get((driver, field)):
        return FieldKind(device_class=_DC.ENUM, text=True, options=options)
    suffix = unit_suffix(field)
    if suffix is None or suffix in _TEXT_SUFFIXES:
        return FieldKind(text=True)
    unit, device_class, cumulative = _SUFFIXES[suffix]
    if device_class is _DC.VOLUME:
        # A heat meter's volume is the water through its exchanger, not the house's water.
        media = media.lower()
        if media in _WATER_MEDIA:
            device_class = _DC.WATER
        elif media in _GAS_MEDIA:
            device_class = _DC.GAS
    if cumulative:
        if _SNAPSHOT.search(field.removesuffix(f"_{suffix}")):
            # Not a running total: keep the device class (energy, water) but no statistics.
            return FieldKind(unit, device_class)
        return FieldKind(unit, device_class, _TOTAL, cumulative=True)
    return FieldKind(unit, device_class, _MEASUREMENT)


def field_title(field: str) -> str:
    """A readable fallback name: `flow_temperature_c` -> `Flow temperature`."""
    suffix = unit_suffix(field)
    base = field.removesuffix(f"_{suffix}") if suffix else field
    words = base.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else field

"""What a wmbusmeters field is: unit, device class, state class, from its value and its name.

The rule, in order (the tests apply it to every field of every recorded telegram):

1. Fields with a meaning of their own: `timestamp` (when the telegram was heard) and
   `rssi_dbm`; enum fields a driver documents (a door contact's `status`).
2. The value decides what kind of thing it is. A JSON string is never a number: it is a date
   (`2024-01-31`) or a date and time (`2024-01-31 08:15`, the meter's local time) when the
   field's name says so (a word `date`, `datetime` or `time`) and the value has that shape,
   otherwise text. A JSON number is a number. A `null` (3.0.0: no value) or a value not seen
   yet is read from the name alone: a date word makes a date, a unit suffix a number.
3. A number's unit comes from the name's unit suffix, `<quantity>_<suffix>` (`total_m3`), the
   suffixes of `wmbusmeters --listunits`; its device class from the unit, and for volume from
   the meter's media (water, gas; a heat meter's volume is plain volume).
4. State class: only a register that grows for good (energy, volume, heat cost units, m³·°C)
   is total_increasing, and only while it is the running value: a register read at a past
   date (`target_`, `_at_set_date`, history slots, `prev`, `max`) has no state class (heat
   cost units, which have no unit, are then a measurement). Every other number (a count of
   events, a countdown, a ratio, a temperature) is measurement.
5. A 0 is a known glitch only of a running total of water, gas, energy or volume (some
   meters send 0 in a short telegram): it never overwrites a reading there. Everywhere else
   0 is shown: a heat cost allocator's new period, a countdown that has run out.

Only combinations that Home Assistant's sensor component accepts are produced; the tests
check every one against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
import re
from typing import Any

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
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

_DC = SensorDeviceClass
_TOTAL = SensorStateClass.TOTAL_INCREASING
_MEASUREMENT = SensorStateClass.MEASUREMENT


@dataclass(frozen=True, slots=True)
class FieldKind:
    """How to show one field."""

    unit: str | None = None
    device_class: SensorDeviceClass | None = None
    state_class: SensorStateClass | None = None
    #: A running total of water, gas, energy or volume: a 0 is a glitch, never a reading.
    zero_is_glitch: bool = False
    entity_category: EntityCategory | None = None
    enabled_default: bool = True
    #: The value is text (status words, versions): no unit, no state class.
    text: bool = False
    #: The values of an enum field (the state is the JSON value, one of these).
    options: tuple[str, ...] | None = None

    @property
    def number(self) -> bool:
        """A JSON number is the state as it is (not text, not a date)."""
        return not self.text and self.device_class not in (_DC.TIMESTAMP, _DC.DATE)


# Suffix -> (unit, device class, grows for good?). A register that grows for good gets
# total_increasing while it is the running value, anything else measurement.
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
    "counter": (None, None, False),  # a count of events, a countdown, an index: not a register
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
# Suffixes of points in time and of text: never a number, whatever the value.
_TEXT_SUFFIXES = frozenset({"date", "datetime", "time", "txt", "utc", "ut"})
# A name that labels its value as a date or a date and time (`set_date_2`, `meter_datetime`,
# `meter_datetime_at_error`, `device_date_time`).
_DATE_WORD = re.compile(r"(^|_)(date|datetime|date_time|time|utc)(_|$)")
_DATE_VALUE = re.compile(r"\d{4}-\d\d-\d\d")
_DATETIME_VALUE = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?Z?")

# A register read at a past date (billing date, start of month, history slots): it jumps
# and can go down when the date moves, so it is no running total.
_SNAPSHOT = re.compile(
    r"(^|_)(target|at_set_date|set_date|due_date|prev|previous|last|month|history|max|min|hist)(_|$)"
)
# Running totals whose 0 is a glitch (short telegrams, restarts), by device class.
_GLITCHY_TOTALS = frozenset({_DC.ENERGY, _DC.WATER, _DC.GAS, _DC.VOLUME})

# Fields with their own meaning, whatever their suffix.
_SPECIAL: dict[str, FieldKind] = {
    # "Last telegram" changes with every telegram: enabled, it filled the device page's
    # activity log (HA's logbook records every sensor without a unit) and the recorder with a
    # row per telegram. Off by default, as other integrations' "last seen".
    "timestamp": FieldKind(
        device_class=_DC.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        enabled_default=False,
    ),
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
_TEXT = FieldKind(text=True)
_DATE = FieldKind(device_class=_DC.DATE)
_DATETIME = FieldKind(device_class=_DC.TIMESTAMP)
#: What a name's point-in-time suffix makes of a field with no value yet.
_NAMED_POINTS = {"date": _DATE, "datetime": _DATETIME, "time": _DATETIME, "utc": _DATETIME}
#: A value not seen yet (or 3.0.0's null): the kind is read from the name alone.
NO_VALUE: Any = None


def unit_suffix(field: str) -> str | None:
    """The unit suffix of a field name, if it has one wmbusmeters knows."""
    _, sep, suffix = field.rpartition("_")
    if sep and (suffix in _SUFFIXES or suffix in _TEXT_SUFFIXES):
        return suffix
    return None


def number_suffix(field: str) -> str | None:
    """The unit suffix of a field name, if it is the unit of a number (not `_date`)."""
    suffix = unit_suffix(field)
    return suffix if suffix in _SUFFIXES else None


def field_kind(field: str, value: Any = NO_VALUE, media: str = "", driver: str = "") -> FieldKind:
    """Describe a field of a meter of the given media (`cold water`, `gas`, `heat`, ...) from
    the value it carries (see the module's docstring for the rule)."""
    if special := _SPECIAL.get(field) or _enum_kind(driver, field):
        return special
    if isinstance(value, str):
        return _text_kind(field, value)
    if isinstance(value, bool):
        return _TEXT  # not in any recorded telegram: shown as it is, never counted
    suffix = unit_suffix(field)
    if suffix in _SUFFIXES:
        return _number_kind(field, suffix, media)
    if value is NO_VALUE:
        return _NAMED_POINTS.get(suffix or "", _TEXT)
    return FieldKind(state_class=_MEASUREMENT)  # a number with no unit


def _enum_kind(driver: str, field: str) -> FieldKind | None:
    options = _ENUMS.get((driver, field))
    return FieldKind(device_class=_DC.ENUM, text=True, options=options) if options else None


def _text_kind(field: str, value: str) -> FieldKind:
    """A date or a date and time where the name says so and the value has the shape."""
    if _DATE_WORD.search(field):
        if _DATE_VALUE.fullmatch(value):
            return _DATE
        if _DATETIME_VALUE.fullmatch(value):
            return _DATETIME
    return _TEXT


def _number_kind(field: str, suffix: str, media: str) -> FieldKind:
    unit, device_class, grows = _SUFFIXES[suffix]
    if device_class is _DC.VOLUME:
        # A heat meter's volume is the water through its exchanger, not the house's water.
        media = media.lower()
        if media in _WATER_MEDIA:
            device_class = _DC.WATER
        elif media in _GAS_MEDIA:
            device_class = _DC.GAS
    if not grows:
        return FieldKind(unit, device_class, _MEASUREMENT)
    if _SNAPSHOT.search(field.removesuffix(f"_{suffix}")):
        # Not a running total: keep the device class (energy, water) but no statistics. A
        # register with neither unit nor class (heat cost units) is a measurement: a number
        # needs one of the three to be read back as a number from the entity registry.
        if device_class is None and unit is None:
            return FieldKind(state_class=_MEASUREMENT)
        return FieldKind(unit, device_class)
    return FieldKind(unit, device_class, _TOTAL, zero_is_glitch=device_class in _GLITCHY_TOTALS)


def registered_kind(field: str, entry: er.RegistryEntry, driver: str) -> FieldKind:
    """The kind an entity was registered with (a run before this one), read back from the
    entity registry: device class, state class and unit say what it was."""
    capabilities = entry.capabilities or {}
    return kind_from_description(
        field,
        driver,
        device_class=entry.original_device_class,
        state_class=capabilities.get("state_class"),
        unit=entry.unit_of_measurement,
        options=capabilities.get("options"),
    )


def kind_from_description(
    field: str,
    driver: str,
    *,
    device_class: str | None,
    state_class: str | None,
    unit: str | None,
    options: list[str] | None,
) -> FieldKind:
    """The kind whose description has these classes, unit and options (units.py's rule gives
    every kind it makes at least one of them, or none for text)."""
    sample: Any
    if options:
        return FieldKind(device_class=SensorDeviceClass.ENUM, text=True, options=tuple(options))
    if device_class == SensorDeviceClass.DATE:
        sample = "2000-01-01"
    elif device_class == SensorDeviceClass.TIMESTAMP:
        sample = "2000-01-01 00:00"
    elif device_class is None and state_class is None and unit is None:
        sample = ""  # text
    else:
        sample = 0  # a number
    media = {SensorDeviceClass.WATER: "water", SensorDeviceClass.GAS: "gas"}.get(
        device_class,  # type: ignore[call-overload]
        "",
    )
    return field_kind(field, sample, media, driver)


def family(kind: FieldKind) -> str:
    if kind.number:
        return "number"
    return str(kind.device_class) if kind.device_class is not None else "text"


def _numeric_text(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def shows_wrongly(registered: FieldKind, value: Any, driver: str, field: str, media: str) -> bool:
    """Whether an entity registered by an earlier version of this rule cannot show the value
    (a date under a unit-like name was registered as a number): it is described again, once."""
    if value is None or value == "":
        return False
    new = field_kind(field, value, media, driver)
    if family(new) == family(registered):
        return False
    # A number as text in a numeric entity is still shown as a number.
    return not (registered.number and _numeric_text(value))


def _timestamp(value: Any) -> datetime | None:
    """wmbusmeters' `timestamp` is UTC (`...Z`); a meter's own date and time is its local
    time, taken as Home Assistant's time zone."""
    if not isinstance(value, str):
        return None
    parsed = dt_util.parse_datetime(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_util.get_default_time_zone())
    return parsed


def _date(value: Any) -> date | None:
    """A meter's date (`2024-01-31`); an impossible one (`2000-00-00`) is unknown."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


POINTS_IN_TIME: dict[SensorDeviceClass | None, Callable[[Any], datetime | date | None]] = {
    SensorDeviceClass.TIMESTAMP: _timestamp,
    SensorDeviceClass.DATE: _date,
}

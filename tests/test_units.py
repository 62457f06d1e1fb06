"""The rule of units.py (what a field is, from its value and its name) and of names.py, on
every unit suffix wmbusmeters 2.0.0 and 3.0.0 print and on every field of every telegram they
printed in the recorded fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.components.sensor import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
    SensorStateClass,
)
import pytest

from custom_components.wmbusmeters.names import DeviceNames, field_title, preferred_name
from custom_components.wmbusmeters.units import (
    FieldKind,
    field_kind,
    kind_from_description,
    unit_suffix,
)
from custom_components.wmbusmeters.wmbus import Telegram

from .conftest import BINARIES, FIXTURES, fixture_text

SUFFIXES = sorted(
    {
        line.split("\t")[0]
        for version in BINARIES
        for line in fixture_text("units.tsv", version).splitlines()
        if line and not line.startswith("#")
    }
)
MEDIA = ["cold water", "warm water", "gas", "heat", "electricity", "heat cost allocation", ""]
ENGLISH = {
    key: value["name"]
    for key, value in json.loads(
        (
            Path(__file__).parent.parent / "custom_components/wmbusmeters/translations/en.json"
        ).read_text()
    )["entity"]["sensor"].items()
    if "name" in value  # (`text` holds the states of any text, no name)
}
#: Registers that grow for good: the only total_increasing sensors.
GROWING = {"kwh", "mwh", "wh", "gj", "mj", "kvarh", "kvah", "m3c", "hca", "m3", "l"}


def recorded_telegrams(version: str) -> list[Telegram]:
    """Every telegram the real wmbusmeters of this version printed in the fixtures: the
    recorded cases, and upstream's test telegram of each of its drivers (driver-tests/)."""
    telegrams = []
    paths = [
        *sorted((FIXTURES.parent / f"wmbusmeters-{version}").glob("*.stdout.jsonl")),
        FIXTURES.parent / "driver-tests" / f"wmbusmeters-{version}.jsonl",
    ]
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("{") and (telegram := Telegram.from_json(json.loads(line))):
                telegrams.append(telegram)
    assert telegrams, version
    return telegrams


def assert_valid_for_home_assistant(kind: FieldKind, field: str) -> None:
    """Unit in the device class's units; state class allowed for it; text has neither."""
    if kind.device_class is not None:
        allowed_units = DEVICE_CLASS_UNITS.get(kind.device_class)
        if allowed_units is not None:
            assert kind.unit in allowed_units, field
        allowed_states = DEVICE_CLASS_STATE_CLASSES.get(kind.device_class, set(SensorStateClass))
        if kind.state_class is not None:
            assert kind.state_class in allowed_states, field
    if kind.text or kind.device_class in (SensorDeviceClass.DATE, SensorDeviceClass.TIMESTAMP):
        assert kind.unit is None, field
        assert kind.state_class is None, field


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_suffix_is_valid(suffix: str) -> None:
    """A number (or a null, read from its name) under every suffix, for every media and kind
    of register: a valid combination."""
    for base in ("total", "target", "current", "consumption_at_set_date"):
        field = f"{base}_{suffix}"
        assert unit_suffix(field) == suffix
        for media in MEDIA:
            for value in (12.5, 0, None):
                assert_valid_for_home_assistant(field_kind(field, value, media), field)


@pytest.mark.parametrize("version", list(BINARIES))
def test_every_recorded_field(version: str) -> None:
    """Each field of each recorded telegram, described from its value: strings are never
    numbers, labelled dates are dates, only growing registers are total_increasing, and a 0
    is a glitch only of a running total of water, gas, energy or volume."""
    seen = 0
    for telegram in recorded_telegrams(version):
        for field, value in telegram.readings.items():
            kind = field_kind(field, value, telegram.media, telegram.driver)
            seen += 1
            assert_valid_for_home_assistant(kind, field)
            if isinstance(value, str):
                assert not kind.number, (field, value)
                if "date" in field.split("_") and value[:4].isdigit() and len(value) == 10:
                    assert kind.device_class is SensorDeviceClass.DATE, (field, value)
            elif isinstance(value, int | float):
                assert kind.number, (field, value)
            if kind.state_class is SensorStateClass.TOTAL_INCREASING:
                assert unit_suffix(field) in GROWING, field
            if kind.zero_is_glitch:
                assert kind.device_class in (
                    SensorDeviceClass.WATER,
                    SensorDeviceClass.GAS,
                    SensorDeviceClass.ENERGY,
                    SensorDeviceClass.VOLUME,
                ), field
    assert seen > 3000


@pytest.mark.parametrize("version", list(BINARIES))
def test_registered_description_reads_back_as_the_same_kind(version: str) -> None:
    """After a restart an entity is described from what the entity registry kept (its
    classes, unit, options): for every recorded field that gives back the very kind its first
    value gave, so no entity is described again at a restart."""
    for telegram in recorded_telegrams(version):
        for field, value in telegram.readings.items():
            if value is None:
                continue
            kind = field_kind(field, value, telegram.media, telegram.driver)
            back = kind_from_description(
                field,
                telegram.driver,
                device_class=kind.device_class,
                state_class=kind.state_class,
                unit=kind.unit,
                options=list(kind.options) if kind.options else None,
            )
            assert back == kind, (telegram.driver, field, value)


@pytest.mark.parametrize("version", list(BINARIES))
def test_names_unique_on_every_recorded_telegram(version: str) -> None:
    """The names of one meter's entities never collide, as the user reads them (English)."""
    for telegram in recorded_telegrams(version):
        names = DeviceNames(ENGLISH)
        shown = []
        for field, value in telegram.readings.items():
            name = names.name_for(field, field_kind(field, value, telegram.media, telegram.driver))
            text = ENGLISH[name.translation_key] if name.translation_key else name.name
            assert text, field
            shown.append(text.casefold())
        assert len(shown) == len(set(shown)), (telegram.driver, sorted(shown))


def test_value_decides_over_the_name() -> None:
    """A string is never a number, whatever its name's suffix; labelled dates are dates."""
    assert field_kind("error_a", "ERROR_FLAGS", "water").text  # `_a` is not ampere here
    assert field_kind("date_last_month", "2024-01-31", "water").device_class == "date"
    assert field_kind("reading_month", "2024-01", "water").text
    assert field_kind("meter_datetime", "2024-01-31 08:15", "water").device_class == "timestamp"
    assert field_kind("set_date_2", "2024-01-31", "heat").device_class == "date"
    assert field_kind("meter_datetime_at_error", "2019-05-06 10:30", "").device_class == (
        "timestamp"
    )
    assert field_kind("battery_level", "3.00V").text
    assert field_kind("manufacture_y", "2019").text
    assert field_kind("manufacture_y", 2019).unit == "y"
    # A null (3.0.0) is read from the name.
    assert field_kind("prev_date", None).device_class == "date"
    assert field_kind("total_m3", None, "water").device_class == "water"
    assert field_kind("status", None).text


def test_volume_depends_on_media() -> None:
    """Water for water meters, gas for gas meters, plain volume for a heat meter."""
    assert field_kind("total_m3", 1.0, "cold water").device_class is SensorDeviceClass.WATER
    assert field_kind("total_m3", 1.0, "gas").device_class is SensorDeviceClass.GAS
    assert field_kind("total_m3", 1.0, "heat").device_class is SensorDeviceClass.VOLUME


def test_totals_snapshots_counters_and_zeros() -> None:
    """Running totals feed statistics; registers read at a past date and counts do not count
    up; a 0 is a glitch only of a running total of water, gas, energy or volume."""
    total = field_kind("total_energy_consumption_kwh", 1.0, "electricity")
    assert total.state_class is SensorStateClass.TOTAL_INCREASING
    assert total.zero_is_glitch
    target = field_kind("target_m3", 1.0, "cold water")
    assert target.state_class is None
    assert target.device_class is SensorDeviceClass.WATER
    assert not target.zero_is_glitch
    hca = field_kind("current_consumption_hca", 0, "heat cost allocation")
    assert hca.state_class is SensorStateClass.TOTAL_INCREASING  # a yearly reset is a new cycle
    assert not hca.zero_is_glitch  # ... and its 0 is shown
    for counter in ("active_tariff_counter", "seconds_to_mode_change_counter", "alfa_counter"):
        kind = field_kind(counter, 0, "electricity")
        assert kind.state_class is SensorStateClass.MEASUREMENT, counter
        assert not kind.zero_is_glitch
    assert field_kind("flow_temperature_c", 1.0).state_class is SensorStateClass.MEASUREMENT
    assert field_kind("status", "OK").text
    assert field_kind("set_date", "2024-01-31").device_class is SensorDeviceClass.DATE


def test_names() -> None:
    """Translated where a translation exists (for the number, not for a date under the same
    word); derived from the field otherwise; never two alike on a device."""
    number = field_kind("flow_temperature_c", 1.0)
    assert field_title("flow_temperature_c", number) == "Flow temperature"
    assert field_title("time_dry", field_kind("time_dry", "22-31 days")) == "Time dry"
    assert preferred_name("total_m3", field_kind("total_m3", 1.0)).translation_key == "total"
    target_date = preferred_name("target_date", field_kind("target_date", "2024-01-31"))
    assert target_date.translation_key is None
    assert target_date.name == "Target date"
    names = DeviceNames(ENGLISH)
    meter_date = names.name_for("meter_date", field_kind("meter_date", "2024-01-31"))
    meter_datetime = names.name_for(
        "meter_datetime", field_kind("meter_datetime", "2024-01-31 08:15")
    )
    assert (meter_date.name, meter_datetime.name) == ("Meter date", "Meter datetime")
    kwh = names.name_for("total_kwh", field_kind("total_kwh", 1.0, "heat"))
    gj = names.name_for("total_gj", field_kind("total_gj", 1.0, "heat"))
    assert kwh.translation_key == "total"
    assert gj.name == "Total (GJ)"
    # A name of its own that reads like a translated one is taken too.
    other = names.name_for("total", field_kind("total", "x"))
    assert other.translation_key is None
    assert other.name == "Total (total)"


def test_enum_fields_per_driver() -> None:
    """A door contact's status is an enum; every other driver's status stays text."""
    door = field_kind("status", "OPEN", "reserved", "lansendw")
    assert door.device_class is SensorDeviceClass.ENUM
    assert door.options == ("OPEN", "CLOSED")
    assert door.state_class is None
    assert door.unit is None
    water = field_kind("status", "OK", "water", "multical21")
    assert water.text
    assert water.options is None
    assert water.device_class is None

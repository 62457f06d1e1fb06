"""Every unit suffix wmbusmeters 2.0.0 and 3.0.0 print maps to a combination Home Assistant
accepts."""

from __future__ import annotations

from homeassistant.components.sensor import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
    SensorStateClass,
)
import pytest

from custom_components.wmbusmeters.units import field_kind, field_title, unit_suffix
from custom_components.wmbusmeters.wmbus import FieldInfo
from custom_components.wmbusmeters.wmbus.upgrades import renamed_driver, renamed_field

from .conftest import BINARIES, fixture_text

SUFFIXES = sorted(
    {
        line.split("\t")[0]
        for version in BINARIES
        for line in fixture_text("units.tsv", version).splitlines()
        if line and not line.startswith("#")
    }
)
MEDIA = ["cold water", "warm water", "gas", "heat", "electricity", "heat cost allocation", ""]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("media", MEDIA)
@pytest.mark.parametrize("base", ["total", "target", "current", "consumption_at_set_date"])
def test_every_suffix_is_valid(suffix: str, media: str, base: str) -> None:
    """Unit in the device class's units; state class allowed for it."""
    field = f"{base}_{suffix}"
    kind = field_kind(field, media)
    assert unit_suffix(field) == suffix
    if kind.device_class is not None:
        allowed_units = DEVICE_CLASS_UNITS.get(kind.device_class)
        if allowed_units is not None:
            assert kind.unit in allowed_units, field
        allowed_states = DEVICE_CLASS_STATE_CLASSES.get(kind.device_class, set(SensorStateClass))
        if kind.state_class is not None:
            assert kind.state_class in allowed_states, field
    if kind.text:
        assert kind.unit is None
        assert kind.state_class is None


def test_volume_depends_on_media() -> None:
    """Water for water meters, gas for gas meters, plain volume for a heat meter."""
    assert field_kind("total_m3", "cold water").device_class is SensorDeviceClass.WATER
    assert field_kind("total_m3", "gas").device_class is SensorDeviceClass.GAS
    assert field_kind("total_m3", "heat").device_class is SensorDeviceClass.VOLUME


def test_totals_and_snapshots() -> None:
    """Running totals feed statistics; registers read at a past date do not."""
    total = field_kind("total_energy_consumption_kwh", "electricity")
    assert total.state_class is SensorStateClass.TOTAL_INCREASING
    assert total.cumulative
    target = field_kind("target_m3", "cold water")
    assert target.state_class is None
    assert target.device_class is SensorDeviceClass.WATER
    assert field_kind("flow_temperature_c").state_class is SensorStateClass.MEASUREMENT
    assert field_kind("status").text
    assert field_kind("set_date").text


def test_fallback_names() -> None:
    """Readable names for fields without a translation."""
    assert field_title("flow_temperature_c") == "Flow temperature"
    assert field_title("time_dry") == "Time dry"


def test_enum_fields_per_driver() -> None:
    """A door contact's status is an enum; every other driver's status stays text."""
    door = field_kind("status", "reserved", "lansendw")
    assert door.device_class is SensorDeviceClass.ENUM
    assert door.options == ("OPEN", "CLOSED")
    assert door.state_class is None
    assert door.unit is None
    water = field_kind("status", "water", "multical21")
    assert water.text
    assert water.options is None
    assert water.device_class is None


def test_field_templates_match_indexed_fields() -> None:
    """--listfields documents indexed fields as templates; telegrams carry their instances."""
    template = FieldInfo("target_{storage_counter}_kwh", "")
    assert template.matches("target_2_kwh")
    assert template.matches("target_18_kwh")
    assert not template.matches("target_kwh")
    assert not template.matches("target_x_kwh")
    assert FieldInfo("total_m3", "").matches("total_m3")
    assert not FieldInfo("total_m3", "").matches("total_m3c")


def test_renames_only_where_the_binary_shows_them() -> None:
    """A driver is renamed only if the binary lacks the old name and has the new; a field only
    if the telegram carries the new name instead of the old one."""
    assert renamed_driver("multical21", {"kamwater", "auto"}) == "kamwater"
    assert renamed_driver("multical21", {"multical21", "kamwater"}) is None  # 2.0.0 has both
    assert renamed_driver("multical21", {"auto"}) is None  # nothing to rename it to
    assert renamed_driver("wme5", {"qwater2"}) is None  # removed, not renamed: a repair
    had = {"total_m3", "external_temperature_c", "device_date_time"}
    month = "min_external_temperature_last_month_c"
    assert renamed_field("kamwater", month, had, {month, "total_m3"}) == "external_temperature_c"
    # Both old and new in one telegram: a new field, not a rename.
    assert renamed_field("kamwater", month, had, {month, "external_temperature_c"}) is None
    # The generic suffix fix of 3.0.0, for any driver.
    assert renamed_field("anydriver", "device_datetime", had, {"device_datetime"}) == (
        "device_date_time"
    )
    assert renamed_field("anydriver", "meter_datetime", had, {"meter_datetime"}) is None

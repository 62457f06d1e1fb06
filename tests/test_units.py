"""Every unit suffix wmbusmeters 2.0.0 prints maps to a combination Home Assistant accepts."""

from __future__ import annotations

from homeassistant.components.sensor import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
    SensorStateClass,
)
import pytest

from custom_components.wmbusmeters.units import field_kind, field_title, unit_suffix

from .conftest import fixture_text

SUFFIXES = [
    line.split("\t")[0]
    for line in fixture_text("units.tsv").splitlines()
    if line and not line.startswith("#")
]
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

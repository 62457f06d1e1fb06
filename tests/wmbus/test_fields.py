"""What a driver's fields are called: the templates --listfields documents, and the renames
between wmbusmeters versions."""

from __future__ import annotations

from custom_components.wmbusmeters.wmbus import FieldInfo
from custom_components.wmbusmeters.wmbus.upgrades import renamed_driver, renamed_field


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

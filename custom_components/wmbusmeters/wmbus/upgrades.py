"""What users' configurations depend on that changed between wmbusmeters releases.

Kept as data, from upstream's CHANGES file (3.0.0's "ATTENTION!" entries), and applied only
where the running binary shows the change: a driver is renamed only when the binary does not
know the old name but knows the new one; a field only when a meter's telegram carries the new
name and not the old. So the same tables are harmless on 2.0.0.
"""

from __future__ import annotations

from collections.abc import Collection

#: Drivers that a newer wmbusmeters has under another name (merged drivers included): the
#: JSON of the new driver carries the same readings (field renames below).
DRIVER_RENAMES: dict[str, str] = {
    "multical21": "kamwater",  # 3.0.0: multical21 and flowiq2200 merged into kamwater
    "flowiq2200": "kamwater",
    "engelmann-faw": "engelmann_faw",  # 3.0.0
}

#: Drivers removed, with upstream's suggested replacement. Not applied by itself (its
#: fields differ): the user confirms it in a repair.
DRIVER_REPLACEMENTS: dict[str, str] = {
    "wme5": "qwater2",  # 3.0.0: "Removed wme5 driver that is handled by qwater2 instead."
}

#: Per driver (its name in the newer release): old field -> the new field(s). Where upstream
#: says "depending on meter", the meter's own telegram decides which one it is. Upstream's
#: list, completed with what the 3.0.0 binary prints for the recorded 2.0.0 telegrams.
FIELD_RENAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "kamwater": {
        "external_temperature_c": (
            "min_external_temperature_last_month_c",
            "min_external_temperature_last_day_c",
        ),
        "min_external_temperature_c": (  # a flowIQ 2200's
            "min_external_temperature_last_day_c",
            "min_external_temperature_last_month_c",
        ),
    },
    "lse_07_17": {"due_date_m3": ("due_m3",)},
    "unismart": {"meter_timestamp": ("meter_datetime",)},
    "iem3000": {
        "partial_reactive_energy_consumption_kwh": ("partial_reactive_energy_consumption_kvarh",)
    },
}

#: Renamed unit suffixes, new -> old, in every driver: 3.0.0 "fixed" `_date_time` to `_datetime`
#: ("a remnant from the old days where date and time units where not enforced").
SUFFIX_RENAMES: dict[str, str] = {"_datetime": "_date_time"}


def renamed_driver(driver: str, known: Collection[str]) -> str | None:
    """The name a binary that does not know `driver` has for it, if it was renamed."""
    if driver in known:
        return None
    new = DRIVER_RENAMES.get(driver)
    return new if new is not None and new in known else None


def renamed_field(
    driver: str, field: str, had: Collection[str], sent: Collection[str]
) -> str | None:
    """The old field that `field` replaces, for a meter of `driver` that had the fields `had`
    (its entities) and sent `sent` in one telegram; None if it is a new field."""
    candidates = [old for old, new in FIELD_RENAMES.get(driver, {}).items() if field in new]
    for suffix, old_suffix in SUFFIX_RENAMES.items():
        if field.endswith(suffix):
            candidates.append(field.removesuffix(suffix) + old_suffix)
    return next((old for old in candidates if old in had and old not in sent), None)

"""The past readings one telegram carries (wmbus/history.py), over every telegram the real
binaries printed for upstream's driver tests (tests/fixtures/driver-tests): a golden file of
the points, read and reviewed; the same points from 2.0.0's names as from 3.0.0's; the traps.

After a change of the rule: `WMBUS_GOLDEN=write` rewrites tests/fixtures/history/points.jsonl;
read its diff before committing it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
import json
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.wmbusmeters.wmbus.history import (
    MAX_GAP,
    ImportPlan,
    Point,
    history_points,
    import_plan,
    parse_date,
    reading_time,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
GOLDEN = FIXTURES / "history" / "points.jsonl"
VERSIONS = ("2.0.0", "3.0.0")


def telegrams(version: str) -> list[dict[str, Any]]:
    path = FIXTURES / "driver-tests" / f"wmbusmeters-{version}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def points_of(telegram: dict[str, Any]) -> list[Point]:
    """As a receiver reads them: `now` is when the telegram came (its timestamp, UTC: the
    recording's zone)."""
    now = datetime.fromisoformat(telegram["timestamp"]).astimezone(UTC).replace(tzinfo=None)
    return history_points(telegram, telegram["meter"], now=now, tz=UTC)


def golden_lines() -> list[str]:
    lines = []
    for version in VERSIONS:
        for telegram in telegrams(version):
            if points := points_of(telegram):
                lines.append(
                    json.dumps(
                        {
                            "version": version,
                            "meter": telegram["meter"],
                            "name": telegram["name"],
                            "id": telegram["id"],
                            "points": [
                                [p.total, p.register, p.date_field, p.at.isoformat(), p.value]
                                for p in points
                            ],
                        }
                    )
                )
    return lines


def test_golden_points() -> None:
    """Every point of every recorded telegram is the reviewed one."""
    lines = golden_lines()
    if os.environ.get("WMBUS_GOLDEN") == "write":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("\n".join(lines) + "\n")
    assert lines == GOLDEN.read_text().splitlines()


def test_how_many_drivers_bring_history() -> None:
    """Of 3.0.0's drivers in the corpus, how many give at least one point and at least three
    points of one total (the closing note quotes them; a change of the rule shows here)."""
    most: dict[str, int] = defaultdict(int)
    for telegram in telegrams("3.0.0"):
        per_total: dict[str, int] = defaultdict(int)
        for point in points_of(telegram):
            per_total[point.total] += 1
        most[telegram["meter"]] = max(most[telegram["meter"]], *per_total.values(), 0)
    assert len(most) == 119
    assert sum(n >= 1 for n in most.values()) == 41
    assert sorted(d for d, n in most.items() if n >= 3) == [
        "engelmann_faw",
        "evo868",
        "hydrodigit",
        "microclima",
        "qheat_55_us",
        "waterstarm",
    ]


def test_the_meters_clock_dates_its_registers_as_its_own_dates_do() -> None:
    """Upstream's engelmann_faw and qheat_55_us telegrams carry registers dated by the meter's
    clock (`consumption_5_months_ago_m3`, `prev_5_month_kwh`) and one with a date of its own
    (`consumption_at_reporting_date_m3`, `key_datetime_kwh`): that day is kept, so both say
    the same reading (two that differ would drop the day: history.py), and without the dated
    one the clock still gives that day."""
    agreed = []
    for telegram in telegrams("3.0.0"):
        points = points_of(telegram)
        clock_only = history_points(
            {k: v for k, v in telegram.items() if k not in ("key_datetime", "reporting_date")},
            telegram["meter"],
        )
        for field in ("key_datetime", "reporting_date"):
            if (at := parse_date(telegram.get(field))) is None:
                continue
            if at in {p.at for p in points if p.date_field == field} and at.date() in {
                p.at.date() for p in clock_only if p.relative
            }:
                agreed.append(telegram["meter"])
    assert set(agreed) == {"engelmann_faw", "qheat_55_us"}


#: Where the binaries themselves differ (not the names): 2.0.0's apatorna1 prints no historic
#: reading; 2.0.0's qheatv2 decodes the year register as the total and has no month register.
BINARIES_DIFFER = {("ApNa1", "04913581"), ("QQ1", "68204641"), ("QQA", "67958979")}


def test_the_same_points_from_both_versions() -> None:
    """2.0.0 names fields otherwise (`prev_1_month` for 3.0.0's `prev_1_month_date`,
    `target_date_time`, UTC dates `...T02:00:00Z`): each meter both print has the same past
    readings, by date and value."""
    found: dict[str, dict[tuple[str, str], set[tuple[str, float]]]] = {}
    for version in VERSIONS:
        by_meter: dict[tuple[str, str], set[tuple[str, float]]] = defaultdict(set)
        for telegram in telegrams(version):
            by_meter[telegram["name"], telegram["id"]] |= {
                (point.at.date().isoformat(), point.value) for point in points_of(telegram)
            }
        found[version] = by_meter
    old, new = found["2.0.0"], found["3.0.0"]
    both = old.keys() & new.keys()
    assert len(both) > 150
    differ = {meter for meter in both if old[meter] != new[meter]}
    assert differ == BINARIES_DIFFER
    assert sum(bool(old[meter]) for meter in both) > 40


def reading(**fields: Any) -> dict[str, Any]:
    return {"total_m3": 100.0, **fields}


NOW = datetime(2026, 1, 15, 12, 0)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"target_m3": 90.0, "target_date": "2025-12-31"}, [("target_m3", "2025-12-31", 90.0)]),
        # Placeholders and values that are none.
        ({"target_m3": 90.0, "target_date": "2127-15-31"}, []),
        ({"target_m3": 90.0, "target_date": "2128-03-31"}, []),
        ({"target_m3": 90.0, "target_date": "2000-00-00"}, []),
        ({"target_m3": 90.0, "target_date": "1999-11-30"}, []),
        ({"target_m3": -2147483648, "target_date": "2025-12-31"}, []),
        ({"target_m3": None, "target_date": "2025-12-31"}, []),
        # Above the live total, or later than the telegram.
        ({"target_m3": 100.5, "target_date": "2025-12-31"}, []),
        ({"target_m3": 90.0, "target_date": "2026-01-16"}, []),
        # A heat-cost allocator's value at its set date is a period total.
        ({"consumption_at_set_date_hca": 9.0, "set_date": "2025-12-31"}, []),
        # A series that falls is consumption per period: only what can be readings stays.
        (
            {
                "target_1_m3": 80.0,
                "target_1_date": "2025-10-31",
                "target_2_m3": 20.0,
                "target_2_date": "2025-11-30",
                "target_3_m3": 95.0,
                "target_3_date": "2025-12-31",
            },
            [("target_2_m3", "2025-11-30", 20.0), ("target_3_m3", "2025-12-31", 95.0)],
        ),
        # The date inside the register's name; a numbered series; the date's base a prefix.
        (
            {"consumption_at_set_date_2_m3": 70.0, "set_date_2": "2025-06-30"},
            [("consumption_at_set_date_2_m3", "2025-06-30", 70.0)],
        ),
        (
            {"consumption_at_history_3_m3": 60.0, "history_3_date": "2025-05-31"},
            [("consumption_at_history_3_m3", "2025-05-31", 60.0)],
        ),
        (
            {"target_volume_m3": 50.0, "target_date": "2025-04-30"},
            [("target_volume_m3", "2025-04-30", 50.0)],
        ),
        # A misfit, from its table.
        (
            {"last_month_total_m3": 99.0, "last_month_measure_date": "2025-12-31"},
            [("last_month_total_m3", "2025-12-31", 99.0)],
        ),
        # A number without a date is no history.
        ({"target_m3": 90.0}, []),
        # Dated by the meter's clock: the last April that ended before it; two months before
        # its month; without a clock, nothing.
        (
            {"April_total_m3": 50.0, "meter_datetime": "2025-03-15 10:00"},
            [("April_total_m3", "2024-04-30", 50.0)],
        ),
        (
            {"consumption_2_months_ago_m3": 80.0, "meter_datetime": "2025-03-15 10:00"},
            [("consumption_2_months_ago_m3", "2025-01-31", 80.0)],
        ),
        (
            {"prev_2_month_kwh": 1.0, "total_kwh": 2.0, "prev_month_datetime": "2025-02-28"},
            [("prev_2_month_kwh", "2025-01-31", 1.0)],
        ),
        ({"April_total_m3": 50.0}, []),
    ],
)
def test_traps(fields: dict[str, Any], expected: list[tuple[str, str, float]]) -> None:
    points = history_points(reading(**fields), now=NOW)
    assert [(p.register, p.at.date().isoformat(), p.value) for p in points] == expected


def test_a_period_register_is_no_reading() -> None:
    """mkradio3a's target is a month's use (NOT_READINGS): the same names of another driver
    are a reading."""
    fields = {"total_m3": 948.8, "target_m3": 9.3, "target_date": "2024-11-28"}
    assert history_points(fields, "mkradio3a", now=NOW) == []
    assert [p.value for p in history_points(fields, "mkradio3", now=NOW)] == [9.3]


def test_a_register_finds_the_total_of_its_quantity() -> None:
    """Several totals of one unit: each register to the one whose qualifier it has."""
    points = history_points(
        {
            "total_kwh": 10.0,
            "total_tariff2_kwh": 4.0,
            "total_subunit1_m3": 7.0,
            "total_water_m3": 3.0,
            "target_kwh": 9.0,
            "target_tariff2_kwh": 3.5,
            "target_subunit1_m3": 6.0,
            "target_water_m3": 2.0,
            "target_date": "2025-12-31",
        },
        now=NOW,
    )
    assert {(p.register, p.total) for p in points} == {
        ("target_kwh", "total_kwh"),
        ("target_tariff2_kwh", "total_tariff2_kwh"),
        ("target_subunit1_m3", "total_subunit1_m3"),
        ("target_water_m3", "total_water_m3"),
    }


def test_dates_as_each_version_prints_them() -> None:
    assert parse_date("2025-12-31") == datetime(2025, 12, 31)
    assert parse_date("2025-12-31 23:59") == datetime(2025, 12, 31, 23, 59)
    # 2.0.0: UTC, turned to the local zone.
    cet = timezone(timedelta(hours=1))
    assert parse_date("2025-12-30T23:00:00Z", cet) == datetime(2025, 12, 31)
    assert parse_date("31.12.2025") is None


# -- the rows a total's points become (import_plan) --------------------------------------------

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def point(day: str, value: float, total: str = "total_m3") -> Point:
    return Point(total, "target_m3", "target_date", datetime.fromisoformat(day), value)


def plan(points: list[Point], **kwargs: Any) -> ImportPlan | None:
    defaults: dict[str, Any] = {
        "tz": COPENHAGEN,
        "recorded_start": datetime(2024, 12, 10, 8, 0, tzinfo=UTC),
        "recorded_zero": 34.134,
    }
    return import_plan(points, **(defaults | kwargs))


def test_a_date_alone_is_a_month_start_on_the_first_else_the_day_end() -> None:
    """Kamstrup's 2020-10-01 is the reading as October began; izar's 2019-09-30 the reading
    as September ended: both land in the hour that ends at local midnight between the two
    months, so the dashboard's monthly bars split where the meter split them."""
    assert reading_time(point("2020-10-01", 1)) == datetime(2020, 10, 1)
    assert reading_time(point("2019-09-30", 1)) == datetime(2019, 10, 1)
    assert reading_time(point("2022-12-31 23:59", 1)) == datetime(2022, 12, 31, 23, 59)
    found = plan(
        [point("2024-09-30", 30.0), point("2024-11-01", 33.0)],
        recorded_zero=34.0,
    )
    assert found is not None
    # Local midnight (CEST, then CET) is the end of each row's hour.
    assert [row.start for row in found.rows] == [
        datetime(2024, 9, 30, 21, 0, tzinfo=UTC),
        datetime(2024, 10, 31, 22, 0, tzinfo=UTC),
    ]
    assert [row.start + timedelta(hours=1) for row in found.rows] == [
        datetime(2024, 10, 1, tzinfo=COPENHAGEN),
        datetime(2024, 11, 1, tzinfo=COPENHAGEN),
    ]


def test_sums_start_at_zero_and_the_recorded_ones_go_on_from_them() -> None:
    found = plan([point("2024-09-30", 30.0), point("2024-10-31", 31.5), point("2024-11-30", 33.0)])
    assert found is not None
    assert [(row.state, row.sum) for row in found.rows] == [(30.0, 0.0), (31.5, 1.5), (33.0, 3.0)]
    # The recorder began at 34.134 with sum 0: its sums move up by what the meter used since
    # the first register.
    assert found.adjustment == pytest.approx(34.134 - 30.0)


def test_only_hours_before_the_first_recorded_one() -> None:
    """The recorder's own rows are never written over: a register in or after its first
    hour adds nothing (the meter was heard since: its own readings are there)."""
    recorded = datetime(2024, 11, 30, 22, 0, tzinfo=UTC)  # 2024-11-30 23:00 local
    found = plan(
        [point("2024-10-31", 31.5), point("2024-11-30", 33.0)],
        recorded_start=recorded.replace(minute=25),
    )
    assert found is not None
    assert [row.state for row in found.rows] == [31.5]
    assert plan([point("2024-11-30", 33.0)], recorded_start=recorded) is None


def test_nothing_above_the_reading_the_recorder_began_at() -> None:
    """A register above the first recorded reading cannot be an earlier reading of it."""
    found = plan([point("2024-10-31", 31.5), point("2024-11-30", 35.0)])
    assert found is not None
    assert [row.state for row in found.rows] == [31.5]
    assert plan([point("2024-11-30", 35.0)]) is None


def test_an_old_newest_register_adds_nothing() -> None:
    """More than MAX_GAP between the newest register and the first recorded hour: that hour
    would carry all the use in between."""
    points = [point("2024-09-30", 30.0), point("2024-10-31", 31.5)]
    end = datetime(2024, 10, 31, 23, tzinfo=UTC)  # 2024-11-01 00:00 local
    assert plan(points, recorded_start=end + MAX_GAP) is not None
    # (two hours of slack: a daylight saving change between local dates)
    assert plan(points, recorded_start=end + MAX_GAP + timedelta(hours=3)) is None


def test_readings_end_at_the_first_long_gap() -> None:
    """A year's set date beside monthly registers (`due_date_m3` and `due_17_date_m3`,
    `target_year_kwh` and `target_kwh`): the year's reading is left out, or one hour of the
    month after it would carry eleven months of use."""
    found = plan([point("2023-12-31", 20.0), point("2024-10-31", 31.5), point("2024-11-30", 33.0)])
    assert found is not None
    assert [row.state for row in found.rows] == [31.5, 33.0]
    assert found.adjustment == pytest.approx(34.134 - 31.5)
    # Two month ends 62 days apart (July and August) are one step.
    found = plan([point("2024-06-30", 29.0), point("2024-08-31", 30.0), point("2024-10-31", 31.5)])
    assert found is not None
    assert [row.state for row in found.rows] == [29.0, 30.0, 31.5]
    found = plan([point("2024-06-29", 29.0), point("2024-08-31", 30.0), point("2024-10-31", 31.5)])
    assert found is not None
    assert [row.state for row in found.rows] == [30.0, 31.5]


def test_statistics_recorded_long_after_the_registers_get_nothing() -> None:
    """A total recorded since June (an installation updated in July): its year-end register
    is before the first recorded hour, but five months before it; June's own register is
    in the recorded hours. Nothing is imported, nothing shifted."""
    points = [point("2025-12-31", 8000.0, "total_kwh"), point("2026-06-30", 8278.0, "total_kwh")]
    june = datetime(2026, 6, 1, 8, tzinfo=UTC)
    assert plan(points, recorded_start=june, recorded_zero=8250.0) is None
    # Recorded since January instead: the year-end reading goes before it.
    january = datetime(2026, 1, 5, 8, tzinfo=UTC)
    found = plan(points, recorded_start=january, recorded_zero=8050.0)
    assert found is not None
    assert [row.state for row in found.rows] == [8000.0]


def test_registers_are_converted_to_the_statistics_unit() -> None:
    """A total recorded in litres (the user's display unit when it was first recorded)."""
    found = plan(
        [point("2024-10-31", 31.5), point("2024-11-30", 33.0)],
        recorded_zero=34134.0,
        convert=lambda m3: m3 * 1000,
    )
    assert found is not None
    assert [(row.state, row.sum) for row in found.rows] == [(31500.0, 0.0), (33000.0, 1500.0)]
    assert found.adjustment == pytest.approx(34134.0 - 31500.0)


def test_a_falling_series_is_no_readings() -> None:
    assert plan([point("2024-10-31", 32.0), point("2024-11-30", 31.0)]) is None

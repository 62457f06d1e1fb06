"""A meter's past, from one telegram: the readings its running totals had at dated registers
(`target_m3` at `target_date`), as points for long-term statistics, and the hourly rows they
become (import_plan).

The rule is over names, units and values, not drivers:

- A **running total** is a number with the unit of something that only grows (m³, kWh, MWh,
  GJ, MJ, Wh, l) whose name starts with `total` (`total_m3`, `total_energy_consumption_kwh`,
  `total_subunit1_m3`). Heat-cost units (`hca`) are never readings: a value at a set date is
  a period total.
- A **dated register** is another number of such a unit with a date of its own (a text that
  reads as a date, whatever its name), found by name:
  the date whose base (the name without `_date`/`_datetime`) is the register's base
  (`target_m3` + `target_date`, `prev_1_month_kwh` + `prev_1_month_date`); a date whose name is
  inside the register's (`consumption_at_set_date_17_hca` + `set_date_17`, `due_date_m3` +
  `due_date`); a date whose base ends the register's (`consumption_at_history_2_m3` +
  `history_2_date`) or starts it (`target_energy_kwh` + `target_date`). The longest such date
  wins. Names that fit no rule are MISFITS, each with its source.
- A register belongs to the running total of its unit whose qualifier (the name without its
  `total`/date part) is the register's (`target_subunit1_m3` to `total_subunit1_m3`), or to the
  only running total of its unit.
- Kept only if it can be a reading: a real date, not after the telegram and not before 2000
  (placeholders: 2127-15-31, 2128-03-31, 2000-00-00, 1999-11-30); a value that is a number,
  not negative, not above its total; not higher than a later point (a series that falls is
  consumption per period, not readings).

- A register **relative to the meter's own clock** (its `meter_datetime`, `device_datetime`)
  is dated from it, at the end of the month it names: `April_total_m3` ("total value at the end
  of April": the last April that ended before the meter's date), `consumption_2_months_ago_m3`
  (two months before the meter's month); `prev_3_month_kwh` beside one `prev_month_datetime`
  ("the end of last month") two months before that.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
import re
from typing import Any, Final

#: Units of what only grows: a register in one of them can be a past reading of a total.
RUNNING_UNITS: Final = frozenset({"m3", "kwh", "mwh", "gj", "mj", "wh", "l"})
_DATE_SUFFIXES: Final = ("_date_time", "_datetime", "_date")
#: `2024-01-31`, `2024-01-31 23:59`, and 2.0.0's `2024-01-31T02:00:00Z` (UTC).
_DATE_VALUE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?)?(Z?)$")
#: The oldest date a register may have: older ones are placeholders (1999-11-30); without the
#: telegram's time, the newest (2128-03-31 is one too).
OLDEST: Final = date(2000, 1, 1)
NEWEST: Final = date(2099, 12, 31)

#: Registers whose date no name rule finds: register -> its date field, with the source.
MISFITS: Final[Mapping[str, str]] = {
    # izar (src/driver_izar.cc): the billing value and the date it was measured.
    "last_month_total_m3": "last_month_measure_date",
    # mkradio3 (drivers/src/mkradio3.xmq): the previous period's reading at `prev_date`.
    "target_m3": "prev_date",
}


#: Registers that read as readings but are a period's use: driver -> registers, with the source.
NOT_READINGS: Final[Mapping[str, frozenset[str]]] = {
    # mkradio3a (drivers/src/mkradio3a.xmq documents them as totals): its monthly registers
    # (`last_jan_m3`...) are a month's use, 3.5 to 11.5 m³ beside a total of 948.8 m³ in its
    # test telegram, and `target_m3` is the last of them (9.3 = `last_nov_m3`).
    "mkradio3a": frozenset({"target_m3"}),
}


@dataclass(frozen=True, slots=True)
class Point:
    """A past reading of a running total."""

    #: The running total it is a reading of (`total_m3`).
    total: str
    #: The register and the date field it came from (`target_m3`, `target_date`).
    register: str
    date_field: str
    #: When, as the meter says it (local time; a date is the start of that day).
    at: datetime
    value: float
    #: Dated by the meter's clock (`April_total_m3`), not by a date of its own.
    relative: bool = False


def _unit(field: str) -> str | None:
    _, sep, suffix = field.rpartition("_")
    return suffix if sep and suffix in RUNNING_UNITS else None


def _number(value: Any) -> float | None:
    if type(value) is float or type(value) is int:
        return float(value)
    return None


def parse_date(value: Any, tz: tzinfo | None = None) -> datetime | None:
    """A register's date (`2024-01-31`, `2024-01-31 23:59`) as the meter's local time, None if
    it is no real one. A UTC one (2.0.0: `...T02:00:00Z`) is turned to `tz` (default: UTC)."""
    if not isinstance(value, str) or (match := _DATE_VALUE.match(value.strip())) is None:
        return None
    *parts, utc = match.groups()
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in parts)
    try:
        at = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None  # 2127-15-31, 2000-00-00
    if utc and tz is not None:
        at = at.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    return at


def _date_base(field: str) -> str:
    for suffix in _DATE_SUFFIXES:
        if field.endswith(suffix):
            return field.removesuffix(suffix)
    return field


def _date_of(register: str, base: str, dates: Mapping[str, datetime | None]) -> str | None:
    """The date field of a register (its name without the unit is `base`)."""
    found = [
        field
        for field in dates
        if (date_base := _date_base(field))
        and (
            date_base == base
            or field in base
            or base.endswith(f"_{date_base}")
            or base.startswith(f"{date_base}_")
        )
    ]
    if found:
        return max(found, key=lambda field: (_date_base(field) == base, len(field)))
    misfit = MISFITS.get(register)
    return misfit if misfit in dates else None


#: Words that say when or what kind of register, not which quantity: left out when a register
#: is matched to its total (`consumption_at_history_2` and `total` are the same quantity).
_GENERIC = frozenset(
    [
        "total",
        "target",
        "consumption",
        "at",
        "energy",
        "volume",
        "set",
        "due",
        "last",
        "prev",
        "previous",
        "history",
        "month",
        "year",
        "date",
        "datetime",
    ]
)
#: Words of a total that is itself a past value (`total_energy_consumption_last_month_kwh`).
_PAST = frozenset(["last", "prev", "previous", "history", "month", "year", "at"])


def _qualifier(base: str, words: str) -> str:
    """What distinguishes a register or total of its unit (`subunit1` of `target_subunit1`,
    `tariff_1`, `cooling`): its words without its date's and the generic ones."""
    skip = set(words.split("_")) | _GENERIC
    return "_".join(part for part in base.split("_") if part and part not in skip)


def history_points(
    readings: Mapping[str, Any],
    driver: str = "",
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> list[Point]:
    """The past readings of its running totals a telegram of `driver` carries, oldest first
    per total.

    `now` is the telegram's time (local, naive): a later date is a placeholder. `tz` is the
    local zone, for the dates 2.0.0 prints in UTC.
    """
    not_readings = NOT_READINGS.get(driver, frozenset())
    # By the value: 2.0.0 names some dates without a suffix (c5isf's `prev_1_month`). One
    # that is no real date stays (None): its registers are placeholders, not another date's.
    dates = {
        field: parse_date(value, tz)
        for field, value in readings.items()
        if isinstance(value, str) and _DATE_VALUE.match(value.strip())
    }
    totals: dict[str, list[tuple[str, str]]] = {}  # unit -> [(total, its qualifier)]
    registers: list[tuple[str, str, str]] = []  # (register, its base, its unit)
    for field, value in readings.items():
        unit = _unit(field)
        if unit is None or _number(value) is None or field in not_readings:
            continue
        base = field.removesuffix(f"_{unit}")
        if base.startswith("total") and "date" not in base and not _PAST & set(base.split("_")):
            totals.setdefault(unit, []).append((field, _qualifier(base, "total")))
        else:
            registers.append((field, base, unit))
    points: dict[str, list[Point]] = {}
    for register, base, unit in registers:
        at: datetime | None
        if (date_field := _date_of(register, base, dates)) is not None:
            at, dated_by, relative = dates.get(date_field), _date_base(date_field), False
        elif (clock := _relative(base, dates)) is not None:
            (date_field, at, dated_by), relative = clock, True
        else:
            continue
        if at is None or not OLDEST <= at.date() <= (now.date() if now else NEWEST):
            continue  # a placeholder (1999-11-30, 2128-03-31), or a date still to come
        value = _number(readings[register])
        total = _total_of(totals.get(unit, []), _qualifier(base, dated_by))
        if value is None or total is None or value < 0:
            continue
        live = _number(readings[total])
        if live is None or value > live:
            continue
        points.setdefault(total, []).append(Point(total, register, date_field, at, value, relative))
    return [point for total in sorted(points) for point in _monotonic(points[total])]


_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
#: `April_total`: a month's name, then a total.
_MONTH_TOTAL = re.compile(rf"^({'|'.join(_MONTHS)})_(total.*)$", re.IGNORECASE)
_MONTHS_AGO = re.compile(r"^(.*?)_?(\d+)_months?_ago(.*)$")
_PREV_MONTH = re.compile(r"^(.*?)_?prev_(\d+)_month(.*)$")


def _month_end(year: int, month: int) -> datetime:
    """The last day of a month (months past 12 or before 1 roll the year)."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, calendar.monthrange(year, month)[1])


def _relative(base: str, dates: Mapping[str, datetime | None]) -> tuple[str, datetime, str] | None:
    """A register dated by the meter's own clock: (the date field, the date, the words that
    dated it) or None."""
    clock = next(
        (
            (field, at)
            for field, at in dates.items()
            if at is not None and ("meter" in field or "device" in field) and "error" not in field
        ),
        None,
    )
    if clock is not None and (match := _MONTH_TOTAL.match(base)):
        month = _MONTHS[match.group(1).lower()]
        at = _month_end(clock[1].year, month)
        if at.date() >= clock[1].date():
            at = _month_end(clock[1].year - 1, month)
        return clock[0], at, match.group(1)
    if clock is not None and (match := _MONTHS_AGO.match(base)):
        months = int(match.group(2))
        at = _month_end(clock[1].year, clock[1].month - months)
        return clock[0], at, f"{match.group(2)}_months_ago_month_months"
    if match := _PREV_MONTH.match(base):
        anchor = next(
            ((f, at) for f, at in dates.items() if at is not None and "prev_month" in f), None
        )
        if anchor is not None:
            months = int(match.group(2)) - 1
            at = _month_end(anchor[1].year, anchor[1].month - months)
            return anchor[0], at, f"prev_{match.group(2)}_month"
    return None


def _total_of(totals: list[tuple[str, str]], qualifier: str) -> str | None:
    same = [total for total, its in totals if its == qualifier]
    if len(same) == 1:
        return same[0]
    if len(totals) == 1 and not qualifier:
        return totals[0][0]
    return None


def _monotonic(points: list[Point]) -> list[Point]:
    """Oldest first; one per day (two of one day that differ: neither; alike: the one with a
    date of its own, not the meter's clock); none higher than a later one (readings never
    fall)."""
    by_day: dict[date, Point | None] = {}
    for point in sorted(points, key=lambda p: p.relative):
        day = point.at.date()
        if day not in by_day:
            by_day[day] = point
        elif (kept := by_day[day]) is not None and kept.value != point.value:
            by_day[day] = None
    kept_points: list[Point] = []
    lowest = float("inf")
    for point in sorted((p for p in by_day.values() if p), key=lambda p: p.at, reverse=True):
        if 0 <= point.value <= lowest:
            kept_points.append(point)
            lowest = point.value
    return kept_points[::-1]


#: The longest span one imported change may cover: between two imported readings, and between
#: the newest and the first recorded hour (which takes all use since it). A month's register
#: gives a month's use to one hour; a year-old set date would give a year's to one hour (of
#: today, or of the month of a newer register), so the readings end at the first longer gap.
MAX_GAP: Final = timedelta(days=62)
_HOUR: Final = timedelta(hours=1)


def reading_time(point: Point) -> datetime:
    """When a point's reading was taken (local, naive). A date alone names a day: on the 1st
    it is the month's start (Kamstrup's `target_date` 2020-10-01 is the reading as October
    began), on any other day that day's end (izar's 2019-09-30, a month's last day, a set
    day: the reading as it ended). A time of day is taken as it is."""
    at = point.at
    if at.time() != datetime.min.time() or at.day == 1:
        return at
    return at + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Row:
    """An hour of long-term statistics: the reading at its end, and the sum so far."""

    start: datetime  # UTC, the top of the hour
    state: float
    sum: float


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What a running total's past adds to its statistics."""

    rows: list[Row]
    #: Added to every recorded sum, so that they go on from the last row (the recorder began
    #: its sum at 0 with the first state it saw).
    adjustment: float


def import_plan(
    points: Sequence[Point],
    *,
    tz: tzinfo,
    recorded_start: datetime,
    recorded_zero: float,
    convert: Callable[[float], float] = float,
) -> ImportPlan | None:
    """The rows a total's points (one total, oldest first: history_points) add before what
    the recorder already has, or None if they add nothing.

    `recorded_start` is the start of the first row the recorder has for the total (aware);
    `recorded_zero` the reading its sums count from (that row's state less its sum). Rows
    only go into hours before that first one (the recorder's own rows are never written
    over), with readings not above the recorded zero (a meter never runs back); the first
    row's sum is 0, each later one adds the register's difference. Going back from the first
    recorded hour, the readings end at the first gap over MAX_GAP. `convert` turns a
    register's value into the statistics' unit.
    """
    before = recorded_start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    by_hour: dict[datetime, float] = {}
    for point in points:
        at = reading_time(point).replace(tzinfo=tz).astimezone(UTC)
        end = at.replace(minute=0, second=0, microsecond=0)
        if end < at:
            end += _HOUR  # a reading within an hour is that hour's end state
        value = convert(point.value)
        # (a hair of slack: a unit's conversion may round the reading the recorder began at)
        if end - _HOUR < before and value <= recorded_zero + abs(recorded_zero) * 1e-9:
            by_hour[end - _HOUR] = value  # the later of two in one hour (oldest first)
    hours: list[datetime] = []
    for hour in sorted(by_hour, reverse=True):
        # From this reading (its row's end) to the next one, or to the first recorded hour;
        # with an hour or two for a daylight saving change between local dates.
        if (hours[-1] + _HOUR if hours else before) - (hour + _HOUR) > MAX_GAP + 2 * _HOUR:
            break
        hours.append(hour)
    if not hours:
        return None
    hours.reverse()
    first = by_hour[hours[0]]
    rows = [Row(hour, by_hour[hour], by_hour[hour] - first) for hour in hours]
    if any(a.state > b.state for a, b in pairwise(rows)):
        return None  # not readings of one running total after all
    return ImportPlan(rows, recorded_zero - first)

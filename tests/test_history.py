"""A meter's past in the Energy dashboard from its first telegram (history.py): the real
wmbusmeters (2.0.0 and 3.0.0) decodes upstream's test telegram of each meter, the real recorder
compiles its statistics (its periodic 5-minute run, on a frozen clock), and its own statistic
of the total gets the registers' months before its first compiled hour.

What the dashboard reads is asserted: each imported hour's change is the registers' difference
(the first 0), none negative, the first recorded hour adds what was used since the newest
register, and the hours after it add nothing more (no spike). The expected readings come from
the reviewed golden file of the rule (tests/fixtures/history/points.jsonl), not from the code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.wmbusmeters import history
from custom_components.wmbusmeters.const import CONF_IMPORT_HISTORY, DOMAIN
from custom_components.wmbusmeters.history import HISTORY_TASK
from custom_components.wmbusmeters.supervisor import RESTART_COOLDOWN

from .common import meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed

FIXTURES = Path(__file__).parent / "fixtures"
ZONE = "Europe/Copenhagen"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_db_url: str, enable_custom_integrations: None) -> None:
    """conftest's, after the recorder's database: it must be ready before `hass` is."""


@pytest.fixture
def enable_statistics() -> bool:
    """The recorder compiles statistics on its own schedule (off in plain recorder tests)."""
    return True


@pytest.fixture
def spy() -> Generator[tuple[MagicMock, MagicMock]]:
    """The integration's writes into the statistics, and its look-ups of their first row:
    a second import would write the same values (it cannot be seen in the rows)."""
    with (
        patch.object(
            history, "async_import_statistics", wraps=history.async_import_statistics
        ) as imports,
        patch.object(history, "_first_row", wraps=history._first_row) as lookups,
    ):
        yield imports, lookups


@dataclass(frozen=True)
class Case:
    """Upstream's test telegram of a meter, heard on `day` (local) a little after its newest
    register."""

    name: str
    meter_id: str
    total: str
    day: datetime

    def hex(self) -> str:
        for line in (FIXTURES / "driver-tests" / "inputs.jsonl").read_text().splitlines():
            case = json.loads(line)
            if case["args"][:1] == [self.name] and case["args"][2] == self.meter_id:
                return str(case["telegram"])
        raise AssertionError(f"no test telegram of {self.name}")

    def golden(self, version: str) -> list[tuple[str, float]]:
        """The reviewed points of its total: (date, reading), oldest first."""
        for line in (FIXTURES / "history" / "points.jsonl").read_text().splitlines():
            found = json.loads(line)
            if found["version"] == version and found["id"] == self.meter_id:
                return [(p[3], p[4]) for p in found["points"] if p[0] == self.total]
        raise AssertionError(f"no golden points of {self.meter_id} on {version}")


CASES = [
    # kamwater (3.0.0; flowiq2200 on 2.0.0): one register, this month's start.
    Case("VATTEN", "52525252", "total_m3", datetime(2020, 10, 20, 9, 2)),
    # qheat_55_us: 13 months relative to its previous month's date, and its key date.
    Case("Heat", "70639638", "total_energy_consumption_kwh", datetime(2023, 1, 15, 9, 2)),
    # evo868: 12 month-ends, each with a date of its own.
    Case("Wasser", "21031894", "total_m3", datetime(2024, 12, 10, 9, 2)),
    # hydrodigit: `May_total_m3`... dated by the meter's clock.
    Case("Hydro3", "87654321", "total_m3", datetime(2024, 5, 20, 9, 2)),
]


def reading_end(day: str) -> datetime:
    """The end of the hour the golden point's reading was taken in (local): a date alone is a
    month's start on the 1st, else its day's end (the rule README states); 23:59 is in the
    hour that ends at midnight."""
    at = datetime.fromisoformat(day).replace(tzinfo=dt_util.get_default_time_zone())
    if at.time() != datetime.min.time():
        return at.replace(minute=0, second=0) + timedelta(hours=1)
    return at if at.day == 1 else at + timedelta(days=1)


async def compile_until(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, until: datetime
) -> None:
    """Run the recorder's 5-minute compiles up to `until`, each followed by the integration's
    import it triggers (a background task) and the recorder's work it queued. (Its own timer
    was set on the real clock, before the test moved it back to the telegram's days.)"""
    at = dt_util.utcnow().replace(second=10, microsecond=0)
    at += timedelta(minutes=5 - at.minute % 5)
    while at <= until:
        freezer.move_to(at)
        get_instance(hass).async_periodic_statistics()
        await async_wait_recording_done(hass)
        await hass.async_block_till_done()
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == HISTORY_TASK))
        await async_wait_recording_done(hass)
        at += timedelta(minutes=5)


async def hourly(hass: HomeAssistant, statistic_id: str) -> list[dict[str, Any]]:
    rows: dict[str, list[dict[str, Any]]] = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2000, 1, 1, tzinfo=dt_util.UTC),
        dt_util.utcnow() + timedelta(hours=1),
        {statistic_id},
        "hour",
        None,
        {"state", "sum", "change"},
    )
    return rows.get(statistic_id, [])


def total_sensor(hass: HomeAssistant, case: Case) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.SENSOR, DOMAIN, f"{case.meter_id}_{case.total}"
    )
    assert entity_id is not None
    return entity_id


async def start(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    wmbusmeters: str,
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
    case: Case,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    await hass.config.async_set_time_zone(ZONE)
    freezer.move_to(case.day.replace(tzinfo=dt_util.get_default_time_zone()))
    simulation = tmp_path / "simulation_history.txt"
    simulation.write_text(f"telegram=|{case.hex()}|\n")
    entry = receiver_entry(
        wmbusmeters, simulation, [meter(case.name, "auto", case.meter_id)], options=options
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    return entry


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_first_telegram_brings_the_registers_months(
    recorder_mock: object,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    wmbusmeters: str,
    wmbus_version: str,
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
    caplog: pytest.LogCaptureFixture,
    case: Case,
    spy: tuple[MagicMock, MagicMock],
) -> None:
    """The registers' readings become hours before the first recorded one, each at the end
    of the day (or the start of the month) it names; the dashboard's changes are the
    registers' differences, the first recorded hour adds the use since the newest, and the
    recorder's own hours go on from there. A reload (a restart) imports nothing again."""
    caplog.set_level(logging.WARNING)
    entry = await start(hass, freezer, wmbusmeters, tmp_path, run_until_played, case)
    entity_id = total_sensor(hass, case)
    live = float(hass.states.get(entity_id).state)
    golden = case.golden(wmbus_version)
    assert golden, "the golden file has points for this meter"

    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=3))

    rows = await hourly(hass, entity_id)
    imported = rows[: len(golden)]
    recorded = rows[len(golden) :]
    # Each register an hour, ending when its reading was taken.
    assert [dt_util.utc_from_timestamp(row["end"]) for row in imported] == [
        reading_end(day) for day, _value in golden
    ]
    assert [row["state"] for row in imported] == pytest.approx([v for _d, v in golden])
    # The dashboard's bars: 0 first, then the registers' differences; never negative.
    values = [value for _day, value in golden]
    assert [row["change"] for row in imported] == pytest.approx(
        [0.0] + [b - a for a, b in pairwise(values)]
    )
    assert all(row["change"] >= 0 for row in rows)
    # The recorder's own hours (from the frozen hour on): the first adds the use since the
    # newest register, the next ones nothing (no new reading came): no spike, no dip.
    assert dt_util.utc_from_timestamp(recorded[0]["start"]) == case.day.replace(
        minute=0, tzinfo=dt_util.get_default_time_zone()
    )
    assert [row["change"] for row in recorded] == pytest.approx(
        [live - values[-1]] + [0.0] * (len(recorded) - 1)
    )
    assert [row["sum"] for row in recorded] == pytest.approx([live - values[0]] * len(recorded))
    imports, lookups = spy
    assert imports.call_count == 1

    # Home Assistant restarts (the receiver reloads; the telegram comes again): it looks
    # again, and writes nothing.
    looked = lookups.call_count
    assert await hass.config_entries.async_reload(entry.entry_id)
    await run_until_played(entry)
    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=1))
    assert lookups.call_count > looked
    assert imports.call_count == 1
    again = await hourly(hass, entity_id)
    assert again[: len(rows)] == rows
    assert [row["change"] for row in again[len(rows) :]] == pytest.approx(
        [0.0] * (len(again) - len(rows))
    )
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in messages if "duplicated statistic" in m or "deprecat" in m.lower()]
    assert not [m for m in messages if m.startswith(("Error", "Unexpected"))]
    await hass.config_entries.async_unload(entry.entry_id)


WASSER = CASES[2]


async def recorded_only(hass: HomeAssistant, entity_id: str) -> list[dict[str, Any]]:
    """The rows, asserted to be the recorder's own: from the first state on, starting at 0."""
    rows = await hourly(hass, entity_id)
    assert rows
    assert rows[0]["sum"] == 0
    assert dt_util.utc_from_timestamp(rows[0]["start"]) >= WASSER.day.replace(
        minute=0, tzinfo=dt_util.get_default_time_zone()
    )
    return rows


async def test_turned_off_then_on_later(
    recorder_mock: object,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    wmbusmeters: str,
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
) -> None:
    """With the receiver's option off, the statistics are the recorder's own. Turned on a
    day later, the next telegram brings the months before the first recorded hour, and the
    recorded hours keep their changes (the first adds the use since the newest register)."""
    entry = await start(
        hass, freezer, wmbusmeters, tmp_path, run_until_played, WASSER, {"import_history": False}
    )
    entity_id = total_sensor(hass, WASSER)
    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=2))
    before = await recorded_only(hass, entity_id)

    flow = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"silence_timeout": 60, CONF_IMPORT_HISTORY: True}
    )
    assert entry.options[CONF_IMPORT_HISTORY] is True
    # A day later wmbusmeters is restarted (the receiver's Restart button) and the meter
    # heard again; the receiver did not reload for its options.
    freezer.tick(timedelta(days=1))
    runner = entry.runtime_data.supervisor.runner
    waiter = asyncio.ensure_future(runner.wait_running())
    assert entry.runtime_data.supervisor.restart()
    await waiter
    await run_until_played(entry)
    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(minutes=10))

    rows = await hourly(hass, entity_id)
    golden = WASSER.golden("3.0.0")  # the same months from either version
    imported = rows[: len(golden)]
    assert [row["state"] for row in imported] == pytest.approx([v for _d, v in golden])
    assert imported[0]["sum"] == 0
    recorded = rows[len(golden) :]
    assert [row["start"] for row in recorded[: len(before)]] == [r["start"] for r in before]
    live = float(hass.states.get(entity_id).state)
    assert [row["change"] for row in recorded] == pytest.approx(
        [live - golden[-1][1]] + [0.0] * (len(recorded) - 1)
    )
    assert result["type"] == "create_entry"
    await hass.config_entries.async_unload(entry.entry_id)


async def restart_due(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """The frozen clock moves past the restart's debounce (a timer on the loop's clock)."""
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=RESTART_COOLDOWN + 1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_meter_removed_and_added_again_imports_nothing_twice(
    recorder_mock: object,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    wmbusmeters: str,
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
    spy: tuple[MagicMock, MagicMock],
) -> None:
    """The meter is removed and added again (its entity comes back with the same id, the
    statistics stayed): its telegram's registers are all at or after the oldest imported
    hour, so nothing is written again and the dashboard's months are unchanged."""
    entry = await start(hass, freezer, wmbusmeters, tmp_path, run_until_played, WASSER)
    entity_id = total_sensor(hass, WASSER)
    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=1))
    rows = await hourly(hass, entity_id)
    assert len(rows) > len(WASSER.golden("3.0.0"))
    imports, lookups = spy
    assert imports.call_count == 1
    looked = lookups.call_count

    runner = entry.runtime_data.supervisor.runner
    waiter = asyncio.ensure_future(runner.wait_running())
    assert hass.config_entries.async_remove_subentry(entry, next(iter(entry.subentries)))
    await restart_due(hass, freezer)
    await waiter
    await run_until_played(entry)
    data = meter(WASSER.name, "auto", WASSER.meter_id)
    waiter = asyncio.ensure_future(runner.wait_running())
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=data["data"], subentry_type="meter", title=data["title"], unique_id=WASSER.meter_id
        ),
    )
    await restart_due(hass, freezer)
    await waiter
    await run_until_played(entry)
    assert total_sensor(hass, WASSER) == entity_id
    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=1))
    # (Settled in this run: not even looked up again; after a restart it is looked up, and
    # the rows say there is nothing before them: test_first_telegram_brings...)
    assert lookups.call_count == looked
    assert imports.call_count == 1

    again = await hourly(hass, entity_id)
    assert again[: len(rows)] == rows
    assert all(row["change"] == pytest.approx(0) for row in again[len(rows) :])
    await hass.config_entries.async_unload(entry.entry_id)


async def test_registers_older_than_two_months_are_left_out(
    recorder_mock: object,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    wmbusmeters: str,
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
) -> None:
    """The meter's newest register is half a year old when it is first heard: its months
    are not imported, or today's first hour would show the half year's use."""
    stale = Case(WASSER.name, WASSER.meter_id, WASSER.total, datetime(2025, 6, 10, 9, 2))
    entry = await start(hass, freezer, wmbusmeters, tmp_path, run_until_played, stale)
    entity_id = total_sensor(hass, stale)
    await compile_until(hass, freezer, dt_util.utcnow() + timedelta(hours=2))
    rows = await hourly(hass, entity_id)
    assert rows
    assert rows[0]["sum"] == 0
    assert dt_util.utc_from_timestamp(rows[0]["start"]) == stale.day.replace(
        minute=0, tzinfo=dt_util.get_default_time_zone()
    )
    await hass.config_entries.async_unload(entry.entry_id)

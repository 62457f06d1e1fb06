#!/usr/bin/env python3
"""The README's tables of supported meters, of their alarm sensors and of those that bring
their past, from the wmbusmeters binary's own driver list (`--listdrivers`) and what the
integration makes of each driver (DriverCatalog.async_alarms; wmbus/history.py over upstream's
test telegrams), so they name exactly what the bundled 3.0.0 reads.

    scripts/driver-table              rewrite the tables in README.md (between their markers)
    tests/test_docs.py                checks the README holds what this renders
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
import json
from pathlib import Path
import re
import shutil
import sys

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from custom_components.wmbusmeters.alarms import ALARMS  # noqa: E402
from custom_components.wmbusmeters.drivers import DriverCatalog  # noqa: E402
from custom_components.wmbusmeters.wmbus.alarms import AlarmKind  # noqa: E402
from custom_components.wmbusmeters.wmbus.history import history_points  # noqa: E402
from custom_components.wmbusmeters.wmbus.probe import (  # noqa: E402
    DriverInfo,
    list_drivers,
    probe_info,
)

START = "<!-- supported-meters:start (scripts/driver-table writes this) -->"
END = "<!-- supported-meters:end -->"
ALARMS_START = "<!-- alarms:start (scripts/driver-table writes this) -->"
ALARMS_END = "<!-- alarms:end -->"
HISTORY_START = "<!-- history:start (scripts/driver-table writes this) -->"
HISTORY_END = "<!-- history:end -->"
#: Upstream's driver test telegrams as the bundled binary prints them (tests/fixtures).
CORPUS = REPO / "tests" / "fixtures" / "driver-tests" / "wmbusmeters-3.0.0.jsonl"
_STRINGS = json.loads((REPO / "custom_components/wmbusmeters/strings.json").read_text())
#: The alarm sensors' English names (strings.json), in the order a device lists them.
ALARM_NAMES = {
    kind: _STRINGS["entity"]["binary_sensor"][description.translation_key]["name"]
    for kind, description in ALARMS.items()
    if isinstance(description.translation_key, str)
}
#: wmbusmeters' meter classes as a user names them.
KINDS = {
    "WaterMeter": "Water",
    "HeatMeter": "Heat",
    "HeatCoolingMeter": "Heat and cooling",
    "HeatCostAllocationMeter": "Heat cost allocator",
    "ElectricityMeter": "Electricity",
    "GasMeter": "Gas",
    "TempHygroMeter": "Room climate",
    "SmokeDetector": "Smoke detector",
    "DoorWindowDetector": "Door/window",
    "PressureSensor": "Pressure",
    "PulseCounter": "Pulse counter",
    "Repeater": "Repeater",
}


def render(drivers: Iterable[DriverInfo], version: str) -> str:
    """The block between the markers: drivers by kind of meter, then by name."""
    rows = sorted(
        (KINDS[d.meter_type], d.name)
        for d in drivers
        if d.meter_type in KINDS  # not `auto` (AutoMeter) nor `unknown`
    )
    lines = [
        START,
        f"{len(rows)} drivers of wmbusmeters {version} (the bundled one). Choose one when you",
        "add a meter, or `auto` to let wmbusmeters find it from the meter's telegrams.",
        "",
        "| Kind of meter | Drivers |",
        "|---|---|",
    ]
    for kind in dict.fromkeys(kind for kind, _ in rows):
        names = ", ".join(f"`{name}`" for k, name in rows if k == kind)
        lines.append(f"| {kind} | {names} |")
    return "\n".join([*lines, END])


def render_alarms(alarms: dict[tuple[str, str], frozenset[AlarmKind]]) -> str:
    """The block between the alarm markers: (kind of meter, driver) -> its alarm sensors."""
    kinds = list(dict.fromkeys(KINDS[t] for t, _ in sorted(alarms, key=lambda k: KINDS[k[0]])))
    lines = [
        ALARMS_START,
        "| Kind of meter | " + " | ".join(ALARM_NAMES.values()) + " |",
        "|---" * (len(ALARM_NAMES) + 1) + "|",
    ]
    for kind in kinds:
        counts = [
            sum(1 for (t, _), got in alarms.items() if KINDS[t] == kind and alarm in got)
            for alarm in ALARM_NAMES
        ]
        if any(counts):
            lines.append(f"| {kind} | " + " | ".join(str(n or "") for n in counts) + " |")
    lines += ["", "The drivers of each:", ""]
    for alarm, name in ALARM_NAMES.items():
        drivers = sorted(d for (_, d), got in alarms.items() if alarm in got)
        lines.append(f"- **{name}** ({len(drivers)}): " + ", ".join(f"`{d}`" for d in drivers))
    return "\n".join([*lines, ALARMS_END])


def history_counts(corpus: Path = CORPUS) -> tuple[int, dict[str, int]]:
    """How many drivers the corpus has, and for each driver whose telegrams carry past
    readings the most of one total in one telegram (the rule: wmbus/history.py)."""
    drivers: set[str] = set()
    most: dict[str, int] = {}
    for line in corpus.read_text().splitlines():
        telegram = json.loads(line)
        driver = telegram["meter"]
        drivers.add(driver)
        now = datetime.fromisoformat(telegram["timestamp"]).astimezone(UTC).replace(tzinfo=None)
        per_total = Counter(p.total for p in history_points(telegram, driver, now=now, tz=UTC))
        if per_total:
            most[driver] = max(most.get(driver, 0), *per_total.values())
    return len(drivers), most


def render_history(corpus: Path = CORPUS) -> str:
    """The block between the history markers: the drivers that bring their past."""
    drivers, most = history_counts(corpus)
    months = sorted(d for d, n in most.items() if n >= 3)
    dates = sorted(d for d, n in most.items() if n < 3)
    return "\n".join(
        [
            HISTORY_START,
            f"{len(most)} of the {drivers} drivers whose upstream test telegrams wmbusmeters"
            " 3.0.0 decodes bring past readings of a total:",
            "",
            "| Past readings per telegram | Drivers |",
            "|---|---|",
            f"| A series of months ({len(months)}) | "
            + ", ".join(f"`{d}` ({most[d]})" for d in months)
            + " |",
            f"| A billing date or two ({len(dates)}) | "
            + ", ".join(f"`{d}`" for d in dates)
            + " |",
            HISTORY_END,
        ]
    )


def replace_block(text: str, block: str, start: str = START, end: str = END) -> str:
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    return pattern.sub(lambda _m: block, text)


async def current_block(command: str) -> str:
    info = await probe_info(command)
    return render(await list_drivers(command, info), info.version)


async def current_alarms_block(command: str) -> str:
    """The alarm sensors each driver of the binary gives a meter, as the integration decides."""
    catalog = DriverCatalog(command)
    if not await catalog.async_load():
        raise SystemExit(f"{command} did not list its drivers")
    alarms: dict[tuple[str, str], frozenset[AlarmKind]] = {}
    for driver in catalog.drivers.values():
        if driver.meter_type in KINDS:
            # None: a driver the integration knows nothing of (no sensor before its alarms)
            kinds = await catalog.async_alarms(driver.name)
            alarms[driver.meter_type, driver.name] = kinds or frozenset()
    return render_alarms(alarms)


def main() -> None:
    command = shutil.which(sys.argv[1] if len(sys.argv) > 1 else "wmbusmeters-3.0.0")
    if command is None:
        raise SystemExit("wmbusmeters 3.0.0 is not on PATH (scripts/setup builds it)")
    readme = REPO / "README.md"
    text = replace_block(readme.read_text(), asyncio.run(current_block(command)))
    alarms = asyncio.run(current_alarms_block(command))
    text = replace_block(text, alarms, ALARMS_START, ALARMS_END)
    readme.write_text(replace_block(text, render_history(), HISTORY_START, HISTORY_END))
    print(f"README.md: supported meters, their alarms and their history from {command}")


if __name__ == "__main__":
    main()

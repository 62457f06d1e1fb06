#!/usr/bin/env python3
"""The README's table of supported meters, from the wmbusmeters binary's own driver list
(`--listdrivers`), so it names exactly what the bundled 3.0.0 reads.

    scripts/driver-table              rewrite the table in README.md (between its markers)
    tests/test_docs.py                checks the README holds what this renders
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
import re
import shutil
import sys

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from custom_components.wmbusmeters.wmbus.probe import (  # noqa: E402
    DriverInfo,
    list_drivers,
    probe_info,
)

START = "<!-- supported-meters:start (scripts/driver-table writes this) -->"
END = "<!-- supported-meters:end -->"
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


def replace_block(text: str, block: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit("README.md has no supported-meters markers")
    return pattern.sub(lambda _m: block, text)


async def current_block(command: str) -> str:
    info = await probe_info(command)
    return render(await list_drivers(command, info), info.version)


def main() -> None:
    command = shutil.which(sys.argv[1] if len(sys.argv) > 1 else "wmbusmeters-3.0.0")
    if command is None:
        raise SystemExit("wmbusmeters 3.0.0 is not on PATH (scripts/setup builds it)")
    readme = REPO / "README.md"
    readme.write_text(replace_block(readme.read_text(), asyncio.run(current_block(command))))
    print(f"README.md: supported meters from {command}")


if __name__ == "__main__":
    main()

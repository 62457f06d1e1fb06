"""The alarm sensors each wmbusmeters 3.0.0 driver gets, read from the release source: for a
binary that cannot print a driver's definition (3.0.0's C++ drivers; most of 2.0.0's), where a
3.0.0 binary's `--printdriver=NAME` says it itself (alarms.definition_alarms).

Data, not a rule: tests/wmbus/test_alarms.py derives it from the release's drivers (their
status words through alarms.py's rule) and prints this table when it differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from .alarms import AlarmKind

# Kind -> the driver names (aliases included) whose status can raise it.
_DRIVERS: Final[Mapping[AlarmKind, str]] = {
    AlarmKind.LEAK: (
        "apatorna1 aquastream engelmann-faw engelmann_faw flowiq2200 gwfwater izar "
        "izarv2 kamheat kamwater minomess multical21 multical302 multical303 multical403 "
        "multical602 multical603 multical803 ultrimis ultrimisv2 waterstarm"
    ),
    AlarmKind.BURST: (
        "aquastream flowiq2200 gwfwater kamheat kamwater minomess multical21 multical302 "
        "multical303 multical403 multical602 multical603 multical803 ultrimis ultrimisv2"
    ),
    AlarmKind.TAMPER: (
        "apatoreitn apatorna1 aptmbusna aquastream aventieshca aventieswm caltose ei6500 "
        "engelmann-faw engelmann_faw eurisii flowiq2200 gransystems hcae2 hydrocalm3 "
        "hydrocalm4 iwmtx5 izar izarv2 kaden kamwater lansenpu lansenth minomess "
        "multical21 qheat qheatv2 qwaterv2 rfmamb ultrimis ultrimisv2 waterstarm "
        "zennerhca"
    ),
    AlarmKind.BATTERY_LOW: (
        "abbb23 apatorna1 aptmbusna aquastream aventieshca aventieswm c5isf caltose "
        "cma12w dme173 ehzp ei6500 elf elf2 elvsense enercal engelmann-faw engelmann_faw "
        "eurisii evo868 fhkvdataiv flowiq2200 gransystems gwfgas gwfwater hydrocalm3 "
        "hydrocalm4 hydroclimav2 hydrus iem3000 ime istaheat itron itronheat iwmtx5 "
        "kaden kadenwater kamheat kamwater lansendw lansenpu lansenrp lansensm lansenth "
        "lse_08 maddalena microclima minomess multical21 multical302 multical303 "
        "multical403 multical602 multical603 multical803 munia nemo nzr picoflux piigth "
        "pollucomf q400 qcaloric qheat qheat5us qheatv2 qsmoke qualcosonic qwater "
        "qwaterv2 rfmamb sensostar supercom587 tsd2 uiws ultraheat ultrimis ultrimisv2 "
        "waterstarm watertech whe46x whe5x zennerhca"
    ),
    AlarmKind.REVERSE_FLOW: (
        "apatorna1 aptmbusna c5isf engelmann-faw engelmann_faw flowiq2200 gwfwater izar "
        "izarv2 kamheat kamwater minomess multical21 multical302 multical303 multical403 "
        "multical602 multical603 multical803 ultrimis ultrimisv2 waterstarm"
    ),
    AlarmKind.DRY: (
        "c5isf flowiq2200 kamheat kamwater multical21 multical302 multical303 "
        "multical403 multical602 multical603 multical803 ultrimis ultrimisv2"
    ),
}


#: Driver name -> its alarm kinds (none listed: no alarm sensor).
DRIVER_ALARMS: Final[Mapping[str, frozenset[AlarmKind]]] = MappingProxyType(
    {
        name: frozenset(kind for kind, names in _DRIVERS.items() if name in names.split())
        for name in sorted({name for names in _DRIVERS.values() for name in names.split()})
    }
)


def render_table(drivers: Mapping[str, frozenset[AlarmKind]]) -> str:
    """_DRIVERS as Python source, from driver -> kinds."""
    lines = ["_DRIVERS: Final[Mapping[AlarmKind, str]] = {"]
    for kind in AlarmKind:
        names = sorted(name for name, kinds in drivers.items() if kind in kinds)
        if not names:
            continue
        lines.append(f"    AlarmKind.{kind.name}: (")
        line = ""
        for name in names:
            if len(line) + len(name) + 1 > 80:
                lines.append(f'        "{line}"')
                line = ""
            line += f"{name} "
        lines.append(f'        "{line.rstrip()}"')
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines)

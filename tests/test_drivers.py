"""One driver catalogue per wmbusmeters command: loaded once, shared, replaced with the binary."""

from __future__ import annotations

import asyncio
from pathlib import Path

from homeassistant.core import HomeAssistant
import pytest

from custom_components.wmbusmeters import drivers
from custom_components.wmbusmeters.drivers import async_get_catalog
from custom_components.wmbusmeters.wmbus import (
    DriverInfo,
    FieldInfo,
    NotWmbusmetersError,
    WmbusmetersInfo,
)
from custom_components.wmbusmeters.wmbus.alarms import AlarmKind
from custom_components.wmbusmeters.wmbus.driver_alarms import DRIVER_ALARMS

COMMAND = "/opt/wmbusmeters"
OLD = WmbusmetersInfo("2.0.0", "--listmeters")
NEW = WmbusmetersInfo("3.0.0", "--listdrivers")


class FakeBinary:
    """What the catalogue asks the binary, answered without a process and counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.info = OLD
        self.fails = False
        self.asked: list[str] = []
        monkeypatch.setattr(drivers, "probe_info", self.probe_info)
        monkeypatch.setattr(drivers, "list_drivers", self.list_drivers)
        monkeypatch.setattr(drivers, "list_fields", self.list_fields)

    async def probe_info(self, command: str) -> WmbusmetersInfo:
        self.asked.append("--version")
        await asyncio.sleep(0)
        return self.info

    async def list_drivers(self, command: str, info: WmbusmetersInfo) -> list[DriverInfo]:
        self.asked.append(info.list_drivers_option)
        await asyncio.sleep(0)
        if self.fails:
            raise NotWmbusmetersError("broken")
        return [DriverInfo("auto", ""), DriverInfo("multical21", "WaterMeter", ("KAM",))]

    async def list_fields(self, command: str, driver: str) -> list[FieldInfo]:
        self.asked.append(f"--listfields={driver}")
        return [FieldInfo("total_m3", "The total water consumption.")]


async def test_callers_share_one_load(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers at the same time, and later ones, get the one catalogue, asked for once; its
    fields are asked once per driver."""
    binary = FakeBinary(monkeypatch)
    first, second = await asyncio.gather(
        async_get_catalog(hass, COMMAND), async_get_catalog(hass, COMMAND)
    )
    assert first is second
    assert await async_get_catalog(hass, COMMAND) is first
    assert await async_get_catalog(hass, COMMAND, OLD) is first  # the receiver's own binary
    assert binary.asked == ["--version", "--listmeters"]
    assert first.info == OLD
    assert first.names == {"auto", "multical21"}
    assert first.kind("multical21") == "WaterMeter"
    assert [f.name for f in await first.async_fields("multical21")] == ["total_m3"]
    assert [f.name for f in await first.async_fields("multical21")] == ["total_m3"]
    assert binary.asked.count("--listfields=multical21") == 1


async def test_another_version_replaces_the_catalogue(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver that finds another version at the path (a HACS update) gets a new catalogue,
    listed with what it probed; later callers get that one."""
    binary = FakeBinary(monkeypatch)
    old = await async_get_catalog(hass, COMMAND)
    binary.asked.clear()
    new = await async_get_catalog(hass, COMMAND, NEW)
    assert new is not old
    assert new.info == NEW
    assert binary.asked == ["--listdrivers"]
    assert await async_get_catalog(hass, COMMAND) is new
    assert await async_get_catalog(hass, "/other/wmbusmeters") is not new


async def test_a_failed_listing_is_not_kept(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary that could not list its drivers gives an empty catalogue (any well-formed
    driver name then passes; `auto` is offered); the next caller asks again."""
    binary = FakeBinary(monkeypatch)
    binary.fails = True
    failed = await async_get_catalog(hass, COMMAND)
    assert failed.drivers == {}
    assert failed.names == {"auto"}
    binary.fails = False
    again = await async_get_catalog(hass, COMMAND)
    assert again is not failed
    assert again.names == {"auto", "multical21"}
    assert binary.asked == ["--version", "--listmeters", "--version", "--listmeters"]


async def test_a_binary_replaced_in_place_is_listed_again(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file at the path changed (a HACS download waiting for its restart, a package
    upgrade) but no receiver has probed it yet: the meter form and the repairs are not
    offered the old binary's drivers. Before: kept until a receiver saw another version."""
    binary = FakeBinary(monkeypatch)
    command = tmp_path / "wmbusmeters"
    command.write_bytes(b"old binary")
    old = await async_get_catalog(hass, str(command))
    assert await async_get_catalog(hass, str(command)) is old
    command.write_bytes(b"the new binary, longer")
    binary.info = NEW
    binary.asked.clear()
    new = await async_get_catalog(hass, str(command))
    assert new is not old
    assert new.info == NEW
    assert binary.asked == ["--version", "--listdrivers"]


async def test_a_replaced_binary_that_cannot_list_yet_keeps_the_last_drivers(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file changed and cannot list its drivers (yet): the forms keep offering the last
    binary's drivers rather than `auto` alone, and the next caller asks again."""
    binary = FakeBinary(monkeypatch)
    command = tmp_path / "wmbusmeters"
    command.write_bytes(b"old binary")
    old = await async_get_catalog(hass, str(command))
    command.write_bytes(b"the new binary, longer")
    binary.fails = True
    assert await async_get_catalog(hass, str(command)) is old
    binary.fails = False
    binary.asked.clear()
    new = await async_get_catalog(hass, str(command))
    assert new is not old
    assert binary.asked == ["--version", "--listmeters"]


@pytest.mark.parametrize(
    ("fields", "printed", "expected", "kept"),
    [
        # No status field: no alarm sensor, and no definition asked for.
        (["total_m3"], None, frozenset(), True),
        # Built into the binary: what the 3.0.0 source gives it (the same on 2.0.0).
        (["status"], "info='Driver is binary only.'", DRIVER_ALARMS["multical21"], True),
        # A definition it prints adds what it says to the source's.
        (
            ["status"],
            "driver{name=multical21 fields{field{name=status quantity=Text "
            "lookup{name=F map_type=BitToString mask_bits=0xff map{name=STRONG_LIGHT value=1}}}}}",
            DRIVER_ALARMS["multical21"] | {AlarmKind.TAMPER},
            True,
        ),
        # Output it cannot read, or printing fails: not known, asked again next time.
        (["status"], "driver{name=broken fields{", None, False),
        (["status"], NotWmbusmetersError("exited with 1"), None, False),
    ],
)
async def test_alarms_of_a_driver(
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
    fields: list[str],
    printed: str | Exception | None,
    expected: frozenset[AlarmKind] | None,
    kept: bool,
) -> None:
    """Which alarm sensors a driver's meters get, from what the binary says of it; forty
    meters asking at once ask the binary once."""
    binary = FakeBinary(monkeypatch)
    asked: list[str] = []

    async def list_fields(command: str, driver: str) -> list[FieldInfo]:
        asked.append("--listfields")
        return [FieldInfo(name, "") for name in fields]

    async def print_driver(command: str, driver: str) -> str:
        asked.append("--printdriver")
        await asyncio.sleep(0)
        if isinstance(printed, Exception):
            raise printed
        assert printed is not None
        return printed

    monkeypatch.setattr(drivers, "list_fields", list_fields)
    monkeypatch.setattr(drivers, "print_driver", print_driver)
    catalog = await async_get_catalog(hass, COMMAND)
    answers = await asyncio.gather(*(catalog.async_alarms("multical21") for _ in range(40)))
    assert set(answers) == {expected}
    assert asked.count("--printdriver") == (40 if not kept else int(printed is not None))
    assert "--version" in binary.asked
    asked.clear()
    assert await catalog.async_alarms("multical21") == expected
    assert (asked == []) is kept


async def test_alarms_when_the_fields_cannot_be_listed(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary that cannot list a driver's fields says nothing of its alarms (None), and is
    asked again next time."""
    FakeBinary(monkeypatch)

    async def list_fields(command: str, driver: str) -> list[FieldInfo]:
        raise NotWmbusmetersError("exited with 1")

    monkeypatch.setattr(drivers, "list_fields", list_fields)
    catalog = await async_get_catalog(hass, COMMAND)
    assert await catalog.async_alarms("multical21") is None
    monkeypatch.setattr(drivers, "list_fields", FakeBinary(monkeypatch).list_fields)
    assert await catalog.async_alarms("multical21") == frozenset()  # total_m3 only

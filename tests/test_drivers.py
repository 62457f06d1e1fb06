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

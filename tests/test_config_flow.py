"""The receiver flow, its reconfigure and options, and the meter subentry flow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
import shutil
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr
import pytest

from custom_components.wmbusmeters.compat import find_device
from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import probe
from custom_components.wmbusmeters.wmbus.config import CONF_FILE

from .common import meter, receiver_entry, setup_receiver, start_receiver_flow, until


def script(tmp_path: Path, name: str, body: str, mode: int = 0o755) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return str(path)


async def start(hass: HomeAssistant) -> dict[str, Any]:
    return await start_receiver_flow(hass)


async def test_user_flow_creates_receiver(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path]
) -> None:
    """The form proposes the wmbusmeters on PATH; a working one creates the receiver."""
    result = await start(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "radio"
    schema = result["data_schema"].schema
    suggested = {str(k): k.description.get("suggested_value") for k in schema if k.description}
    assert suggested["command"] == shutil.which("wmbusmeters")

    device = str(simulation("c1_water_multical21"))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": wmbusmeters, "device": device, "link_modes": []}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "command": wmbusmeters,
        "device": device,
        "device_type": "",  # a simulation file has no type
        "link_modes": [],
    }
    assert result["result"].unique_id == device
    await hass.async_block_till_done()

    # The same device cannot be set up twice.
    again = await start(hass)
    again = await hass.config_entries.flow.async_configure(
        again["flow_id"], {"command": wmbusmeters, "device": device, "link_modes": []}
    )
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    await hass.config_entries.async_unload(result["result"].entry_id)


@pytest.mark.parametrize(
    ("make_command", "device", "link_modes", "errors"),
    [
        (lambda p, w: str(p / "missing"), "auto", ["c1"], {"command": "command_not_found"}),
        (
            lambda p, w: script(p, "noexec", "exit 0", 0o644),
            "auto",
            ["c1"],
            {"command": "command_not_executable"},
        ),
        (
            lambda p, w: script(p, "other", "echo hello"),
            "auto",
            ["c1"],
            {"command": "not_wmbusmeters"},
        ),
        (
            lambda p, w: script(p, "failing", "exit 2"),
            "auto",
            ["c1"],
            {"command": "not_wmbusmeters"},
        ),
        (lambda p, w: script(p, "slow", "sleep 5"), "auto", ["c1"], {"command": "command_timeout"}),
        (lambda p, w: w, "/dev/serial/by-id/usb-gone", ["c1"], {"device": "device_not_found"}),
        (lambda p, w: w, "/dev/tty USB0\nshell=x", ["c1"], {"device": "invalid_device"}),
        (lambda p, w: w, "auto", [], {"link_modes": "link_modes_required"}),
    ],
)
async def test_user_flow_errors(
    hass: HomeAssistant,
    wmbusmeters: str,
    tmp_path: Path,
    simulation: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    make_command: Callable[[Path, str], str],
    device: str,
    link_modes: list[str],
    errors: dict[str, str],
) -> None:
    """Each problem is a translated error on the field to fix; fixing it creates the entry."""
    monkeypatch.setattr(probe, "PROBE_TIMEOUT", 0.5)
    result = await start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "command": make_command(tmp_path, wmbusmeters),
            "device": device,
            "link_modes": link_modes,
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors

    # Nothing is lost: the user corrects the field and goes on.
    device = str(simulation("c1_water_multical21"))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": wmbusmeters, "device": device, "link_modes": ["c1", "t1"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["link_modes"] == ["c1", "t1"]
    entry = result["result"]
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_and_options(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path]
) -> None:
    """Reconfigure changes the device (wmbusmeters restarts); options change the timeout."""
    first = simulation("c1_water_multical21", "simulation_a.txt")
    second = simulation("c1_water_multical21", "simulation_b.txt")
    entry = receiver_entry(wmbusmeters, first)
    await setup_receiver(hass, entry)

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": wmbusmeters, "device": "/nope", "link_modes": []}
    )
    assert result["errors"] == {"device": "device_not_found"}
    coordinator = entry.runtime_data.supervisor
    runner = coordinator.runner
    restarts = runner.counters.restarts
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"command": wmbusmeters, "device": str(second), "link_modes": []}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["device"] == str(second)
    assert entry.unique_id == str(second)
    # wmbusmeters restarts with the new device, without a reload of the receiver. (Not "the
    # next process start": the simulation ends and is replayed meanwhile, a start of its own.)
    # (runner.config changes when the restart is asked; what the started process was given
    # is the proof: its configuration file is written at each start, then kept)
    conf = runner.config_dir / CONF_FILE
    await until(
        hass,
        lambda: (
            runner.counters.restarts > restarts
            and conf.is_file()
            and f"device={second}" in conf.read_text()
        ),
        "wmbusmeters started on the new device",
    )
    assert entry.runtime_data.supervisor is coordinator
    assert runner.counters.restarts > restarts

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"silence_timeout": 15}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # The history import stays on unless turned off.
    assert entry.options == {"silence_timeout": 15, "import_history": True}
    assert entry.runtime_data.supervisor.runner.silence_timeout == 15 * 60
    await hass.config_entries.async_unload(entry.entry_id)


async def start_meter(hass: HomeAssistant, entry_id: str) -> dict[str, Any]:
    return await hass.config_entries.subentries.async_init(  # type: ignore[return-value]
        (entry_id, "meter"), context={"source": SOURCE_USER}
    )


async def test_add_meter(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, simulation: Callable[..., Path]
) -> None:
    """A meter with a key as suppliers print it; stored normalised; wmbusmeters restarts with it."""
    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
    await setup_receiver(hass, entry)
    result = await start_meter(hass, entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    drivers = result["data_schema"].schema["driver"].config["options"]
    assert drivers[0]["value"] == "auto"
    assert {"value": kamstrup, "label": f"{kamstrup} (WaterMeter)"} in drivers

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            "name": "Køkken",
            "meter_id": "76348799",
            "driver": kamstrup,
            "key": "28f6 4a24-9880 64a0 79aa 2c80 7d61 02ae",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(iter(entry.subentries.values()))
    assert subentry.unique_id == "76348799"
    assert dict(subentry.data) == {
        "name": "Køkken",
        "driver": kamstrup,
        "meter_id": "76348799",
        "key": "28F64A24988064A079AA2C807D6102AE",
    }
    await hass.async_block_till_done()
    again = await start_meter(hass, entry.entry_id)
    again = await hass.config_entries.subentries.async_configure(
        again["flow_id"], {"name": "Twice", "meter_id": "76348799", "driver": "auto", "key": ""}
    )
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_meter_form_starts_no_process(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loaded receiver's wmbusmeters listed its drivers (and its meters' fields) when it
    started: the meter form, opened, refused and accepted, asks the binary nothing again."""
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter("Tap", kamstrup, "76348799")]
    )
    await setup_receiver(hass, entry)
    started: list[list[str]] = []
    spawn = asyncio.create_subprocess_exec

    async def recorded(*argv: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        # The receiver's own wmbusmeters (restarted with the new meter) is not the form's.
        if not any(str(arg).startswith("--useconfig=") for arg in argv):
            started.append([str(arg) for arg in argv])
        return await spawn(*argv, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recorded)
    result = await start_meter(hass, entry.entry_id)
    options = result["data_schema"].schema["driver"].config["options"]
    assert {"value": kamstrup, "label": f"{kamstrup} (WaterMeter)"} in options
    hall = {"name": "Hall", "meter_id": "11223344", "driver": kamstrup, "key": ""}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**hall, "key": "nope"}
    )
    assert result["errors"] == {"key": "invalid_key"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], hall)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert started == []
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"meter_id": "7634879"}, {"meter_id": "invalid_meter_id"}),
        ({"meter_id": "7634879G"}, {"meter_id": "invalid_meter_id"}),
        ({"key": "28F64A24988064A079AA2C807D6102"}, {"key": "invalid_key"}),
        ({"key": "28F64A24988064A079AA2C807D6102AE\nshell=touch x"}, {"key": "invalid_key"}),
    ],
)
async def test_add_meter_errors(
    hass: HomeAssistant,
    wmbusmeters: str,
    kamstrup: str,
    simulation: Callable[..., Path],
    data: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Bad id, key or driver: translated errors; the corrected form is accepted."""
    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
    await setup_receiver(hass, entry)
    good = {"name": "Tap", "meter_id": "76348799", "driver": kamstrup, "key": ""}
    result = await start_meter(hass, entry.entry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**good, **data}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_unknown_driver_rejected(
    hass: HomeAssistant, wmbusmeters: str, wmbus_version: str, simulation: Callable[..., Path]
) -> None:
    """The driver list is the binary's own: a name it does not print is refused (kamwater is
    3.0.0's, multical21 2.0.0's)."""
    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
    await setup_receiver(hass, entry)
    result = await start_meter(hass, entry.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {
                "name": "Tap",
                "meter_id": "76348799",
                "driver": "kamwater" if wmbus_version == "2.0.0" else "multical21",
                "key": "",
            },
        )
    assert not entry.subentries
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_meter(
    hass: HomeAssistant, wmbusmeters: str, kamstrup: str, simulation: Callable[..., Path]
) -> None:
    """Name, driver and key change; an empty key means no key; wmbusmeters gets the change."""
    entry = receiver_entry(
        wmbusmeters,
        simulation("c1_water_multical21"),
        [meter("Tap", kamstrup, "76348799", "A" * 32)],
    )
    await setup_receiver(hass, entry)
    subentry_id = next(iter(entry.subentries))
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "meter"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["description_placeholders"] == {"meter_id": "76348799"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Tap", "driver": kamstrup, "key": "nope"}
    )
    assert result["errors"] == {"key": "invalid_key"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Kitchen tap", "driver": "auto", "key": ""}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = entry.subentries[subentry_id]
    assert subentry.title == "Kitchen tap"
    device = find_device(dr.async_get(hass), (DOMAIN, "76348799"), entry.entry_id)
    assert device is not None
    assert device.name == "Kitchen tap"
    assert subentry.data["key"] == ""
    assert subentry.data["driver"] == "auto"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_meter_flow_without_driver_list(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the driver list fails, the meter form still works with `auto`; a malformed driver
    name sent past the form is refused by the flow itself."""

    async def broken(command: str, *args: object) -> None:
        raise probe.NotWmbusmetersError("broken")

    monkeypatch.setattr("custom_components.wmbusmeters.drivers.list_drivers", broken)
    entry = receiver_entry(wmbusmeters, simulation("c1_water_multical21"))
    await setup_receiver(hass, entry)
    result = await start_meter(hass, entry.entry_id)
    assert [o["value"] for o in result["data_schema"].schema["driver"].config["options"]] == [
        "auto"
    ]
    flow = hass.config_entries.subentries._progress[result["flow_id"]]
    result = await flow.async_step_user(
        {"name": "Tap", "meter_id": "76348799", "driver": "multical21\nshell=x", "key": ""}
    )
    assert result["errors"] == {"driver": "unknown_driver"}
    await hass.config_entries.async_unload(entry.entry_id)

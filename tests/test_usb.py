"""A dongle plugged in is discovered by Home Assistant's own USB integration (the manifest's
matchers), confirmed by the real wmbusmeters on an emulated stick, and never offered twice."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USB
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.loader import async_get_usb
from homeassistant.setup import async_setup_component
import pytest

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus.usb_ids import USB_DONGLES

from .common import im871a_info, until
from .pty_dongle import Im871aEmulator, PtyDongle

MANIFEST = Path(__file__).parent.parent / "custom_components" / DOMAIN / "manifest.json"


@pytest.fixture
def dongle(tmp_path: Path) -> Iterator[PtyDongle]:
    """An emulated USB serial port (nothing answers on it unless an emulator is started)."""
    emulated = PtyDongle(tmp_path)
    yield emulated
    emulated.unplug()


def usb_port(device: str, vid: str, pid: str, description: str, maker: str) -> Any:
    """A port as HA's USB integration scans it (its own model class)."""
    from homeassistant.components.usb.models import USBDevice  # noqa: PLC0415

    return USBDevice(
        device=device,
        vid=vid,
        pid=pid,
        serial_number="0001",
        manufacturer=maker,
        description=description,
    )


def test_manifest_matchers_are_the_table() -> None:
    """The manifest's `usb` matchers are exactly the documented identities of usb_ids.py."""
    assert json.loads(MANIFEST.read_text())["usb"] == [d.matcher() for d in USB_DONGLES]


async def test_plugged_dongles_are_discovered_others_are_not(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """Through HA's USB integration: an iM871A and an AMB8465 are offered, each with its type;
    a Zigbee stick and an Arduino on the same USB-serial chips are not."""
    ports = [
        usb_port(str(tmp_path / "a"), "10C4", "87ED", "IMST USB-Stick", "IMST GmbH"),
        usb_port(str(tmp_path / "b"), "0403", "6001", "AMB8465 Wireless USB Stick", "AMBER"),
        usb_port(str(tmp_path / "c"), "10C4", "EA60", "Sonoff Zigbee 3.0 USB Dongle Plus", "ITead"),
        usb_port(str(tmp_path / "d"), "0403", "6001", "FT232R USB UART", "FTDI"),
        usb_port(str(tmp_path / "e"), "04B4", "0003", "USB-Serial", "Cypress"),
    ]
    # HA's own matchers, ours among them; zha's (it claims the Zigbee stick) are left out, as
    # zha's flow cannot load without its library here.
    matchers = [m for m in await async_get_usb(hass) if m["domain"] != "zha"]
    assert any(m["domain"] == DOMAIN for m in matchers)
    with (
        patch("homeassistant.components.usb.scan_serial_ports", return_value=ports),
        patch("homeassistant.components.usb.async_get_usb", return_value=matchers),
    ):
        assert await async_setup_component(hass, "usb", {"usb": {}})
        hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
        await hass.async_block_till_done()
        # Discovery flows start in the background once the integration is loaded.
        await until(
            hass,
            lambda: len(hass.config_entries.flow.async_progress_by_handler(DOMAIN)) >= 2,
            "two discovery flows",
        )
        await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    offered = {
        flow["context"]["unique_id"]: (flow["step_id"], flow["context"]["source"]) for flow in flows
    }
    assert offered == {
        str(tmp_path / "a"): ("usb_confirm", SOURCE_USB),
        str(tmp_path / "b"): ("usb_confirm", SOURCE_USB),
    }
    # The Discovered card names the dongle type found.
    titles = {flow["context"]["title_placeholders"]["name"] for flow in flows}
    assert titles == {"im871a (a)", "amb8465 (b)"}
    for flow in flows:
        hass.config_entries.flow.async_abort(flow["flow_id"])


async def test_discovered_im871a_is_confirmed_by_wmbusmeters(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle
) -> None:
    """The confirm step, port and type filled in: wmbusmeters finds nothing on a silent port
    (refused, nothing saved); with the stick answering it is saved with C1+T1, and the same
    port (by either of its names) is not offered again."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USB}, data=im871a_info(str(dongle.path))
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    placeholders = result["description_placeholders"]
    assert placeholders["port"] == str(dongle.path)
    assert placeholders["modes"] == "C1, S1, S1M, T1 (C1+T1)"
    answer = {"command": wmbusmeters, "device_type": "im871a", "link_modes": ["c1", "t1"]}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
    assert result["errors"] == {"base": "dongle_not_found"}
    assert not hass.config_entries.async_entries(DOMAIN)

    stick = Im871aEmulator(dongle, firmware=0x15)
    stick.start()
    try:
        result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["data"] == {
            "command": wmbusmeters,
            "device": str(dongle.path),
            "device_type": "im871a",
            "link_modes": ["c1", "t1"],
        }
        await hass.async_block_till_done()
        for name in (str(dongle.path), dongle.tty):
            again = await hass.config_entries.flow.async_init(
                DOMAIN, context={"source": SOURCE_USB}, data=im871a_info(name)
            )
            assert again["type"] is FlowResultType.ABORT
            assert again["reason"] == "already_configured"
        await hass.config_entries.async_unload(result["result"].entry_id)
    finally:
        stick.stop()


async def test_old_firmware_refuses_two_link_modes(
    hass: HomeAssistant, wmbusmeters: str, dongle: PtyDongle
) -> None:
    """An iM871A firmware 0x13 listens to one mode: wmbusmeters reports the refusal, the form
    says so on the link modes, and one mode is saved."""
    stick = Im871aEmulator(dongle, firmware=0x13)
    stick.start()
    try:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=im871a_info(str(dongle.path))
        )
        answer = {"command": wmbusmeters, "device_type": "im871a", "link_modes": ["c1", "t1"]}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
        assert result["errors"] == {"link_modes": "link_modes_refused"}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**answer, "link_modes": ["t1"]}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["data"]["link_modes"] == ["t1"]
        await hass.async_block_till_done()
        await hass.config_entries.async_unload(result["result"].entry_id)
    finally:
        stick.stop()


async def test_a_usb_device_that_is_no_dongle_is_refused(hass: HomeAssistant) -> None:
    """Reached by another route than the matchers (HA's USB page lets a user pick any port),
    an unknown device is not taken for a dongle."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_USB},
        data=UsbServiceInfo(
            device="/dev/ttyUSB7",
            vid="0403",
            pid="6001",
            serial_number=None,
            manufacturer="FTDI",
            description="FT232R USB UART",
        ),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_a_dongle"

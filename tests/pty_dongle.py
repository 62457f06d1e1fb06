"""Emulated hardware: a pseudo-terminal that plays a USB serial dongle for the real wmbusmeters.

The test side holds the pty's master; wmbusmeters opens the slave through a symlink named like
the stable names udev gives real dongles (`serial/by-id/usb-...`), as a user would pick it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
import pty
import tty


class PtyDongle:
    """A dongle on a pty: plugged in when made, `unplug()` takes it away."""

    def __init__(self, folder: Path, name: str = "usb-wmbus_emulated_dongle-if00-port0") -> None:
        """Open the pty (raw, like a real serial line) and link the by-id name to it."""
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        self.tty = os.ttyname(self._slave)
        by_id = folder / "serial" / "by-id"
        by_id.mkdir(parents=True, exist_ok=True)
        self.path = by_id / name
        self.path.symlink_to(self.tty)

    def send(self, data: bytes) -> None:
        """What the radio heard, as the dongle writes it to the host."""
        os.write(self.master, data)

    async def send_raw_telegrams(self, data: bytes) -> None:
        """Raw telegrams one at a time, a moment apart, as meters send them: wmbusmeters drops
        a buffer that starts inside a telegram (it opened the tty mid-stream), and the gap
        lets it find the start of the next one."""
        for telegram in split_telegrams(data):
            self.send(telegram)
            await asyncio.sleep(0.05)

    def unplug(self) -> None:
        """The dongle is pulled out: its tty and its by-id name disappear."""
        self.path.unlink(missing_ok=True)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)


def rawtty_telegrams(hex_text: str) -> bytes:
    """wmbusmeters' serial_rawtty_*.hex: the bytes a raw-telegram tty carries, as hex lines."""
    return bytes.fromhex("".join(hex_text.split()))


def split_telegrams(data: bytes) -> list[bytes]:
    """Raw telegrams one after another, each starting with its length byte (L)."""
    telegrams = []
    while data:
        size = data[0] + 1
        telegrams.append(data[:size])
        data = data[size:]
    return telegrams


class Im871aEmulator:
    """An IMST iM871A on a PtyDongle: answers wmbusmeters' HCI requests (device info, config,
    ping, set config) as the stick does, and frames received telegrams as it does
    (`A5 <endpoint> <msg id> <length> <payload>`, the telegram without its L byte).

    Enough of the protocol that the real wmbusmeters detects the stick, sets its link mode
    and decodes what it hears; the message ids are the HCI's (wmbusmeters' wmbus_im871a.h).
    """

    SOF = 0xA5
    DEVMGMT = 0x01
    RADIOLINK = 0x02
    GET_DEVICEINFO_REQ = 0x0F
    GET_CONFIG_REQ = 0x05
    SET_CONFIG_REQ = 0x03
    WMBUSMSG_IND = 0x03
    MODULE_IM871A = 0x33

    def __init__(self, dongle: PtyDongle, uid: int = 0x12345678, firmware: int = 0x15) -> None:
        """Serve on the dongle's pty once start() is called. Firmware after 0x13 listens to
        C1 and T1 at once (wmbusmeters asks older ones for one link mode)."""
        self.dongle = dongle
        self.uid = uid
        self.firmware = firmware
        #: The link mode wmbusmeters set (the HCI's number: 3 is T1, 6 is C1a), if any.
        self.link_mode: int | None = None
        self._buffer = b""
        self._loop: asyncio.AbstractEventLoop | None = None

    def _frame(self, endpoint: int, msg_id: int, payload: bytes = b"") -> bytes:
        return bytes([self.SOF, endpoint, msg_id, len(payload)]) + payload

    def start(self) -> None:
        """Answer requests as they come (on the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.dongle.master, self._on_readable)

    def stop(self) -> None:
        """Stop answering."""
        if self._loop is not None:
            self._loop.remove_reader(self.dongle.master)
            self._loop = None

    def _on_readable(self) -> None:
        try:
            self._buffer += os.read(self.dongle.master, 4096)
        except OSError:
            self.stop()  # unplugged
            return
        while self._buffer:
            if self._buffer[0] != self.SOF:
                self._buffer = self._buffer[1:]
                continue
            if len(self._buffer) < 4 or len(self._buffer) < 4 + self._buffer[3]:
                return  # more to come
            endpoint, msg_id, size = self._buffer[1], self._buffer[2], self._buffer[3]
            payload, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
            if endpoint == self.DEVMGMT:
                self.dongle.send(self._answer(msg_id, payload))

    def _answer(self, msg_id: int, payload: bytes) -> bytes:
        uid = self.uid.to_bytes(4, "little")
        if msg_id == self.GET_DEVICEINFO_REQ:
            # module type, device mode, firmware, HCI version, unique id
            body = bytes([self.MODULE_IM871A, 0x00, self.firmware, 0x01]) + uid
        elif msg_id == self.GET_CONFIG_REQ:
            # flags: device mode, link mode, id present; then the second (empty) flag group
            body = bytes([0x13, 0x00, self.link_mode or 0x03]) + uid + bytes([0x00, 0x00])
        elif msg_id == self.SET_CONFIG_REQ:
            # save flag, flags (0x02: link mode follows), link mode, ...
            if len(payload) > 2 and payload[1] & 0x02:
                self.link_mode = payload[2]
            body = b"\x00"  # status: OK
        else:
            body = b"" if msg_id == 0x01 else b"\x00"  # ping: no payload
        return self._frame(self.DEVMGMT, msg_id + 1, body)

    def hear(self, telegram: bytes) -> None:
        """A telegram received over the radio, as the stick passes it on."""
        self.dongle.send(self._frame(self.RADIOLINK, self.WMBUSMSG_IND, telegram[1:]))

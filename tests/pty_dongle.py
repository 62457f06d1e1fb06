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
import select
import termios
import threading
import time
import tty
from typing import Any


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


#: How long the emulated stick takes to answer a request (a USB round trip and its firmware).
RESPONSE_LATENCY = 0.02


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
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1

    def _frame(self, endpoint: int, msg_id: int, payload: bytes = b"") -> bytes:
        return bytes([self.SOF, endpoint, msg_id, len(payload)]) + payload

    def start(self) -> None:
        """Answer requests as they come, in a thread of its own: a real stick answers within
        milliseconds whatever Home Assistant is doing, and wmbusmeters gives up on a slow
        one (answered from the test's busy event loop, detection failed on a loaded machine)."""
        # A stick plugged in now has not heard what was sent to the port before (a detection
        # that found nothing there): answering those stale requests put it out of step.
        os.set_blocking(self.dongle.master, False)
        try:
            while os.read(self.dongle.master, 4096):
                pass
        except BlockingIOError:
            pass
        finally:
            os.set_blocking(self.dongle.master, True)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="im871a", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering."""
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)

    def _serve(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.dongle.master, self._wake_r], [], [])
            except (OSError, ValueError):
                return  # unplugged: its pty is closed
            if self._wake_r in ready or not self._on_readable():
                return

    def _on_readable(self) -> bool:
        """Answer what wmbusmeters sent; False once the dongle is unplugged."""
        try:
            self._buffer += os.read(self.dongle.master, 4096)
        except OSError:
            return False
        while self._buffer:
            if self._buffer[0] != self.SOF:
                self._buffer = self._buffer[1:]
                continue
            if len(self._buffer) < 4 or len(self._buffer) < 4 + self._buffer[3]:
                return True  # more to come
            endpoint, msg_id, size = self._buffer[1], self._buffer[2], self._buffer[3]
            payload, self._buffer = self._buffer[4 : 4 + size], self._buffer[4 + size :]
            if endpoint == self.DEVMGMT:
                # A stick answers over USB a few milliseconds later. At once, the answer can
                # come before wmbusmeters waits for it (it sends, then sets the id it waits
                # for: src/wmbus.cc waitForResponse), and it then times out after 5 s.
                time.sleep(RESPONSE_LATENCY)
                self.dongle.send(self._answer(msg_id, payload))
        return True

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


def mbus_checksum(frame: bytes) -> int:
    """A long frame's checksum: the sum of C, A, CI and data (between `68 L L 68` and CS)."""
    return sum(frame[4:-2]) & 0xFF


class MbusSlaves:
    """Wired M-Bus meters behind a master on a PtyDongle: they answer the real wmbusmeters'
    requests as EN 13757-2 slaves do. SND_NKE (`10 40 A CS 16`) gets an ACK (E5); REQ_UD2
    (`10 5B|7B A CS 16`) gets the meter's RSP_UD long frame (a recorded one: upstream's
    simulations/simulation_mbus.txt), with A set to the address asked; a secondary-address
    selection (`68 0B 0B 68 53 FD 52 <id> <man> <ver> <med> CS 16`) is ACKed by the meter it
    names, which then answers REQ_UD2 at address 253 (FD).

    `answering = False` makes them all silent (a cut bus), True again brings them back.
    """

    def __init__(self, master: PtyDongle) -> None:
        """Serve on the master's pty once start() is called."""
        self.master = master
        #: primary address -> RSP_UD frame; and the secondary id (8 digits) -> primary.
        self.meters: dict[int, bytes] = {}
        self.secondary: dict[str, int] = {}
        self.answering = True
        #: Requests seen, as (kind, address): ("REQ_UD2", 5), ("SELECT", "10484075"), ...
        self.requests: list[tuple[str, int | str]] = []
        self._selected: int | None = None
        self._buffer = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unlock: asyncio.TimerHandle | None = None
        self._fresh: list[Any] = []

    def add(self, address: int, rsp_ud: bytes) -> None:
        """A meter at this primary address answering with this recorded frame; its secondary
        address is the id in the frame (bytes 7-10, BCD, least significant first)."""
        self.meters[address] = rsp_ud
        self.secondary[rsp_ud[7:11][::-1].hex()] = address

    def start(self) -> None:
        """Answer requests as they come (on the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master.master, self._on_readable)
        self._fresh = termios.tcgetattr(self.master._slave)
        self._forget_exclusive()

    def stop(self) -> None:
        """Stop answering."""
        if self._loop is not None:
            self._loop.remove_reader(self.master.master)
            self._loop = None
        if self._unlock is not None:
            self._unlock.cancel()
            self._unlock = None

    def _forget_exclusive(self) -> None:
        """Give the tty the settings of a fresh port again, every 0.2 s. wmbusmeters asks an
        M-Bus tty for 2400 bps with even parity; a pty keeps the speed but has no parity, and
        a second wmbusmeters (after a restart) then fails to open it ("could not open ... with
        2400 baud", measured on 2.0.0 and 3.0.0, not with a fresh pty). A real port does take
        parity. Harmless while one runs: a pty's data does not depend on these settings."""
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.master._slave, termios.TCSANOW, self._fresh)
        if self._loop is not None:
            self._unlock = self._loop.call_later(0.2, self._forget_exclusive)

    def _on_readable(self) -> None:
        try:
            self._buffer += os.read(self.master.master, 4096)
        except OSError:
            self.stop()
            return
        while self._buffer:
            start = self._buffer[0]
            if start == 0x10:
                if len(self._buffer) < 5:
                    return
                frame, self._buffer = self._buffer[:5], self._buffer[5:]
                self._short(frame[1], frame[2])
            elif start == 0x68:
                if len(self._buffer) < 4 or len(self._buffer) < self._buffer[1] + 6:
                    return
                size = self._buffer[1] + 6
                frame, self._buffer = self._buffer[:size], self._buffer[size:]
                self._long(frame)
            else:
                self._buffer = self._buffer[1:]

    def _reply(self, data: bytes) -> None:
        if self.answering:
            self.master.send(data)

    def _short(self, control: int, address: int) -> None:
        if control == 0x40:  # SND_NKE
            self.requests.append(("SND_NKE", address))
            if address == 0xFD:
                self._selected = None  # deselected
            elif address in self.meters or address == 0xFF:
                self._reply(b"\xe5")
        elif control & 0xCF == 0x4B:  # REQ_UD2 (5B or 7B: the FCB toggles)
            self.requests.append(("REQ_UD2", address))
            primary = self._selected if address == 0xFD else address
            if primary is None or primary not in self.meters:
                return
            frame = bytearray(self.meters[primary])
            frame[5] = address
            frame[-2] = mbus_checksum(bytes(frame))
            self._reply(bytes(frame))

    def _long(self, frame: bytes) -> None:
        control, address, ci = frame[4], frame[5], frame[6]
        if control & 0xDF == 0x53 and address == 0xFD and ci == 0x52:  # SND_UD: select
            wanted = frame[7:11][::-1].hex()
            self.requests.append(("SELECT", wanted))
            self._selected = self.secondary.get(wanted)
            if self._selected is not None:
                self._reply(b"\xe5")


def mbus_frames(simulation: str) -> list[bytes]:
    """The RSP_UD frames of a wmbusmeters simulation file (`telegram=|68...16|` lines; `#`
    marks where wmbusmeters' simulation splits header from payload)."""
    return [
        bytes.fromhex(line.split("|")[1].replace("#", ""))
        for line in simulation.splitlines()
        if line.startswith("telegram=|68")
    ]

"""Emulated hardware: a pseudo-terminal that plays a USB serial dongle for the real wmbusmeters.

The test side holds the pty's master; wmbusmeters opens the slave through a symlink named like
the stable names udev gives real dongles (`serial/by-id/usb-...`), as a user would pick it.
"""

from __future__ import annotations

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

    def unplug(self) -> None:
        """The dongle is pulled out: its tty and its by-id name disappear."""
        self.path.unlink(missing_ok=True)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)


def rawtty_telegrams(hex_text: str) -> bytes:
    """wmbusmeters' serial_rawtty_*.hex: the bytes a raw-telegram tty carries, as hex lines."""
    return bytes.fromhex("".join(hex_text.split()))

"""The USB identities of the dongles wmbusmeters reads, as their makers' hardware reports them.

wmbusmeters itself finds dongles by probing ttys, not by USB ids, so these come from elsewhere,
each with its source. Where a dongle sits behind a generic USB-serial chip (FTDI's default
0403:6001, Cypress 04b4:0003) its product string narrows the match, so that a Zigbee stick or
an Arduino on the same chip is never offered. Dongles with no verified identity (iM170A,
AMB3665, CUL, RC1180, iU880B) are not matched: they are set up by hand, and `auto` finds them.
The manifest's `usb` matchers are generated from this table (tests/test_usb.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
import fnmatch


@dataclass(frozen=True, slots=True)
class UsbDongle:
    """One USB identity of a dongle type."""

    vid: str
    pid: str
    device_type: str
    #: fnmatch pattern of the lower-cased USB product string; None: the vid:pid is the maker's own.
    description: str | None = None

    def matcher(self) -> dict[str, str]:
        """As a `usb` matcher of an integration manifest: vid, pid and the description (compared
        lower-cased, with fnmatch)."""
        found = {"vid": self.vid, "pid": self.pid}
        if self.description is not None:
            found["description"] = self.description
        return found

    def matches(self, vid: str, pid: str, description: str | None) -> bool:
        """Whether a discovered device is this dongle (as that matcher decides)."""
        if (vid.upper(), pid.upper()) != (self.vid, self.pid):
            return False
        return self.description is None or (
            description is not None and fnmatch.fnmatch(description.lower(), self.description)
        )


USB_DONGLES = (
    # Linux's cp210x driver: "IMST USB-Stick for Smart Meter", a rebranded iM871A-USB (IMST's
    # own product id on Silicon Labs' vendor id).
    UsbDongle("10C4", "87ED", "im871a"),
    # A user's kernel log in wmbusmeters issue 388: FTDI FT232RL, idVendor=0403,
    # idProduct=6001, Product "AMB8465 Wireless USB Stick", Manufacturer "AMBER".
    UsbDongle("0403", "6001", "amb8465", "*amb8465*"),
    # A user's kernel log in wmbusmeters issue 1354: idVendor=04b4, idProduct=0003,
    # Product "iU891A", Manufacturer "IMST" (Cypress' vendor id, CDC ACM).
    UsbDongle("04B4", "0003", "iu891a", "*iu891a*"),
)


def dongle_type_for(vid: str, pid: str, description: str | None) -> str | None:
    """The dongle type of a discovered USB device, or None if it is none of ours."""
    for dongle in USB_DONGLES:
        if dongle.matches(vid, pid, description):
            return dongle.device_type
    return None

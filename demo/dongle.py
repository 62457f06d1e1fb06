"""An emulated IMST iM871A for scripts/develop --pty-dongle: the real-hardware path in the UI.

    python demo/dongle.py FOLDER SIMULATION

Opens a pty with a by-id name under FOLDER (the tests' emulator, tests/pty_dongle.py), answers
wmbusmeters as the stick does, and passes on the telegrams of a wmbusmeters simulation file
(`telegram=|HEX|` lines) as if heard over the radio, one every second, round after round.
Runs until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import re
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pty_dongle import Im871aEmulator, PtyDongle

_TELEGRAM = re.compile(r"^telegram=\|?([0-9A-Fa-f_|]+?)\|?(?:\+\d+)?$", re.MULTILINE)


def telegrams_of(simulation: Path) -> list[bytes]:
    """The telegrams of a simulation file."""
    return [
        bytes.fromhex(match.group(1).replace("_", "").replace("|", ""))
        for match in _TELEGRAM.finditer(simulation.read_text())
    ]


async def main(folder: Path, telegrams: list[bytes]) -> None:
    """Serve the stick and pass on the telegrams, round after round."""
    dongle = PtyDongle(folder)
    stick = Im871aEmulator(dongle)
    stick.start()
    print(f"emulated iM871A on {dongle.path} ({dongle.tty})", flush=True)
    try:
        while True:
            for telegram in telegrams:
                stick.hear(telegram)
                await asyncio.sleep(1)
    finally:
        stick.stop()
        dongle.unplug()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(Path(sys.argv[1]), telegrams_of(Path(sys.argv[2]))))

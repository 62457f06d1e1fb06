#!/usr/bin/env python3
"""A stand-in for `rtl_sdr`, the RTL-SDR stick's sampler: it writes what a stick would hear if a
C1 meter sent the given telegrams, so the real `rtl_wmbus` and the real wmbusmeters decode
them. No RTL-SDR stick exists here: the samples are synthesized (any telegram, any tuning), or
a recording of a real stick is played (rtl-wmbus' own samples/, see below).

The signal is what EN 13757-4 C1 mode puts on air: frame format A (blocks of 10, then 16 bytes,
each with its CRC-16 0x3D65), preamble and sync word (`01` 16 times, `0000111101`, `0x54CD`), NRZ at
100 kchip/s, 2-FSK at ±45 kHz around 868.95 MHz. It is shifted by wherever `-f` tuned the
stick (wmbusmeters tunes 868.625 MHz and lets `rtl_wmbus -s` look both ways, or the frequency
the user set) and written as rtl_sdr writes it: unsigned 8-bit I/Q at `-s` samples/s.

    rtl_sdr_standin.py [rtl_sdr's options] -         plays each line of $RTL_SDR_STANDIN_TELEGRAMS
                                                    (hex telegrams without CRCs), one a second,
                                                    forever; writes its arguments to
                                                    $RTL_SDR_STANDIN_ARGS if set
    rtl_sdr_standin.py --once HEX [options] -       one burst, then exit (scripts/build-static)

With $RTL_SDR_STANDIN_RECORDING set it plays that file instead, once, as it was recorded (a
real stick's unsigned 8-bit I/Q: rtl-wmbus' own samples/), then quiet carrier.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
import sys
import time

C1_FREQUENCY = 868.95e6
DEVIATION = 45e3
CHIP_RATE = 100e3


def crc16(data: bytes) -> int:
    """The wM-Bus data link layer CRC (polynomial 0x3D65, complemented)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x3D65) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc ^ 0xFFFF


def frame_a(telegram: bytes) -> bytes:
    """The telegram as sent: its first block of 10 bytes, then blocks of 16, each + its CRC."""
    blocks = [telegram[:10]] + [telegram[i : i + 16] for i in range(10, len(telegram), 16)]
    return b"".join(block + crc16(block).to_bytes(2, "big") for block in blocks)


def chips(telegram: bytes) -> list[int]:
    header = [0, 1] * 16 + [int(c) for c in "0000111101"]
    data = bytes([0x54, 0xCD]) + frame_a(telegram)
    return header + [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def burst(telegram: bytes, sample_rate: float, offset: float) -> bytes:
    """One transmission with quiet carrier before and after, as unsigned 8-bit I/Q."""
    per_chip = round(sample_rate / CHIP_RATE)
    frequencies = [offset] * (per_chip * 80)
    for chip in chips(telegram):
        frequencies += [offset + (DEVIATION if chip else -DEVIATION)] * per_chip
    frequencies += [offset] * (per_chip * 160)
    out = bytearray()
    phase = 0.0
    for frequency in frequencies:
        phase += 2 * math.pi * frequency / sample_rate
        out.append(round(127.5 + 100 * math.cos(phase)))
        out.append(round(127.5 + 100 * math.sin(phase)))
    return bytes(out)


def hertz(text: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1.0)
    return float(text[:-1] if scale != 1.0 else text) * scale


def main(argv: list[str]) -> int:
    once = None
    options: dict[str, str] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--once":
            once = args.pop(0)
        elif arg.startswith("-") and arg != "-" and args:
            options[arg] = args.pop(0)
    if record := os.environ.get("RTL_SDR_STANDIN_ARGS"):
        Path(record).write_text(" ".join(argv) + "\n")
    sample_rate = hertz(options.get("-s", "2.048e6"))
    offset = C1_FREQUENCY - hertz(options.get("-f", "868.95M"))
    if recording := os.environ.get("RTL_SDR_STANDIN_RECORDING"):
        return play(Path(recording))
    hexes = [once] if once else Path(os.environ["RTL_SDR_STANDIN_TELEGRAMS"]).read_text().split()
    # A transmitter beyond what the stick sees (tuned elsewhere) is not heard: only noise-free
    # silence is written then, which keeps rtl_wmbus' stall detector (-f) quiet.
    audible = abs(offset) + DEVIATION < sample_rate / 2
    bursts = [
        burst(bytes.fromhex(h), sample_rate, offset) if audible else bytes([127, 127]) * 32000
        for h in hexes
    ]
    sys.stderr.write("Found 1 device(s):\n  0:  Stand-in, RTL2838UHIDIR, SN: 00000001\n")
    out = sys.stdout.buffer
    try:
        while True:
            for data in bursts:
                out.write(data)
                out.flush()
                if once:
                    return 0
                time.sleep(1.0)
    except (BrokenPipeError, KeyboardInterrupt):
        # rtl_wmbus went away (wmbusmeters restarted the pipeline): so does a real rtl_sdr.
        os.close(1)
        return 0


def play(recording: Path) -> int:
    """A recorded stick's samples, then quiet carrier (as a stick keeps sampling), a second
    at a time, until rtl_wmbus goes away."""
    sys.stderr.write("Found 1 device(s):\n  0:  Stand-in, RTL2838UHIDIR, SN: 00000001\n")
    out = sys.stdout.buffer
    try:
        out.write(recording.read_bytes())
        out.flush()
        while True:
            time.sleep(1.0)
            out.write(bytes([127, 127]) * 800_000)
            out.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        os.close(1)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A fake wmbusmeters, ONLY for faults the real 2.0.0 cannot be made to show on demand.

Crashes, hangs, silence, floods and garbage. The mode comes from the FAKE_WMBUSMETERS_MODE
environment variable (the runner passes its environment on). Everything else in the tests uses
the real binary.
"""

from __future__ import annotations

import os
import signal
import sys
import time

TELEGRAM = (
    '{"_":"telegram","media":"cold water","meter":"multical21","name":"m76348799",'
    '"id":"76348799","total_m3":6.408,"status":"OK","timestamp":"2026-11-23T20:55:54Z"}\n'
)


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main() -> int:
    mode = os.environ.get("FAKE_WMBUSMETERS_MODE", "silent")
    if "--version" in sys.argv:
        out("wmbusmeters: 9.9.9-fake\n\n")
        return 0
    if any(arg.startswith("--list") for arg in sys.argv):
        return 0  # no drivers or fields to tell of: the integration then reads without them
    if "--help" in sys.argv:  # the probe reads which listing option the binary has
        out("    --listdrivers list all meter drivers\n")
        return 0
    if mode == "crash_on_start":
        sys.stderr.write("fake: cannot open device\n")
        return 3
    if mode == "crash_with_long_error":
        sys.stderr.write("fake: " + "e" * 60_000 + "\n")
        return 3
    if mode == "crash_mid_stream":
        out(TELEGRAM)
        out(TELEGRAM.replace("6.408", "6.409"))
        sys.stderr.write("fake: segmentation fault\n")
        return 139
    if mode == "hang_on_sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        out(TELEGRAM)
    elif mode == "huge_line":
        out('{"_":"telegram","junk":"' + "x" * 1_000_000 + '"}\n')
        out(TELEGRAM)
    elif mode == "garbage":
        sys.stdout.buffer.write(b"\xff\xfe\x00garbage\x80\n{not json\n[1,2]\n\x1b[31mred\n")
        sys.stdout.buffer.flush()
        out(TELEGRAM)
    elif mode == "stderr_flood":
        sys.stderr.write("(wmbus) warning: noise\n" * 100_000)
        sys.stderr.flush()
        out(TELEGRAM)
    elif mode == "script":
        # Lines from the file FAKE_WMBUSMETERS_SCRIPT: stdout lines as they are, `stderr:<line>`
        # to stderr, `sleep:<seconds>` to pause; then it stays up.
        with open(os.environ["FAKE_WMBUSMETERS_SCRIPT"], encoding="utf-8") as script:
            for line in script:
                if line.startswith("stderr:"):
                    sys.stderr.write(line[7:])
                    sys.stderr.flush()
                elif line.startswith("sleep:"):
                    time.sleep(float(line[6:]))
                else:
                    out(line)
    elif mode == "stderr_flood_forever":
        noise = "(wmbus) warning: noise\n" * 1000
        while True:
            sys.stderr.write(noise)
            sys.stderr.flush()
    elif mode == "soak":
        # FAKE_SOAK_RATE telegrams/s (default 500) from FAKE_SOAK_METERS meters (default 10,
        # ids 10000000, 10000001, ...), each value growing: until stopped.
        rate = int(os.environ.get("FAKE_SOAK_RATE", "500"))
        meters = int(os.environ.get("FAKE_SOAK_METERS", "10"))
        sent = 0
        start = time.monotonic()
        while True:
            meter_id = 10000000 + sent % meters
            out(TELEGRAM.replace("76348799", str(meter_id)).replace("6.408", f"{sent / 1000:.3f}"))
            sent += 1
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    elif mode == "exit_clean":
        out(TELEGRAM)
        return 0
    while True:  # "silent" and the modes above: stay up until signalled
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())

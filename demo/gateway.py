"""Two pretend ESP32 gateways for `scripts/develop --mqtt`: they publish the demo's telegrams
(demo/simulation_demo.txt, with its spacing, over and over) as raw frames to a local MQTT
broker, as the ESPHome example in the README does: a JSON object per frame on
`wmbus/<gateway>/raw` with the frame in hex, the RSSI and the gateway's name. Both hear
every frame (overlapping coverage), the cellar one weaker: the receiver decodes each once,
with the attic's RSSI.

Usage: python demo/gateway.py PORT [SIMULATION]
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import sys
import time

from paho.mqtt import publish

SIMULATION = Path(__file__).with_name("simulation_demo.txt")
GATEWAYS = (("cellar", -88), ("attic", -61))
_TELEGRAM = re.compile(r"telegram=\|([0-9A-Fa-f_|]+)\|\+(\d+)")


def telegrams(path: Path) -> list[tuple[str, int]]:
    """(frame hex, seconds after the start) of each telegram line."""
    found = []
    for line in path.read_text().splitlines():
        if match := _TELEGRAM.fullmatch(line.strip()):
            found.append((match[1].replace("_", "").replace("|", ""), int(match[2])))
    return found


def main(port: int, path: Path = SIMULATION) -> None:
    frames = telegrams(path)
    while True:
        start = time.monotonic()
        for frame, after in frames:
            time.sleep(max(0.0, start + after - time.monotonic()))
            messages = [
                {
                    "topic": f"wmbus/{name}/raw",
                    "payload": json.dumps({"data": frame, "rssi": rssi, "gateway": name}),
                }
                for name, rssi in GATEWAYS
            ]
            try:
                publish.multiple(messages, hostname="127.0.0.1", port=port)  # type: ignore[arg-type]
            except OSError as err:  # the broker restarting: the next frame tries again
                print(f"gateway: cannot publish: {err}", file=sys.stderr, flush=True)
        time.sleep(5)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else SIMULATION)

"""A real MQTT broker for the tests: Debian's mosquitto (scripts/setup installs it), started on
a free port of 127.0.0.1 with a configuration of the test's own, and a real client (paho,
which Home Assistant's MQTT integration uses too) publishing as a gateway does."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time

from paho.mqtt import publish

from .test_network import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
#: How long the broker may take to accept connections (it takes milliseconds).
START_TIMEOUT = 20.0


class Broker:
    """One mosquitto on one port; stop() and start() again keep the port (a broker restarted)."""

    def __init__(self, directory: Path) -> None:
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._configure(free_port())

    def _configure(self, port: int) -> None:
        self.port = port
        self.config.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # Every QoS 0 message is kept for a slow subscriber (a flood test counts them all;
            # the default drops past 1000 queued).
            "max_queued_messages 0\n"
            # As root it would switch to a `mosquitto` user a fresh root may not have.
            "user root\n"
            "log_dest stderr\n"
        )

    def start(self) -> None:
        """Start it and return once it accepts connections (blocking). The first start takes
        another free port if the one picked was taken meanwhile (by another test)."""
        for attempt in range(3):
            try:
                self._start()
            except RuntimeError:
                if self._started_once or attempt == 2:
                    raise
                self._configure(free_port())
            else:
                self._started_once = True
                return

    def _start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        # Ours once it says it runs (a connection alone could reach another program that has
        # the port: this mosquitto would then exit, unable to listen).
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with self.log.open("rb") as log:
                log.seek(offset)
                said = log.read().decode(errors="replace")
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {said}")
            if f"listen socket on port {self.port}." in said and " running" in said:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                return
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop it (blocking); its clients lose their connection."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def publish_apart(self, topic: str, payloads: list[str]) -> None:
        """Publish from a process of its own (blocking until it is done): a publisher that
        does not share Home Assistant's interpreter (benchmarks)."""
        script = (
            "import sys\nfrom paho.mqtt import publish\n"
            "topic, port = sys.argv[1], int(sys.argv[2])\n"
            "msgs = [{'topic': topic, 'payload': p} for p in sys.stdin.read().split()]\n"
            "publish.multiple(msgs, hostname='127.0.0.1', port=port)\n"
        )
        subprocess.run(
            [sys.executable, "-c", script, topic, str(self.port)],
            input="\n".join(payloads).encode(),
            check=True,
            timeout=300,
        )

    def publish(self, messages: Iterable[tuple[str, bytes | str, bool]]) -> None:
        """Publish (topic, payload, retain) messages as one gateway, in order (blocking)."""
        msgs = [
            {"topic": topic, "payload": payload, "qos": 0, "retain": retain}
            for topic, payload, retain in messages
        ]
        publish.multiple(msgs, hostname="127.0.0.1", port=self.port)  # type: ignore[arg-type]

"""scripts/faults: every fault of the reliability campaign against a live Home Assistant.

Home Assistant 2026.10 runs as scripts/develop runs it (its own process, the integration from
custom_components/, onboarding through the HTTP API), plus `loopwatch` (scripts/faults_probe),
which publishes the longest event-loop block. Each fault sets up a receiver through the config
flow, plays the fault, and is measured: Home Assistant's RSS before/peak/after, its CPU, the
latency of the REST API (a request every 50 ms), the longest loop block, wmbusmeters children
and zombies after, tracebacks in its log. One table at the end; exit 1 if a row is out of its
bounds (BOUNDS below).

The FAKE wmbusmeters (tests/fake_wmbusmeters.py) plays what the real one cannot do on demand
(crash loop, garbage, floods, NaN); the unplug/replug row uses the real wmbusmeters on an
emulated dongle (tests/pty_dongle.py). The network rows run the real wmbusmeters behind the
integration's TCP/UDP listener on 127.0.0.1, fed by clients in a process of their own (Sender),
each bound to its own 127.0.0.x (a source of its own to the listener): sixteen sources flooding,
slow and half-open clients past the connection limit, malformed and over-long lines at rate. In
each, a good client's meter must keep updating and the per-source counters must add up to what
was sent (exactly, over TCP). The day-two row reloads, moves, edits and deletes receivers while
telegrams stream in, and looks for orphan entities and processes left behind.

`scripts/faults --only network,day2` plays some rows (a name, or its first word); about 7
minutes for all of them.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import functools
import ipaddress
import json
import os
from pathlib import Path
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.pty_dongle import PtyDongle, rawtty_telegrams  # noqa: E402

DOMAIN = "wmbusmeters"
PORT = int(os.environ.get("FAULTS_PORT", "8129"))
BASE = f"http://127.0.0.1:{PORT}"
TAP = "76348799"
ROOMS = rawtty_telegrams((REPO / "tests" / "data" / "serial_rawtty_ok.hex").read_text())
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
#: A meter subentry's form: name, driver, id, key.
type Meter = tuple[str, str, str, str]

#: What each row must stay within. Growth is peak RSS minus RSS before the fault.
BOUNDS = {
    "growth_mb": 50.0,  # the issue's bound for the floods; held for every fault
    "p99_ms": 50.0,  # API latency while the fault plays
    "block_ms": 100.0,  # longest event-loop block (500 fields: 50)
    "zombies": 0,
    "tracebacks": 0,
}
BLOCK_FIELDS_MS = 50.0


@dataclass
class Row:
    """One fault's measurements."""

    fault: str
    rss_before: float = 0.0
    rss_peak: float = 0.0
    rss_after: float = 0.0
    cpu: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    block: float = 0.0
    children: int = 0
    zombies: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def proc_stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> tuple[list[int], int]:
    """Child processes of pid (live) and how many are zombies."""
    found, zombies = [], 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = proc_stat(int(entry))
        except (OSError, ValueError):
            continue
        if int(fields[1]) == pid:
            if fields[0] == "Z":
                zombies += 1
            else:
                found.append(int(entry))
    return found, zombies


class HomeAssistant:
    """A real Home Assistant in a config directory of its own."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = ""
        self.log = config / "home-assistant.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        custom = self.config / "custom_components"
        custom.mkdir(parents=True, exist_ok=True)
        for name, source in (
            ("wmbusmeters", REPO / "custom_components" / "wmbusmeters"),
            ("loopwatch", REPO / "scripts" / "faults_probe" / "loopwatch"),
        ):
            link = custom / name
            if not link.exists():
                link.symlink_to(source)
        (self.config / "configuration.yaml").write_text(
            "homeassistant:\n  time_zone: Europe/Copenhagen\n  unit_system: metric\n"
            "frontend:\nconfig:\nloopwatch:\nlogger:\n  default: warning\n"
        )
        # http as scripts/develop writes it: where HA 2026.10 keeps it (in YAML it would be a
        # pending change that reverts by itself after a few minutes).
        (self.config / ".storage").mkdir(exist_ok=True)
        (self.config / ".storage" / "http").write_text(
            json.dumps(
                {
                    "version": 2,
                    "minor_version": 2,
                    "key": "http",
                    "data": {
                        "stable": {
                            "server_port": PORT,
                            "server_host": ["127.0.0.1"],
                            "cors_allowed_origins": ["https://cast.home-assistant.io"],
                            "login_attempts_threshold": -1,
                            "ip_ban_enabled": True,
                            "ssl_profile": "modern",
                            "use_x_frame_options": True,
                            "created_at": "2026-01-01T00:00:00+00:00",
                            "error": None,
                            "error_message": None,
                        },
                        "pending": None,
                        "yaml_migration_done": True,
                    },
                }
            )
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homeassistant",
                "--config",
                str(self.config),
                "--skip-pip-packages",
                "wmbusmeters,loopwatch",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Not the repo: `python -m` puts the working directory first on sys.path, and the
            # repo's custom_components/ would hide the config's (loopwatch).
            cwd=self.config,
        )

    async def connect(self) -> None:
        self.session = aiohttp.ClientSession()
        client_id = BASE + "/"
        for _ in range(300):
            try:
                async with self.session.get(BASE + "/api/onboarding") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        else:
            raise SystemExit("Home Assistant did not answer")
        code = (
            await self.post(
                "/api/onboarding/users",
                {
                    "client_id": client_id,
                    "name": "Faults",
                    "username": "faults",
                    "password": "faults-1234",
                    "language": "en",
                },
            )
        )["auth_code"]
        async with self.session.post(
            BASE + "/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
        ) as resp:
            self.token = (await resp.json())["access_token"]
        await self.post("/api/onboarding/core_config", {})

    async def post(self, path: str, data: Any = None) -> Any:
        assert self.session is not None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.post(BASE + path, json=data, headers=headers) as resp:
            if resp.status >= 400:
                raise SystemExit(f"POST {path}: {resp.status} {await resp.text()}")
            return await resp.json()

    async def get(self, path: str) -> Any:
        assert self.session is not None
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.get(BASE + path, headers=headers) as resp:
            return await resp.json() if resp.status == 200 else None

    async def delete(self, path: str) -> Any:
        assert self.session is not None
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.delete(BASE + path, headers=headers) as resp:
            return await resp.json()

    async def state(self, entity_id: str) -> str | None:
        found = await self.get(f"/api/states/{entity_id}")
        return None if found is None else found["state"]

    async def service(self, domain: str, service: str, data: dict[str, Any]) -> None:
        await self.post(f"/api/services/{domain}/{service}", data)

    async def ws(self, message: dict[str, Any]) -> Any:
        """One websocket command's result (a connection of its own: a handful per row)."""
        assert self.session is not None
        async with self.session.ws_connect(BASE + "/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": self.token})
            await ws.receive_json()
            await ws.send_json({"id": 1, **message})
            reply = await ws.receive_json()
        if not reply.get("success"):
            raise SystemExit(f"websocket {message['type']}: {reply}")
        return reply["result"]

    async def issues(self) -> list[dict[str, Any]]:
        return list((await self.ws({"type": "repairs/list_issues"}))["issues"])

    async def flow(self, start: dict[str, Any], *steps: dict[str, Any]) -> dict[str, Any]:
        """A config flow through the HTTP API, as the frontend drives it: started with
        `start`, each step posted in turn; the last result."""
        path = "/api/config/config_entries/flow"
        flow_id = (await self.post(path, {"handler": DOMAIN, **start}))["flow_id"]
        result: dict[str, Any] = {}
        for step in steps:
            result = await self.post(f"{path}/{flow_id}", step)
        return result

    async def add_receiver(
        self,
        command: str,
        device: str = "auto",
        meters: tuple[Meter, ...] = (),
        **extra: Any,
    ) -> str:
        form = {"command": command, "device": device, "link_modes": ["c1"], **extra}
        # The menu: a radio here.
        return await self.created(await self.flow({}, {"next_step_id": "radio"}, form), meters)

    async def add_network_receiver(
        self, protocol: str, port: int, meters: tuple[Meter, ...], allowed: tuple[str, ...] = ()
    ) -> str:
        """A network receiver on 127.0.0.1 (the menu's "network")."""
        form = network_form(protocol, port, allowed)
        return await self.created(await self.flow({}, {"next_step_id": "network"}, form), meters)

    async def created(self, result: dict[str, Any], meters: tuple[Meter, ...]) -> str:
        """The receiver a flow created, once these meters are added to it."""
        if result.get("type") != "create_entry":
            raise SystemExit(f"receiver flow: {result}")
        entry_id: str = result["result"]["entry_id"]
        for meter in meters:
            await self.add_meter(entry_id, meter)
        return entry_id

    async def add_meter(self, entry_id: str, meter: Meter) -> dict[str, Any]:
        """A meter subentry through its flow; the flow's result."""
        name, driver, meter_id, key = meter
        path = "/api/config/config_entries/subentries/flow"
        flow = await self.post(path, {"handler": [entry_id, "meter"]})
        form = {"name": name, "driver": driver, "meter_id": meter_id, "key": key}
        return dict(await self.post(f"{path}/{flow['flow_id']}", form))

    async def reload(self, entry_id: str) -> None:
        await self.post(f"/api/config/config_entries/entry/{entry_id}/reload")

    async def entity_ids(self, entry_id: str) -> dict[str, str]:
        """A receiver's own entities (not its meters'): translation key -> entity id."""
        return {
            e["translation_key"]: e["entity_id"]
            for e in await self.ws({"type": "config/entity_registry/list"})
            if e["config_entry_id"] == entry_id and e["config_subentry_id"] is None
        }

    async def orphans(self) -> list[str]:
        """Entities of loaded receivers that no platform provides: HA shows them as
        "unavailable" with `restored: true` (added to an unloaded platform, or left behind)."""
        entries = await self.ws({"type": "config_entries/get", "domain": DOMAIN})
        loaded = {e["entry_id"] for e in entries if e["state"] == "loaded"}
        states = {s["entity_id"]: s for s in await self.get("/api/states") or []}
        found = []
        for entity in await self.ws({"type": "config/entity_registry/list"}):
            if entity["platform"] != DOMAIN or entity["config_entry_id"] not in loaded:
                continue
            if entity["disabled_by"] is not None:
                continue
            state = states.get(entity["entity_id"])
            if state is None or state["attributes"].get("restored"):
                found.append(entity["entity_id"])
        return found

    async def remove_receiver(self, entry_id: str) -> None:
        await self.delete(f"/api/config/config_entries/entry/{entry_id}")

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback (most recent call last)")

    async def stop(self) -> float:
        """SIGTERM; the seconds until Home Assistant has exited."""
        assert self.proc is not None
        if self.session is not None:
            await self.session.close()
            self.session = None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, 120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - started


def fake(folder: Path, mode: str, **env: str) -> str:
    """An executable FAKE wmbusmeters in this mode (its environment is set inside it: HA's
    is fixed at its start)."""
    path = folder / f"fake-{mode}" / "wmbusmeters"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"FAKE_WMBUSMETERS_MODE": mode, **env}
    path.write_text(
        f"#!{sys.executable}\nimport os, runpy\nos.environ.update({settings!r})\n"
        f"runpy.run_path({str(REPO / 'tests' / 'fake_wmbusmeters.py')!r}, run_name='__main__')\n"
    )
    path.chmod(0o755)
    return str(path)


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.25)
    return False


async def measured(
    ha: HomeAssistant,
    name: str,
    play: Callable[[Row], Awaitable[None]],
    *,
    max_children: int,
    settle: float = 3.0,
    block_bound: float = BOUNDS["block_ms"],
) -> Row:
    """Play one fault while sampling; then check the row against its bounds."""
    row = Row(name)
    await ha.service("loopwatch", "reset", {})
    await asyncio.sleep(1)
    row.rss_before = rss_mb(ha.pid)
    tracebacks = ha.tracebacks()
    cpu, wall = cpu_seconds(ha.pid), time.monotonic()
    latencies: list[float] = []
    peak = row.rss_before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(ha.pid))
            started = time.monotonic()
            await ha.get("/api/states/sensor.loopwatch_block")
            latencies.append((time.monotonic() - started) * 1000)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        await play(row)
    finally:
        done.set()
        await sampler
    row.cpu = (cpu_seconds(ha.pid) - cpu) / (time.monotonic() - wall) * 100
    await asyncio.sleep(settle)
    row.rss_peak = max(peak, rss_mb(ha.pid))
    row.rss_after = rss_mb(ha.pid)
    if latencies:
        latencies.sort()
        row.p50 = statistics.median(latencies)
        row.p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    row.block = float(await ha.state("sensor.loopwatch_block") or 0)
    live, row.zombies = children(ha.pid)
    row.children = len(live)
    row.tracebacks = ha.tracebacks() - tracebacks
    growth = row.rss_peak - row.rss_before
    checks = [
        (growth <= BOUNDS["growth_mb"], f"RSS grew {growth:.0f} MB"),
        (row.p99 <= BOUNDS["p99_ms"], f"API p99 {row.p99:.0f} ms"),
        (row.block <= block_bound, f"loop blocked {row.block:.0f} ms"),
        (row.zombies == BOUNDS["zombies"], f"{row.zombies} zombies"),
        (row.children <= max_children, f"{row.children} children, at most {max_children}"),
        (row.tracebacks == BOUNDS["tracebacks"], f"{row.tracebacks} tracebacks in the log"),
    ]
    row.problems.extend(text for ok, text in checks if not ok)
    return row


async def run(work: Path, only: list[str]) -> list[Row]:
    ha = HomeAssistant(work / "config")
    ha.start()
    rows: list[Row] = []
    try:
        await ha.connect()
        await asyncio.sleep(5)  # startup settles
        await Faults(ha, work, rows).play_all(only)
    finally:
        if ha.proc is not None and ha.proc.poll() is None:
            await ha.stop()
    return rows


def telegram_line(meter_id: str, fields: str, stamp: str = "2026-11-25T10:00:00Z") -> str:
    """A telegram as wmbusmeters prints it; `fields` is raw JSON text (NaN and friends)."""
    return (
        f'{{"_":"telegram","meter":"multical21","id":"{meter_id}",{fields},"timestamp":"{stamp}"}}'
    )


# -- network receivers: the clients that send to them ----------------------------------------

#: A Multical 21 C1 telegram as an ESPHome node forwards it (hex, no CRCs): the one
#: tests/test_network.py sends (wmbusmeters' simulations/simulation_c1.txt), total 6.408 m³.
HEX = "2A442D2C998734761B168D2091D37CAC21576C7802FF207100041308190000441308190000615B7F616713"
#: The meter that flood, slow and mixed lines are for; the Tap's value is the good client's.
OTHER = "12345678"
#: The UDP receiver's meters in the flood row (a meter belongs to one receiver).
UDP_TAP, UDP_OTHER = "76348700", "12345679"
#: The day-two radio's meter.
COLD = "44556677"
#: Every client binds a source address of its own in here (127.0.0.0/8 is all loopback, so
#: each is a source of its own to the listener's per-source counters and rate).
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
#: The listener's limits (custom_components/wmbusmeters/wmbus/listener.py; not imported: that
#: would import Home Assistant into the senders' process).
MAX_CONNECTIONS = 16
RATE, BURST = 100.0, 200.0
#: Lines the listener drops, by reason (its DROPPED).
DROPPED = ("malformed", "too_long", "rate_limited", "denied", "undelivered")
#: Lines the listener must count as malformed (each at most 1024 bytes, none blank).
MALFORMED = (
    b"\x00\xff\xfe garbage \x01\x02",
    b"not a telegram at all",
    HEX[:-1].encode(),  # an odd number of digits
    b"ABCDEF",  # too short for a telegram
    (HEX[:20] + " " + HEX[20:]).encode(),
    f"C1;1;1;2026-11-25 16:31:15.332627;92;98;76348799;0x{HEX}".encode(),  # rtl_wmbus, not hex
    b"0x" + HEX.encode(),
    b"AB" * 301,  # 602 digits: longer than any telegram
    "télégramme".encode(),
    b"\r\r\rZZ",
)
#: Lines over 1024 bytes: too long, whatever they hold.
TOO_LONG = (b"A" * 1100, HEX.encode() * 30, b"\xff" * 4000)
MEGABYTE = b"B" * 2**20


def _crc16(data: bytes) -> int:
    """The EN 13757 CRC of wM-Bus frames (polynomial 0x3D65)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x3D65 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc ^ 0xFFFF


def hex_line(meter_id: str, litres: int) -> bytes:
    """HEX for another meter id and total. Every line a client sends differs: wmbusmeters drops
    a telegram equal to one of its last ten, and a changing value shows which line got through.
    The total is in both volume records; the ELL payload CRC over them is recomputed."""
    frame = bytearray.fromhex(HEX)
    frame[4:8] = bytes.fromhex(meter_id)[::-1]
    frame[27:31] = frame[33:37] = litres.to_bytes(4, "little")
    frame[17:19] = _crc16(bytes(frame[19:])).to_bytes(2, "little")
    return frame.hex().upper().encode()


def free_port(protocol: str) -> int:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def network_form(protocol: str, port: int, allowed: tuple[str, ...] = ()) -> dict[str, Any]:
    """The network receiver's form (tests/test_network.py's entry data): 127.0.0.1 only."""
    return {
        "command": shutil.which("wmbusmeters") or "/usr/bin/wmbusmeters",
        "listen_protocol": protocol,
        "listen_host": "127.0.0.1",
        "listen_port": port,
        "line_format": "hex",
        "allowed_sources": list(allowed),
    }


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def one_line(port: int) -> None:
    """A good line of the Tap (total 0.001) from a connection closed at once, from 127.0.0.3."""
    with socket.create_connection(("127.0.0.1", port), 5, ("127.0.0.3", 0)) as sock:
        sock.sendall(hex_line(TAP, 1) + b"\n")


def wmbusmeters_of(entry_id: str) -> list[int]:
    """The processes started for this receiver (its --useconfig directory is named after it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if entry_id.encode() in cmdline and b"--useconfig" in cmdline:
            found.append(int(entry))
    return found


def client(kind: str, source: str, port: int, seconds: float, **more: Any) -> dict[str, Any]:
    """One client of a plan for `scripts/faults.py --send`; it starts `after` seconds in."""
    return {"kind": kind, "source": source, "ports": [port], "seconds": seconds, **more}


class Sender:
    """The network rows' clients, in a process of their own (`scripts/faults.py --send PLAN`,
    results as JSON on stdout): a flood sharing the sampler's event loop would add its own
    delays to the latencies measured. Each client stops by itself at its time or line count;
    the whole plan is cut off 20 s after its last client should have ended."""

    def __init__(self, plan: list[dict[str, Any]]) -> None:
        for spec in plan:
            if ipaddress.ip_address(spec["source"]) not in LOOPBACK:
                raise SystemExit(f"not a loopback address: {spec['source']}")
        self.plan = plan
        self.started = time.monotonic()

    async def run(self) -> list[dict[str, Any]]:
        longest = max(spec.get("after", 0) + spec["seconds"] for spec in self.plan)
        async with asyncio.timeout(longest + 20):
            return list(await asyncio.gather(*(self.client(spec) for spec in self.plan)))

    async def client(self, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"kind": spec["kind"], "source": spec["source"], "errors": []}
        result["protocol"] = spec.get("protocol", "tcp")
        result.update(dict.fromkeys(("good", "malformed", "too_long", "noise", "refused"), 0))
        after = spec.get("after", 0.0)
        await asyncio.sleep(after)
        end = self.started + after + spec["seconds"]
        try:
            await getattr(self, spec["kind"])(spec, end, result)
        except OSError as err:
            result["errors"].append(repr(err))
        return result

    @staticmethod
    async def connect(
        spec: dict[str, Any], port: int | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", port or spec["ports"][0], local_addr=(spec["source"], 0)
            ),
            5,
        )

    @staticmethod
    async def close(writer: asyncio.StreamWriter) -> None:
        """Close once what was written has left (the listener reads all of it before EOF)."""
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 10)

    @staticmethod
    async def closed(reader: asyncio.StreamReader) -> None:
        """Until the listener closes the connection: it never writes, so a read ends only then
        (with a reset when it closed with our lines unread: a reload)."""
        with contextlib.suppress(OSError):
            await reader.read(1)

    @staticmethod
    async def refused(reader: asyncio.StreamReader) -> bool:
        """Whether the listener closed this new connection at once (past its limit)."""
        try:
            return await asyncio.wait_for(reader.read(1), 1) == b""
        except TimeoutError:
            return False
        except OSError:
            return True

    async def good(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """A line every `every` seconds, each a new total of `meter`; over TCP it reconnects
        when the listener closes it, trying its ports in turn (a reload, a new port)."""
        if spec.get("protocol") == "udp":
            await self.good_udp(spec, end, result)
            return
        ports, index, n = spec["ports"], 0, 0
        writer: asyncio.StreamWriter | None = None
        eof: asyncio.Future[None] | None = None
        # Steps that take what they take end the stream by this file (a stat per line: cheap).
        stop = spec.get("stop_file") or "/nonexistent"
        while time.monotonic() < end and not os.path.exists(stop):  # noqa: ASYNC240
            if writer is None or eof is None or eof.done():
                if writer is not None:
                    writer.close()
                try:
                    reader, writer = await self.connect(spec, ports[index % len(ports)])
                except (OSError, TimeoutError):
                    writer, index = None, index + 1
                    await asyncio.sleep(0.1)
                    continue
                result["connects"] = result.get("connects", 0) + 1
                eof = asyncio.ensure_future(self.closed(reader))
            value = spec["first"] + n
            try:
                writer.write(hex_line(spec["meter"], value) + b"\n")
                await writer.drain()
            except OSError:
                writer.close()
                writer = None
                continue
            n += 1
            result["good"], result["last"] = n, value
            await asyncio.sleep(spec["every"])
        if eof is not None:
            eof.cancel()
        if writer is not None:
            await self.close(writer)

    async def good_udp(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((spec["source"], 0))
            n = 0
            while time.monotonic() < end:
                value = spec["first"] + n
                sock.sendto(hex_line(spec["meter"], value), ("127.0.0.1", spec["ports"][0]))
                n += 1
                result["good"], result["last"] = n, value
                await asyncio.sleep(spec["every"])

    async def flood(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """TCP lines as fast as the listener takes them (it pauses reading while wmbusmeters
        lags), up to `max_lines`."""
        lines = [hex_line(spec["meter"], spec["first"] + k) + b"\n" for k in range(1000)]
        blocks = [b"".join(lines[k : k + 250]) for k in range(0, 1000, 250)]
        _reader, writer = await self.connect(spec)
        sent = 0
        try:
            while time.monotonic() < end and sent < spec["max_lines"]:
                writer.write(blocks[(sent // 250) % 4])
                await writer.drain()
                sent += 250
                await asyncio.sleep(0)  # the other clients' turn
        finally:
            result["good"] = sent
            await self.close(writer)

    async def udp_flood(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """Datagrams of ten lines at `rate` lines/s (UDP has no brake: what the listener cannot
        read is dropped by the kernel), up to `max_lines`."""
        datagrams = [
            b"\n".join(hex_line(spec["meter"], spec["first"] + k + j) for j in range(10))
            for k in range(0, 1000, 10)
        ]
        per_tick = max(1, int(spec["rate"] / 10 / 100))  # datagrams every 10 ms
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((spec["source"], 0))
            sock.setblocking(False)
            sent = 0
            while time.monotonic() < end and sent < spec["max_lines"]:
                for _ in range(per_tick):
                    with contextlib.suppress(BlockingIOError):
                        sock.sendto(datagrams[(sent // 10) % 100], ("127.0.0.1", spec["ports"][0]))
                        sent += 10
                await asyncio.sleep(0.01)
        result["good"] = sent

    async def slow(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """Good lines a byte every `every` seconds."""
        _reader, writer = await self.connect(spec)
        n = 0
        try:
            while time.monotonic() < end:
                for byte in hex_line(spec["meter"], spec["first"] + n) + b"\n":
                    if time.monotonic() >= end:
                        return
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(spec["every"])
                n += 1
                result["good"] = n
        finally:
            await self.close(writer)

    async def half_open(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """Half a line, then nothing: no more bytes, no reading, no close until the end. With
        `shut_write`, the write side is shut down after the half line (the listener closes)."""
        reader, writer = await self.connect(spec)
        writer.write(hex_line(spec.get("meter", OTHER), spec["first"])[:40])
        await writer.drain()
        if spec.get("shut_write"):
            writer.write_eof()
            with contextlib.suppress(TimeoutError):
                closed = await asyncio.wait_for(reader.read(), 5) == b""
                result["closed_by_listener"] = closed
        elif await self.refused(reader):
            result["refused"] = 1
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        await self.close(writer)

    async def mixed(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """Every `every` seconds a batch, shuffled: a good line, 40 malformed ones, 8 over 1024
        bytes; every fifth batch a line of random hex (the listener takes it, wmbusmeters
        cannot make sense of it), every fiftieth a 1 MB line."""
        _reader, writer = await self.connect(spec)
        shuffle = random.Random(spec["source"]).shuffle
        batch = 0
        try:
            while time.monotonic() < end:
                lines = [hex_line(spec["meter"], spec["first"] + batch)]
                lines += [MALFORMED[(batch + k) % len(MALFORMED)] for k in range(40)]
                lines += [TOO_LONG[(batch + k) % len(TOO_LONG)] for k in range(8)]
                result["good"] += 1
                result["malformed"] += 40
                result["too_long"] += 8
                if batch % 5 == 0:
                    lines.append(random.randbytes(20).hex().encode())
                    result["noise"] += 1
                if batch % 50 == 49:
                    lines.append(MEGABYTE)
                    result["too_long"] += 1
                shuffle(lines)
                writer.write(b"\n".join(lines) + b"\n")
                await writer.drain()
                batch += 1
                await asyncio.sleep(spec["every"])
        finally:
            await self.close(writer)

    async def denied(self, spec: dict[str, Any], end: float, result: dict[str, Any]) -> None:
        """A source outside the allow-list: `attempts` connections, each sending a good line."""
        for n in range(spec["attempts"]):
            if time.monotonic() >= end:
                break
            reader, writer = await self.connect(spec)
            result["refused"] += await self.refused(reader)
            with contextlib.suppress(OSError):
                writer.write(hex_line(TAP, 999_000 + n) + b"\n")
            writer.close()
            result["good"] = n + 1
            await asyncio.sleep(spec["every"])


async def send(work: Path, name: str, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Play a plan in a Sender process; its clients' results."""
    path = work / f"{name}.plan.json"
    path.write_text(json.dumps(plan))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--send", str(path), stdout=asyncio.subprocess.PIPE
    )
    longest = max(spec.get("after", 0) + spec["seconds"] for spec in plan)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), longest + 40)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SystemExit(f"the {name} senders did not stop") from None
    if proc.returncode != 0:
        raise SystemExit(f"the {name} senders failed ({proc.returncode})")
    return list(json.loads(out))


class Steps:
    """Day-two steps: when each was done, and that a meter took a new value after it."""

    def __init__(self, ha: HomeAssistant, row: Row) -> None:
        self.ha = ha
        self.row = row
        self.started = time.monotonic()
        self.done: list[tuple[str, float]] = []

    async def then(self, name: str, entity: str = "sensor.tap_total") -> None:
        before = await self.ha.state(entity)

        async def moved() -> bool:
            return await self.ha.state(entity) not in (before, None, "unknown", "unavailable")

        if not await until(moved, 20):
            self.row.problems.append(f"{entity} stuck at {before} after {name}")
        self.done.append((name, time.monotonic() - self.started))

    def __str__(self) -> str:
        return ", ".join(f"{name} at {at:.0f} s" for name, at in self.done)


class Faults:
    """Each fault in turn, a row each; the last one stops Home Assistant."""

    TAP_METER: tuple[Meter, ...] = (("Tap", "auto", TAP, ""),)  # the FAKE lists no drivers: auto

    def __init__(self, ha: HomeAssistant, work: Path, rows: list[Row]) -> None:
        self.ha = ha
        self.work = work
        self.rows = rows
        #: Each network receiver's own entities: translation key -> entity id.
        self.sensors: dict[str, dict[str, str]] = {}

    def done(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.fault}: {'ok' if row.ok else '; '.join(row.problems)}", flush=True)

    def script(self, name: str, lines: list[str]) -> str:
        """A FAKE that prints these lines (then stays up)."""
        path = self.work / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        return fake(self.work, "script", FAKE_WMBUSMETERS_SCRIPT=str(path))

    async def with_receiver(
        self,
        name: str,
        command: str,
        check: Callable[[Row, str], Awaitable[None]],
        *,
        meters: tuple[Meter, ...] = TAP_METER,
        block_bound: float = BOUNDS["block_ms"],
    ) -> None:
        """Set up a receiver on `command`, run `check` on it while measuring, remove it."""
        entries: list[str] = []

        async def play(row: Row) -> None:
            entries.append(await self.ha.add_receiver(command, meters=meters))
            await check(row, entries[0])

        row = await measured(self.ha, name, play, max_children=1, block_bound=block_bound)
        if entries:
            await self.ha.remove_receiver(entries[0])
        await asyncio.sleep(2)
        self.done(row)

    async def value_shown(self, row: Row, expected: str, timeout: float = 30) -> None:
        async def shown() -> bool:
            return await self.ha.state("sensor.tap_total") == expected

        if not await until(shown, timeout):
            row.problems.append(f"sensor.tap_total never showed {expected}")

    async def crash_loop(self) -> None:
        """Five crashes at the real backoff (5, 10, 20, 40 s) raise the repair."""

        async def check(row: Row, entry_id: str) -> None:
            async def raised() -> bool:
                issues = await self.ha.issues()
                return any(i["issue_id"] == f"crash_loop_{entry_id}" for i in issues)

            if not await until(raised, 120):
                row.problems.append("no crash-loop repair within 120 s")

        await self.with_receiver("crash loop", fake(self.work, "crash_on_start"), check)

    async def garbage(self) -> None:
        """Garbage and 1 MB lines are skipped; the telegram behind them is shown."""
        for name, mode in (("garbage", "garbage"), ("1 MB lines", "huge_line")):
            await self.with_receiver(
                name, fake(self.work, mode), lambda row, _e: self.value_shown(row, "6.408")
            )

    async def bad_values(self) -> None:
        """NaN, Infinity, 1e300, a 300-digit integer, a naive timestamp; then a good one."""
        values = ("NaN", "Infinity", "1e300", "1" + "0" * 300, "5.5", "7.25")
        lines = [
            telegram_line(TAP, f'"total_m3":{value}', f"2026-11-25T10:00:0{n}Z")
            for n, value in enumerate(values)
        ]
        lines[4] = lines[4].replace("Z", "")  # no time zone
        await self.with_receiver(
            "NaN/Infinity/naive timestamp",
            self.script("nan", lines),
            lambda row, _e: self.value_shown(row, "7.25"),
        )

    async def wide(self) -> None:
        """500 new fields in one telegram."""
        fields = ",".join(f'"reading_{n}_kwh":{n}.5' for n in range(500))

        async def check(row: Row, _entry: str) -> None:
            await self.value_shown(row, "3.5")
            await asyncio.sleep(5)  # the batches

        await self.with_receiver(
            "500 new fields",
            self.script("wide", [telegram_line(TAP, f'"total_m3":3.5,{fields}')]),
            check,
            block_bound=BLOCK_FIELDS_MS,
        )

    async def floods(self) -> None:
        """A stderr flood for 30 s, with the integration logging at debug, then at error."""
        for level in ("debug", "error"):

            async def flood(row: Row, _entry: str, level: str = level) -> None:
                logger = "custom_components.wmbusmeters"
                await self.ha.service("logger", "set_level", {logger: level})
                await asyncio.sleep(30)
                await self.ha.service("logger", "set_level", {logger: "warning"})

            await self.with_receiver(
                f"stderr flood, {level} log", fake(self.work, "stderr_flood_forever"), flood
            )

    async def soak(self) -> None:
        """500 telegrams/s from 10 meters for 60 s."""

        async def check(row: Row, _entry: str) -> None:
            await asyncio.sleep(60)
            if await self.ha.state("sensor.soak_0_total") in (None, "unknown", "unavailable"):
                row.problems.append("soak meters show no value")

        await self.with_receiver(
            "500 telegrams/s for 60 s",
            fake(self.work, "soak"),
            check,
            meters=tuple((f"Soak {n}", "auto", str(10000000 + n), "") for n in range(10)),
        )

    async def delete(self) -> None:
        """A deleted receiver leaves no process, no repair issue, no config directory (keys)."""
        ha = self.ha

        async def play(row: Row) -> None:
            keyed = (("Keyed", "auto", TAP, "00112233445566778899AABBCCDDEEFF"),)
            command = self.script("delete", [telegram_line(TAP, '"total_m3":1.5')])
            entry_id = await ha.add_receiver(command, meters=keyed)
            await asyncio.sleep(3)
            folder = ha.config / ".wmbusmeters" / entry_id
            if not folder.exists():
                row.problems.append("no config directory to delete")
            await ha.remove_receiver(entry_id)
            await asyncio.sleep(2)
            if folder.exists():
                row.problems.append("config directory (keys) left behind")
            if any(entry_id in issue["issue_id"] for issue in await ha.issues()):
                row.problems.append("repair issues left behind")

        self.done(await measured(ha, "receiver delete", play, max_children=0))

    async def replug(self) -> None:
        """Unplug and replug an emulated raw-telegram dongle read by the real wmbusmeters."""
        ha = self.ha
        dongles = [PtyDongle(ha.config / "dongle")]
        entries: list[str] = []

        async def heard() -> bool:
            await dongles[-1].send_raw_telegrams(ROOMS)
            return await ha.state("sensor.bedroom_temperature") == "21.8"

        async def play(row: Row) -> None:
            real = shutil.which("wmbusmeters") or "/usr/bin/wmbusmeters"
            entries.append(
                await ha.add_receiver(
                    real,
                    str(dongles[0].path),
                    (("Bedroom", "lansenth", "00010203", ""),),
                    device_type="rawtty",
                )
            )
            if not await until(heard, 30):
                row.problems.append("no value from the emulated dongle")
            started = time.monotonic()
            dongles[0].unplug()

            async def missing() -> bool:
                issue_id = f"device_missing_{entries[0]}"
                return any(i["issue_id"] == issue_id for i in await ha.issues())

            if not await until(missing, 30):
                row.problems.append("no device-missing repair after unplug")
            to_repair = time.monotonic() - started
            dongles.append(PtyDongle(ha.config / "dongle"))
            started = time.monotonic()
            if not await until(heard, 60):
                row.problems.append("no value after replug")
            to_value = time.monotonic() - started
            print(f"  unplug -> repair {to_repair:.1f} s, replug -> value {to_value:.1f} s")

        row = await measured(ha, "unplug/replug (real 2.0.0)", play, max_children=1)
        if entries:
            await ha.remove_receiver(entries[0])
        dongles[-1].unplug()
        await asyncio.sleep(2)
        self.done(row)

    async def hung_child_at_stop(self) -> None:
        """A hung child (SIGSTOP), then Home Assistant stops: nothing is left behind."""
        ha = self.ha
        row = Row("SIGSTOP hang, then HA stop")
        await ha.add_receiver(fake(self.work, "silent"), meters=self.TAP_METER)
        await asyncio.sleep(3)
        live, _ = children(ha.pid)
        row.rss_before = row.rss_peak = row.rss_after = rss_mb(ha.pid)
        for pid in live:
            os.kill(pid, signal.SIGSTOP)
        tracebacks = ha.tracebacks()
        seconds = await ha.stop()
        row.tracebacks = ha.tracebacks() - tracebacks
        left = [pid for pid in live if os.path.exists(f"/proc/{pid}")]  # noqa: ASYNC240
        row.children = len(left)
        if left:
            row.problems.append(f"{len(left)} children left after HA stopped")
        if seconds > 30:
            row.problems.append(f"HA took {seconds:.0f} s to stop")
        row.p50 = row.p99 = seconds * 1000  # (shown as the stop time)
        self.done(row)

    # -- network receivers ------------------------------------------------------------------

    async def with_network(
        self,
        name: str,
        receivers: tuple[tuple[str, tuple[Meter, ...], tuple[str, ...]], ...],
        check: Callable[[Row, list[str], list[int]], Awaitable[None]],
    ) -> None:
        """Set up network receivers (protocol, meters, allow-list) on free ports of 127.0.0.1,
        run `check` on them (entry ids, ports) while measuring, remove them."""
        entries: list[str] = []

        async def play(row: Row) -> None:
            ports = []
            for protocol, meters, allowed in receivers:
                ports.append(free_port(protocol))
                entries.append(
                    await self.ha.add_network_receiver(protocol, ports[-1], meters, allowed)
                )
            for entry_id in entries:
                if not await until(functools.partial(self.running, entry_id), 20):
                    row.problems.append("wmbusmeters never started")
            await asyncio.sleep(2)  # the restart for the meters just added, if it is not done
            restarts = [await self.restarts(entry_id) for entry_id in entries]
            await check(row, entries, ports)
            # Nothing a client sends may make wmbusmeters exit.
            if restarts != [await self.restarts(entry_id) for entry_id in entries]:
                row.problems.append(f"wmbusmeters restarted during the fault (was {restarts})")

        row = await measured(self.ha, name, play, max_children=len(receivers))
        for entry_id in entries:
            await self.ha.remove_receiver(entry_id)
        await asyncio.sleep(2)
        self.done(row)

    async def running(self, entry_id: str) -> bool:
        """Whether the receiver's wmbusmeters runs (the listener's lines are taken from then
        on: before, they would be counted as undelivered)."""
        return len(wmbusmeters_of(entry_id)) == 1

    async def restarts(self, entry_id: str) -> str | None:
        if entry_id not in self.sensors:
            self.sensors[entry_id] = await self.ha.entity_ids(entry_id)
        return await self.ha.state(self.sensors[entry_id]["restarts"])

    async def listener(self, entry_id: str) -> dict[str, Any]:
        """The "Network lines received" sensor: state, per-source counters, connections."""
        if entry_id not in self.sensors:
            self.sensors[entry_id] = await self.ha.entity_ids(entry_id)
        found = await self.ha.get(f"/api/states/{self.sensors[entry_id]['network_lines']}")
        return dict(found or {"state": None, "attributes": {}})

    async def counted(self, entry_id: str, expected: int | None = None) -> dict[str, Any]:
        """The listener's sensor once it has counted everything: `expected` lines in all, or
        no change for 2 s (the sensor follows once a second); at most 20 s."""
        totals: list[int] = []

        async def settled() -> bool:
            sources = (await self.listener(entry_id))["attributes"].get("sources", {})
            totals.append(sum(sum(c.values()) for c in sources.values()))
            if expected is not None:
                return totals[-1] >= expected
            return len(totals) >= 5 and len(set(totals[-5:])) == 1

        await until(settled, 20)
        return await self.listener(entry_id)

    async def stream(
        self, row: Row, name: str, plan: list[dict[str, Any]], watch: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Play the plan; meanwhile the values of `watch` (entity -> the source of its good
        lines) must keep changing, and each must end on its good client's last total."""
        seen: dict[str, set[str | None]] = {entity: set() for entity in watch}
        sender = asyncio.create_task(send(self.work, name, plan))
        while not sender.done():
            for entity, values in seen.items():
                values.add(await self.ha.state(entity))
            await asyncio.sleep(0.5)
        results = await sender
        for entity, source in watch.items():
            good = next(r for r in results if r["source"] == source and r["kind"] == "good")
            seconds = next(c["seconds"] for c in plan if c["source"] == source)
            if len(seen[entity] - {None, "unknown", "unavailable"}) < seconds / 4:
                row.problems.append(f"{entity} took only {len(seen[entity])} values")
            await self.total_shown(row, entity, good["last"])
        for result in results:
            row.problems.extend(f"{result['source']}: {err}" for err in result["errors"])
        return results

    async def total_shown(self, row: Row, entity: str, litres: int, timeout: float = 15) -> None:
        async def shown() -> bool:
            state = await self.ha.state(entity)
            try:
                return state is not None and abs(float(state) - litres / 1000) < 1e-6
            except ValueError:
                return False

        if not await until(shown, timeout):
            row.problems.append(f"{entity} never showed {litres / 1000} (the last good line)")

    def lines_as_sent(
        self, row: Row, sensor: dict[str, Any], results: list[dict[str, Any]], seconds: float
    ) -> None:
        """Each source's counters against what its client sent (TCP loses nothing, so those
        are exact), and the two sensors' totals against the per-source counters."""
        sources = sensor["attributes"].get("sources", {})
        most = BURST + RATE * (seconds + 2)  # what the rate lets through in the time
        for result in results:
            kind, source = result["kind"], result["source"]
            got = dict.fromkeys(("accepted", *DROPPED), 0) | sources.get(source, {})
            total = sum(got.values())
            expected: list[tuple[bool, str]] = {
                "good": [(got["accepted"] == result["good"] and total == got["accepted"], "")],
                "flood": [
                    (total == result["good"], ""),
                    (got["accepted"] <= most and got["rate_limited"] > 0, "rate"),
                ],
                "udp_flood": [(0 < total <= result["good"] and got["accepted"] <= most, "rate")],
                "slow": [(got["accepted"] == result["good"] == total, "")],
                "half_open": [(total == 0, "")],
                # Past 20 times its rate a source's lines are counted as rate-limited unread
                # (a flood costs a count, not a parse): every line is counted once, the
                # checked ones in their own counters; junk below that costs no telegram its
                # place (most good lines get through).
                "mixed": [
                    (
                        total
                        == result["good"]
                        + result["noise"]
                        + result["malformed"]
                        + result["too_long"],
                        "every line counted once",
                    ),
                    (0 < got["malformed"] <= result["malformed"], "malformed"),
                    (got["too_long"] <= result["too_long"], "too long"),
                    (got["accepted"] <= min(most, result["good"] + result["noise"]), "accepted"),
                    (got["accepted"] >= result["good"] // 2, "good lines lost to junk"),
                ],
                "denied": [(got["denied"] == result["good"] == total, "")],
            }[kind]
            if kind == "good" and result["protocol"] == "udp":
                # The kernel drops datagrams the listener cannot read in time: some may be lost.
                expected = [
                    (0 < got["accepted"] <= result["good"] and total == got["accepted"], "")
                ]
            if got["undelivered"]:
                expected.append((False, "undelivered"))
            for ok, what in expected:
                if not ok:
                    sent = {k: result[k] for k in ("good", "malformed", "too_long", "noise")}
                    row.problems.append(f"{kind} {source} {what}: sent {sent}, counted {got}")
        accepted = sum(c.get("accepted", 0) for c in sources.values())
        if sensor["state"] != str(accepted):
            row.problems.append(f"lines received {sensor['state']}, sources say {accepted}")

    async def dropped_shown(self, row: Row, entry_id: str, sensor: dict[str, Any]) -> None:
        """The "Network lines dropped" sensor is the per-source drops summed."""
        sources = sensor["attributes"].get("sources", {})
        drops = sum(c.get(k, 0) for c in sources.values() for k in DROPPED)
        state = await self.ha.state(self.sensors[entry_id]["network_dropped"])
        if state != str(drops):
            row.problems.append(f"lines dropped {state}, sources say {drops}")

    def sent_to(
        self, plan: list[dict[str, Any]], results: list[dict[str, Any]], port: int
    ) -> list[dict[str, Any]]:
        return [r for spec, r in zip(plan, results, strict=True) if spec["ports"][0] == port]

    async def network_flood(self) -> None:
        """Twelve TCP sources flooding as fast as the listener reads, four UDP ones at 5,000
        lines/s each, for 20 s; a good source on each port sends a new total every 200 ms."""
        seconds = 20.0

        async def check(row: Row, entries: list[str], ports: list[int]) -> None:
            good = {"every": 0.2, "first": 1000}
            plan = [
                client("good", "127.0.0.2", ports[0], seconds + 3, meter=TAP, **good),
                client("good", "127.0.0.3", ports[1], seconds + 3, meter=UDP_TAP, **good,
                       protocol="udp"),
            ]  # fmt: skip
            plan += [
                client("flood", f"127.0.0.{10 + n}", ports[0], seconds, after=1.0,
                       meter=OTHER, first=n * 1000, max_lines=4_000_000)
                for n in range(12)
            ]  # fmt: skip
            plan += [
                client("udp_flood", f"127.0.0.{30 + n}", ports[1], seconds, after=1.0,
                       meter=UDP_OTHER, first=n * 1000, rate=5000, max_lines=150_000)
                for n in range(4)
            ]  # fmt: skip
            watch = {"sensor.tap_total": "127.0.0.2", "sensor.udp_tap_total": "127.0.0.3"}
            results = await self.stream(row, "flood", plan, watch)
            tcp = self.sent_to(plan, results, ports[0])
            for entry_id, port, exact in (
                (entries[0], ports[0], True),
                (entries[1], ports[1], False),
            ):
                here = self.sent_to(plan, results, port)
                sensor = await self.counted(
                    entry_id, sum(r["good"] for r in here) if exact else None
                )
                self.lines_as_sent(row, sensor, here, seconds)
                await self.dropped_shown(row, entry_id, sensor)
            lines = sum(r["good"] for r in results if r["kind"] != "good")
            print(f"  {lines} flood lines sent ({sum(r['good'] for r in tcp[1:])} over TCP)")

        await self.with_network(
            "network: 16 sources flooding",
            (
                ("tcp", (*self.TAP_METER, ("Other", "auto", OTHER, "")), ()),
                (
                    "udp",
                    (("Udp tap", "auto", UDP_TAP, ""), ("Udp other", "auto", UDP_OTHER, "")),
                    (),
                ),
            ),
            check,
        )

    async def network_slow(self) -> None:
        """Slow clients (a byte every 200 ms), half-open ones (half a line, then silence) and
        ones that shut their write side, up to and past the 16 connections, while a good client
        connected first sends a new total every 200 ms."""
        seconds = 22.0

        async def check(row: Row, entries: list[str], ports: list[int]) -> None:
            port = ports[0]
            plan = [client("good", "127.0.0.2", port, seconds, meter=TAP, every=0.2, first=1000)]
            plan += [
                client("slow", f"127.0.0.{10 + n}", port, seconds - 1, after=0.5, meter=OTHER,
                       every=0.2, first=n * 1000)
                for n in range(6)
            ]  # fmt: skip
            plan += [
                client("half_open", f"127.0.0.{20 + n}", port, seconds - 2, after=1.0,
                       first=n * 1000)
                for n in range(5)
            ]  # fmt: skip
            plan += [
                client("half_open", f"127.0.0.{30 + n}", port, seconds - 2, after=1.5,
                       first=n * 1000, shut_write=True)
                for n in range(3)
            ]  # fmt: skip
            # Past the limit: 1 + 6 + 5 are held, 4 more fit, the other 4 are closed at once.
            plan += [
                client("half_open", f"127.0.0.{40 + n}", port, seconds - 4, after=3.0 + n / 10,
                       first=n * 1000)
                for n in range(8)
            ]  # fmt: skip
            held = sum(1 for c in plan if not c.get("shut_write"))
            most = [0]

            async def connections() -> None:
                while True:
                    attributes = (await self.listener(entries[0]))["attributes"]
                    most[0] = max(most[0], attributes.get("connections", 0))
                    await asyncio.sleep(1)

            watcher = asyncio.create_task(connections())
            try:
                results = await self.stream(row, "slow", plan, {"sensor.tap_total": "127.0.0.2"})
            finally:
                watcher.cancel()
            refused = sum(r["refused"] for r in results)
            if refused != held - MAX_CONNECTIONS or most[0] != MAX_CONNECTIONS:
                row.problems.append(
                    f"{refused} connections refused, at most {most[0]} held "
                    f"({held} tried to stay, {MAX_CONNECTIONS} may)"
                )
            shut = [r for c, r in zip(plan, results, strict=True) if c.get("shut_write")]
            if not all(r.get("closed_by_listener") for r in shut):
                row.problems.append("a client that shut its write side was not closed")
            sensor = await self.counted(entries[0], sum(r["good"] for r in results))
            self.lines_as_sent(row, sensor, results, seconds)
            await self.dropped_shown(row, entries[0], sensor)
            await self.slots_freed(row, entries[0], port)
            print(f"  {refused} refused, {most[0]} held at most")

        await self.with_network(
            "network: slow and half-open clients",
            (("tcp", (*self.TAP_METER, ("Other", "auto", OTHER, "")), ()),),
            check,
        )

    async def slots_freed(self, row: Row, entry_id: str, port: int) -> None:
        """Every client has closed: no connection is held any more. The sensor's `connections`
        follows only when lines arrive (the listener's on_change), so one more line, from a
        connection closed at once, brings it up to date."""
        stale = (await self.listener(entry_id))["attributes"].get("connections")
        if stale:
            print(f"  note: the sensor still says {stale} connections after all closed")

        await asyncio.to_thread(one_line, port)

        async def freed() -> bool:
            return bool((await self.listener(entry_id))["attributes"].get("connections") == 0)

        if not await until(freed, 10):
            row.problems.append("connections still held after every client closed")

    async def denied_alone(self, row: Row, entry_id: str, port: int) -> None:
        """Connections refused by the allow-list with no other traffic: "Network lines dropped"
        must count them too (it may not wait for a line from elsewhere)."""
        entity = self.sensors[entry_id]["network_dropped"]
        before = int(await self.ha.state(entity) or 0)
        plan = [client("denied", "127.0.0.201", port, 5, attempts=3, every=0.3)]
        (result,) = await send(self.work, "denied", plan)

        async def counted() -> bool:
            return bool(int(await self.ha.state(entity) or 0) >= before + result["good"])

        if not await until(counted, 5):
            state = await self.ha.state(entity)
            await asyncio.to_thread(one_line, port)  # the listener counted them: now it shows
            await asyncio.sleep(2)
            row.problems.append(
                f"lines dropped stayed at {state} after {result['good']} denied connections "
                f"({await self.ha.state(entity)} once a good line came)"
            )

    async def network_malformed(self) -> None:
        """Four sources sending, every 20 ms, a good line among 40 malformed and 8 over-long
        ones (a 1 MB line each second, random hex now and then); one outside the allow-list;
        a good client sends a new total every 200 ms."""
        seconds = 15.0

        async def check(row: Row, entries: list[str], ports: list[int]) -> None:
            port = ports[0]
            plan = [
                client("good", "127.0.0.2", port, seconds + 1, meter=TAP, every=0.2, first=1000)
            ]
            plan += [
                client("mixed", f"127.0.0.{10 + n}", port, seconds, after=0.5, meter=OTHER,
                       every=0.02, first=n * 1000)
                for n in range(4)
            ]  # fmt: skip
            plan.append(client("denied", "127.0.0.200", port, seconds, attempts=10, every=1.0))
            results = await self.stream(row, "malformed", plan, {"sensor.tap_total": "127.0.0.2"})
            sensor = await self.counted(entries[0], sum(
                r["good"] + r["malformed"] + r["too_long"] + r["noise"] for r in results
            ))  # fmt: skip
            self.lines_as_sent(row, sensor, results, seconds)
            await self.dropped_shown(row, entries[0], sensor)
            if await self.ha.state("sensor.other_total") in (None, "unknown", "unavailable"):
                row.problems.append("the mixed sources' good lines gave no value")
            await self.denied_alone(row, entries[0], port)
            junk = sum(r["malformed"] + r["too_long"] for r in results)
            print(f"  {junk} malformed and over-long lines sent")

        await self.with_network(
            "network: malformed and over-long lines",
            (("tcp", (*self.TAP_METER, ("Other", "auto", OTHER, "")), ("127.0.0.0/25",)),),
            check,
        )

    # -- day two ----------------------------------------------------------------------------

    async def day_two(self) -> None:
        """While a network receiver is fed 50 lines/s and a radio replays a simulation: each
        reloaded three times, the network port moved (the sender reconnects to the new one), the
        Tap meter removed and added back, the radio deleted. Nothing is left behind."""
        ha = self.ha
        real = shutil.which("wmbusmeters") or "/usr/bin/wmbusmeters"
        simulation = self.simulation()
        entries: list[str] = []

        async def play(row: Row) -> None:
            port, new_port = free_port("tcp"), free_port("tcp")
            while new_port == port:
                new_port = free_port("tcp")
            entries.append(await ha.add_network_receiver("tcp", port, self.TAP_METER))
            entries.append(
                await ha.add_receiver(real, str(simulation), (("Cold", "auto", COLD, ""),))
            )
            net, radio = entries
            stop = self.work / "day2" / "stop"
            sender = asyncio.create_task(send(self.work, "day2", [
                client("good", "127.0.0.2", port, 120, meter=TAP, every=0.02, first=1,
                       ports=[port, new_port], stop_file=str(stop)),
            ]))  # fmt: skip
            steps = Steps(ha, row)
            await steps.then("setup")
            await steps.then("setup", "sensor.cold_total")
            for n in range(3):
                await ha.reload(net)
                await steps.then(f"network reload {n + 1}")
                await ha.reload(radio)
                await steps.then(f"radio reload {n + 1}", "sensor.cold_total")
            for entry_id in entries:
                if not await until(functools.partial(self.running, entry_id), 10):
                    row.problems.append(f"not one wmbusmeters for {entry_id} after the reloads")
            result = await ha.flow({"entry_id": net}, network_form("tcp", new_port))
            if result.get("reason") != "reconfigure_successful":
                row.problems.append(f"reconfigure: {result}")
            await steps.then("new port")
            if await asyncio.to_thread(port_open, port):
                row.problems.append(f"the old port {port} still listens")
            await self.meter_again(row, net)
            await steps.then("meter removed and added back")
            await ha.remove_receiver(radio)
            if not await until(lambda: self.gone(radio), 10):
                row.problems.append("wmbusmeters left running for the deleted radio")
            if await ha.state("sensor.cold_total") is not None:
                row.problems.append("sensor.cold_total left after its receiver was deleted")
            await steps.then("radio deleted")
            await self.no_leftovers(row)
            stop.touch()
            (result,) = await sender
            await self.total_shown(row, "sensor.tap_total", result["last"])
            row.problems.extend(result["errors"])
            print(f"  {result['good']} lines in {result.get('connects')} connections; {steps}")

        row = await measured(ha, "day two under 50 lines/s", play, max_children=1)
        for entry_id in entries[:1]:
            await ha.remove_receiver(entry_id)
            if not await until(functools.partial(self.gone, entry_id), 10):
                row.problems.append("wmbusmeters left running for the deleted network receiver")
        await asyncio.sleep(2)
        self.done(row)

    def simulation(self) -> Path:
        """A telegram a second for 30 s, each another total of the Cold meter (each reload
        replays it from the start: the value changes whenever a telegram comes)."""
        path = self.work / "day2" / "simulation_day2.txt"  # wmbusmeters wants the name
        path.parent.mkdir(exist_ok=True)
        lines = (f"telegram=|{hex_line(COLD, 20000 + n).decode()}|+{n}" for n in range(1, 31))
        path.write_text("\n".join(lines) + "\n")
        return path

    async def no_leftovers(self, row: Row) -> None:
        """No orphan entity, none registered twice (a reload racing a telegram: a _2 one)."""
        if orphans := await self.ha.orphans():
            row.problems.append(f"orphan entities: {', '.join(orphans)}")
        twice = [
            e["entity_id"]
            for e in await self.ha.ws({"type": "config/entity_registry/list"})
            if e["platform"] == DOMAIN and e["entity_id"].endswith("_2")
        ]
        if twice:
            row.problems.append(f"entities registered twice: {', '.join(twice)}")

    async def meter_again(self, row: Row, entry_id: str) -> None:
        """The Tap meter removed (as the frontend does: websocket) and added back (its flow)."""
        ha = self.ha
        subentries = await ha.ws({"type": "config_entries/subentries/list", "entry_id": entry_id})
        tap = next(s["subentry_id"] for s in subentries if s["unique_id"] == TAP)
        await ha.ws(
            {"type": "config_entries/subentries/delete", "entry_id": entry_id, "subentry_id": tap}
        )

        async def removed() -> bool:
            return await ha.state("sensor.tap_total") is None

        if not await until(removed, 10):
            row.problems.append("sensor.tap_total left after its meter was removed")
        result = await ha.add_meter(entry_id, self.TAP_METER[0])
        if result.get("type") != "create_entry":
            row.problems.append(f"meter added back: {result}")

    async def gone(self, entry_id: str) -> bool:
        return not wmbusmeters_of(entry_id)

    def faults(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """Each fault by the name `--only` knows it by, in the order they are played (the
        last one stops Home Assistant)."""
        return {
            "crash-loop": self.crash_loop,
            "garbage": self.garbage,
            "bad-values": self.bad_values,
            "wide": self.wide,
            "stderr-floods": self.floods,
            "soak": self.soak,
            "delete": self.delete,
            "replug": self.replug,
            "network-flood": self.network_flood,
            "network-slow": self.network_slow,
            "network-malformed": self.network_malformed,
            "day2": self.day_two,
            "stop": self.hung_child_at_stop,
        }

    async def play_all(self, only: list[str]) -> None:
        for name, fault in self.faults().items():
            if not only or selected(name, only):
                await fault()


def selected(name: str, only: list[str]) -> bool:
    """`network` selects network-flood, network-slow and network-malformed."""
    return any(name == word or name.startswith(word + "-") for word in only)


def table(rows: list[Row]) -> str:
    head = (
        "| fault | RSS before / peak / after (MB) | HA CPU | API p50 / p99 (ms) | loop block (ms) "
        "| children / zombies | tracebacks | result |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r.fault} | {r.rss_before:.0f} / {r.rss_peak:.0f} / {r.rss_after:.0f} "
            f"| {r.cpu:.0f} % | {r.p50:.1f} / {r.p99:.1f} | {r.block:.0f} "
            f"| {r.children} / {r.zombies} | {r.tracebacks} "
            f"| {'pass' if r.ok else 'FAIL: ' + '; '.join(r.problems)} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--only",
        type=lambda text: [word.strip() for word in text.split(",") if word.strip()],
        default=[],
        help="comma-separated faults (or their first word: network), e.g. network,day2",
    )
    parser.add_argument("--send", type=Path, help=argparse.SUPPRESS)  # a Sender process
    args = parser.parse_args()
    if args.send is not None:
        print(json.dumps(asyncio.run(Sender(json.loads(args.send.read_text())).run())))
        return 0
    names = list(Faults.faults(Faults.__new__(Faults)))
    unknown = [word for word in args.only if not any(selected(n, [word]) for n in names)]
    if unknown:
        parser.error(f"no fault {', '.join(unknown)} (choose from: {', '.join(names)})")
    bounds = json.dumps({**BOUNDS, "block_ms (500 fields)": BLOCK_FIELDS_MS})
    print(f"scripts/faults: bounds {bounds}", flush=True)
    (REPO / ".tmp").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="faults-", dir=REPO / ".tmp"))
    rows = asyncio.run(run(folder, args.only))
    print(table(rows))
    if all(r.ok for r in rows):
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    print(f"Home Assistant's log: {folder / 'config' / 'home-assistant.log'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

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
emulated dongle (tests/pty_dongle.py). Takes about 6 minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import shutil
import signal
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

PORT = int(os.environ.get("FAULTS_PORT", "8129"))
BASE = f"http://127.0.0.1:{PORT}"
TAP = "76348799"
ROOMS = rawtty_telegrams((REPO / "tests" / "data" / "serial_rawtty_ok.hex").read_text())
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

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

    async def issues(self) -> list[dict[str, Any]]:
        assert self.session is not None
        async with self.session.ws_connect(BASE + "/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": self.token})
            await ws.receive_json()
            await ws.send_json({"id": 1, "type": "repairs/list_issues"})
            return list((await ws.receive_json())["result"]["issues"])

    async def add_receiver(
        self,
        command: str,
        device: str = "auto",
        meters: tuple[tuple[str, str, str, str], ...] = (),
        **extra: Any,
    ) -> str:
        flow = await self.post("/api/config/config_entries/flow", {"handler": "wmbusmeters"})
        await self.post(  # the menu: a radio here
            f"/api/config/config_entries/flow/{flow['flow_id']}", {"next_step_id": "radio"}
        )
        result = await self.post(
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"command": command, "device": device, "link_modes": ["c1"], **extra},
        )
        if result.get("type") != "create_entry":
            raise SystemExit(f"receiver flow: {result}")
        entry_id: str = result["result"]["entry_id"]
        for name, driver, meter_id, key in meters:
            flow = await self.post(
                "/api/config/config_entries/subentries/flow", {"handler": [entry_id, "meter"]}
            )
            await self.post(
                f"/api/config/config_entries/subentries/flow/{flow['flow_id']}",
                {"name": name, "driver": driver, "meter_id": meter_id, "key": key},
            )
        return entry_id

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


async def run(work: Path) -> list[Row]:
    ha = HomeAssistant(work / "config")
    ha.start()
    rows: list[Row] = []
    try:
        await ha.connect()
        await asyncio.sleep(5)  # startup settles
        await Faults(ha, work, rows).play_all()
    finally:
        if ha.proc is not None and ha.proc.poll() is None:
            await ha.stop()
    return rows


def telegram_line(meter_id: str, fields: str, stamp: str = "2026-11-25T10:00:00Z") -> str:
    """A telegram as wmbusmeters prints it; `fields` is raw JSON text (NaN and friends)."""
    return (
        f'{{"_":"telegram","meter":"multical21","id":"{meter_id}",{fields},"timestamp":"{stamp}"}}'
    )


class Faults:
    """Each fault in turn, a row each; the last one stops Home Assistant."""

    TAP_METER = (("Tap", "auto", TAP, ""),)  # the FAKE lists no drivers: auto

    def __init__(self, ha: HomeAssistant, work: Path, rows: list[Row]) -> None:
        self.ha = ha
        self.work = work
        self.rows = rows

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
        meters: tuple[tuple[str, str, str, str], ...] = TAP_METER,
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

    async def play_all(self) -> None:
        for fault in (
            self.crash_loop,
            self.garbage,
            self.bad_values,
            self.wide,
            self.floods,
            self.soak,
            self.delete,
            self.replug,
            self.hung_child_at_stop,
        ):
            await fault()


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
    bounds = json.dumps({**BOUNDS, "block_ms (500 fields)": BLOCK_FIELDS_MS})
    print(f"scripts/faults: bounds {bounds}", flush=True)
    (REPO / ".tmp").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="faults-", dir=REPO / ".tmp"))
    rows = asyncio.run(run(folder))
    print(table(rows))
    if all(r.ok for r in rows):
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    print(f"Home Assistant's log: {folder / 'config' / 'home-assistant.log'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

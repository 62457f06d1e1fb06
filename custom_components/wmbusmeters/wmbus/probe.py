"""Ask the wmbusmeters executable about itself: version, drivers, fields (10 s timeout each).

Versions differ in what they can be asked: 3.0.0 renamed `--listmeters` to `--listdrivers`.
Which one a binary has is read from its own `--help`, not guessed from its version number.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
import os
import re

from .bundled import bundled_problem
from .errors import WmbusError

_LOGGER = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0
#: A dongle answers wmbusmeters' detection in about 2 s (measured on the emulated iM871A).
DETECT_TIMEOUT = 15.0

_VERSION = re.compile(r"^wmbusmeters:\s*(\S+)", re.MULTILINE)
_DRIVER_LINE = re.compile(r"^([a-z0-9_\-]+)\s+(\w+)")
_DETECT_CODE = re.compile(r"\b([A-Z@]{3}),[0-9a-f]{2},[0-9a-f]{2}\b")
_FIELD_LINE = re.compile(r"^\s*([A-Za-z0-9_{}]+)\s*(.*)$")
_LIST_DRIVERS = "--listdrivers"
_LIST_METERS = "--listmeters"
_HELP_OPTION = re.compile(r"^\s*(--listdrivers|--listmeters)\b", re.MULTILINE)


class ProbeError(WmbusError):
    """The wmbusmeters command cannot be used."""

    translation_key = "probe_failed"


class CommandNotFoundError(ProbeError):
    """No such file."""

    translation_key = "command_not_found"


class NotExecutableError(ProbeError):
    """The file exists but cannot be executed."""

    translation_key = "command_not_executable"


class NotWmbusmetersError(ProbeError):
    """It ran, but it is not wmbusmeters (or it failed)."""

    translation_key = "not_wmbusmeters"


class ProbeTimeoutError(ProbeError):
    """It did not answer in time."""

    translation_key = "command_timeout"


class DongleNotFoundError(ProbeError):
    """wmbusmeters found no dongle of the expected type on the port."""

    translation_key = "dongle_not_found"


class BundledAlteredProbeError(ProbeError):
    """The bundled wmbusmeters does not match the release's checksums: it is not run."""

    translation_key = "bundled_altered"


async def refuse_altered(command: str) -> None:
    """No question is put to a bundled binary its release did not build (bundled.py)."""
    if problem := await asyncio.to_thread(bundled_problem, command):
        raise BundledAlteredProbeError(f"{command}: {problem} does not match SHA256SUMS")


class LinkModesRefusedError(ProbeError):
    """The dongle is there but cannot listen to these link modes (e.g. its firmware)."""

    translation_key = "link_modes_refused"


#: `Started config im871a[12345678] on ...`; a dongle without an id (CUL) has no `[...]`, one
#: on a named bus a `bus=` before its type.
_STARTED = re.compile(r"^Started (?:config|auto) (?:\w+=)?(\w+)(?:\[|\s|$)")
_NOT_FOUND = ("did not find it", "No wmbus device detected", "SpecifiedDeviceNotFound")
_REFUSED = "cannot be set"
#: Printed once the dongle is opened and its link modes set or refused, with no meter
#: configured (as detection runs): the refusal, if any, came before it. With --verbose every
#: line goes to one stream in the order it is written (2.0.0 and 3.0.0 alike), so this line is
#: the event that decides, not a pause after "Started" (the dongle's answers come between).
_DECIDED = "No meters configured"


@dataclass(frozen=True, slots=True)
class WmbusmetersInfo:
    """What a wmbusmeters binary is and how it is asked for its drivers."""

    version: str
    #: `--listdrivers` (3.0.0 and later) or `--listmeters` (2.0.0), as its --help offers.
    list_drivers_option: str = _LIST_METERS


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """A driver from --listdrivers (--listmeters), with the kind of meter it reads
    (e.g. WaterMeter)."""

    name: str
    meter_type: str
    #: Manufacturer flag ids of the telegrams it detects (`KAM` of `KAM,1b,16`).
    manufacturers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A field from --listfields=DRIVER.

    An indexed field is documented as a template (`target_{storage_counter}_kwh`): its
    telegrams carry `target_2_kwh`, `target_4_kwh`, ...
    """

    name: str
    description: str

    def matches(self, field: str) -> bool:
        """Whether a field of a telegram is this one (or an instance of this template)."""
        if "{" not in self.name:
            return field == self.name
        pattern = re.sub(r"\\{[a-z_]+\\}", "[0-9]+", re.escape(self.name))
        return re.fullmatch(pattern, field) is not None


def check_command(command: str) -> None:
    """Raise if the command is not an executable file (blocking: stat)."""
    if not os.path.isabs(command) or not os.path.isfile(command):
        raise CommandNotFoundError(command)
    if not os.access(command, os.X_OK):
        raise NotExecutableError(command)


async def start(command: str, *args: str, stderr: int) -> asyncio.subprocess.Process:
    """The command started with its stdout piped (stdin closed); why not, as a ProbeError."""
    try:
        return await asyncio.create_subprocess_exec(
            command,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    except FileNotFoundError as err:
        raise CommandNotFoundError(command) from err
    except PermissionError as err:
        raise NotExecutableError(command) from err
    except OSError as err:  # e.g. ENOEXEC: not a program
        raise NotWmbusmetersError(f"{command}: {err.strerror}") from err


async def run(command: str, *args: str, timeout: float | None = None) -> str:
    """Run the command with these arguments; its stdout, if it exits 0 in time."""
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    await refuse_altered(command)
    proc = await start(command, *args, stderr=asyncio.subprocess.DEVNULL)
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as err:
        proc.kill()
        await proc.wait()
        raise ProbeTimeoutError(f"{command} {' '.join(args)}") from err
    except asyncio.CancelledError:
        # (an unload cancelled the question): no process is left behind
        if proc.returncode is None:
            proc.kill()
        raise
    if proc.returncode != 0:
        raise NotWmbusmetersError(f"{command} {' '.join(args)} exited with {proc.returncode}")
    return stdout.decode("utf-8", "replace")


async def probe_version(command: str, timeout: float | None = None) -> str:
    """The version wmbusmeters reports (e.g. `2.0.0-2`); raises ProbeError if it is not it."""
    match = _VERSION.search(await run(command, "--version", timeout=timeout))
    if match is None:
        raise NotWmbusmetersError(f"{command} --version did not answer like wmbusmeters")
    return match.group(1)


async def probe_info(command: str, timeout: float | None = None) -> WmbusmetersInfo:
    """The binary's version and the options it has (raises ProbeError if it is not wmbusmeters)."""
    version = await probe_version(command, timeout)
    options = _HELP_OPTION.findall(await run(command, "--help", timeout=timeout))
    option = _LIST_DRIVERS if _LIST_DRIVERS in options else _LIST_METERS
    return WmbusmetersInfo(version, option)


async def list_drivers(
    command: str, info: WmbusmetersInfo | None = None, timeout: float | None = None
) -> list[DriverInfo]:
    """Every driver the binary has (`auto` included), in its order."""
    if info is None:
        info = await probe_info(command, timeout)
    option = info.list_drivers_option
    drivers = []
    for line in (await run(command, option, timeout=timeout)).splitlines():
        if match := _DRIVER_LINE.match(line):
            codes = tuple(dict.fromkeys(_DETECT_CODE.findall(line)))
            drivers.append(DriverInfo(match.group(1), match.group(2), codes))
    if not drivers:
        raise NotWmbusmetersError(f"{command} {option} listed no driver")
    return drivers


async def list_fields(command: str, driver: str, timeout: float | None = None) -> list[FieldInfo]:
    """The fields a driver documents. The driver name must be validated by the caller."""
    output = await run(command, f"--listfields={driver}", timeout=timeout)
    return [
        FieldInfo(match.group(1), match.group(2).strip())
        for line in output.splitlines()
        if (match := _FIELD_LINE.match(line))
    ]


async def print_driver(command: str, driver: str, timeout: float | None = None) -> str:
    """What `--printdriver=NAME` prints: a driver's definition (xmq, on one line), or for one
    it cannot print `info='Driver is binary only.'` (alarms.definition_words tells them
    apart). The driver name must be validated by the caller."""
    return await run(command, f"--printdriver={driver}", timeout=timeout)


async def detect_dongle(command: str, device_spec: str, timeout: float | None = None) -> str:
    """Let wmbusmeters itself look for the dongle `device_spec` names (`<port>:<type>:<modes>`,
    built by ReceiverConfig from validated parts) and set its link modes, with no meter
    configured; return the type it started. Raises DongleNotFoundError or
    LinkModesRefusedError with wmbusmeters' own words.

    It is stopped as soon as it has answered: SIGKILL, since it holds no state worth saving
    and 2.0.0 takes seconds to honour SIGTERM.
    """
    await refuse_altered(command)
    try:
        proc = await asyncio.create_subprocess_exec(
            command,
            "--format=json",
            "--verbose",
            device_spec,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as err:
        raise CommandNotFoundError(command) from err
    assert proc.stdout is not None
    seen = _Detection()
    try:
        async with asyncio.timeout(DETECT_TIMEOUT if timeout is None else timeout):
            while raw := await proc.stdout.readline():
                line = raw.decode("utf-8", "replace").strip()
                _LOGGER.debug("dongle detection: %s", line)
                if (decided := seen.take(line)) is not None:
                    return decided
    except TimeoutError:
        if seen.started is not None:
            return seen.started
        raise DongleNotFoundError(f"no answer in time: {seen.last[:200]}") from None
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    if seen.started is not None:
        return seen.started
    raise DongleNotFoundError(seen.last[:200] or f"exited with {proc.returncode}")


@dataclass(slots=True)
class _Detection:
    """What wmbusmeters' detection has printed so far."""

    started: str | None = None
    refused: str | None = None
    last: str = ""

    def take(self, line: str) -> str | None:
        """Read one line: the dongle type once decided; raises if refused or not found."""
        self.last = line or self.last
        if _REFUSED in line:
            self.refused = line[:200]
        if any(text in line for text in _NOT_FOUND):
            raise DongleNotFoundError(line[:200])
        if self.started is None and (match := _STARTED.match(line)):
            self.started = match.group(1)
        if self.started is not None and self.refused is not None:
            raise LinkModesRefusedError(self.refused)
        if _DECIDED in line:
            if self.started is None:  # detection is over, and found nothing it started
                raise DongleNotFoundError("wmbusmeters started no dongle")
            return self.started
        return None

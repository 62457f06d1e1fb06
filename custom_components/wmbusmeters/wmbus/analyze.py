"""What wmbusmeters makes of one telegram (the `wmbusmeters.analyze` action), asked of the
receiver's own binary in two runs, each bounded in time and output:

1. `--analyze=plain[:<driver>] <hex>`: the drivers it would pick (auto, the one that
   understands most, the one used) and its byte-by-byte reading of the telegram. Never with
   a key: wmbusmeters takes the analysis key only on its command line, where every process
   of the machine can read it. So the listing of an encrypted telegram stops at the
   encrypted part (`CE`).
2. The telegram replayed through a configuration of its own, exactly as a receiver runs it
   (a simulation file; the meter with its driver and key in a file only this user can read,
   in a private directory removed afterwards): the values a receiver would decode, and what
   wmbusmeters says of the key (it works, is wrong, is missing, or the telegram is not
   encrypted).

Both versions print the same layout (2.0.0 and 3.0.0; 3.0.0's `json` analysis is a stub,
`{ "TODO": true }`, so the plain one is read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
import json
from pathlib import Path
import re
import shutil
import tempfile
from typing import Any

from .config import MeterConfig, ReceiverConfig, render_config, validate_driver
from .errors import WmbusError
from .events import DecryptionFailed, DecryptionProblem
from .parse import parse_stderr, redact
from .probe import PROBE_TIMEOUT, NotWmbusmetersError, refuse_altered, start

#: A telegram is 10 to 300 bytes (a wireless frame is at most 256, a wired long frame 261).
MIN_BYTES = 10
MAX_BYTES = 300
#: What is read of each run's output (one telegram's analysis is a few kilobytes).
MAX_OUTPUT = 64 * 1024
#: The listing lines kept, and the characters of each.
MAX_LINES = 400
MAX_LINE = 300

_SEPARATORS = re.compile(r"[\s|_:,]+")
_LOGGED_AGE = re.compile(r"\|\+\d+\s*$")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_HEADER = re.compile(r"^(Auto|Similar|Using) driver\s*:\s*(.*?)\s*$")
_DRIVER_SCORE = re.compile(r"^(\S+)(?:\s+(\d+)/(\d+))?$")
#: A listing line: offset, then two flag characters (`C!` understood, `C?` not, `CE`
#: encrypted), then `:`.
_LISTED = re.compile(r"^\d{3}\s(..):")
_MFCT = re.compile(r"(?:dll|tpl)-mfct \(([^)]*)\)")
#: What wmbusmeters says of a driver it does not have (then it exits).
_NO_SUCH_DRIVER = re.compile(r"^No such driver (\S+)", re.MULTILINE)
_NOT_FOUND = "not found!"


class AnalyzeError(WmbusError):
    """The telegram cannot be analysed; `translation_key` says why."""

    translation_key = "analyze_failed"
    placeholders: dict[str, str] = {}  # noqa: RUF012  (replaced per instance, never mutated)


class NotATelegramError(AnalyzeError):
    """Not hex, odd, too short or too long."""

    translation_key = "analyze_not_hex"


class UnreadableTelegramError(AnalyzeError):
    """wmbusmeters could not read even the telegram's header."""

    translation_key = "analyze_unreadable"


class UnknownDriverError(AnalyzeError):
    """The binary has no driver of that name."""

    translation_key = "analyze_unknown_driver"

    def __init__(self, driver: str) -> None:
        """The driver as the message may show it: a key pasted into the field is not."""
        super().__init__("no such driver")
        self.placeholders = {"driver": redact(driver)[:64]}


class AnalyzeTimeoutError(AnalyzeError):
    """wmbusmeters did not answer in time."""

    translation_key = "analyze_timeout"


class KeyVerdict(StrEnum):
    """What wmbusmeters says of the key for this telegram."""

    WORKS = "works"
    WRONG = "wrong"
    MISSING = "missing"
    NOT_ENCRYPTED = "not_encrypted"  # a key, for a telegram that should be but is not
    NOT_NEEDED = "not_needed"
    UNKNOWN = "unknown"  # nothing decoded it (no driver for the meter)


@dataclass(slots=True)
class Analysis:
    """What the two runs found."""

    meter_id: str
    manufacturer: str
    auto_driver: str | None
    similar_driver: str | None
    similar_understood: str
    used_driver: str
    encrypted: bool
    key: KeyVerdict
    values: dict[str, Any]
    listing: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    truncated: bool = False
    #: Where the key came from: "given" (the call's), "saved" (the configured meter's), "none".
    key_source: str = "given"

    def as_dict(self) -> dict[str, Any]:
        """The action's response (JSON types only)."""
        return {
            "meter_id": self.meter_id,
            "manufacturer": self.manufacturer,
            "drivers": {
                "auto": self.auto_driver,
                "similar": self.similar_driver,
                "similar_understood": self.similar_understood,
                "used": self.used_driver,
            },
            "encrypted": self.encrypted,
            "key": str(self.key),
            "key_source": self.key_source,
            "values": self.values,
            "analysis": self.listing,
            "messages": self.messages,
            "truncated": self.truncated,
        }


def normalize_telegram(raw: str) -> str:
    """The telegram as upper-case hex: a simulation line's `telegram=|…|` and the line
    `--logtelegrams` prints (`|+0` after it), `_` between header and content, spaces and
    `0x` are accepted (as users copy them from logs)."""
    text = raw.strip().removeprefix("telegram=")
    # (--logtelegrams ends the line with `|+<seconds>`; bytes may each carry a `0x`)
    text = _SEPARATORS.sub("", _LOGGED_AGE.sub("", text)).replace("0x", "").replace("0X", "")
    if not _HEX.fullmatch(text) or len(text) % 2 or not MIN_BYTES <= len(text) // 2 <= MAX_BYTES:
        raise NotATelegramError
    return text.upper()


#: A configured meter's driver and key by its id (None: not configured).
type SavedMeter = Callable[[str], tuple[str, str] | None]


def _none(_: str) -> None:
    return None


async def analyze(
    command: str,
    telegram: str,
    *,
    driver: str | None = None,
    key: str | None = None,
    saved: SavedMeter = _none,
    timeout: float = PROBE_TIMEOUT,
) -> Analysis:
    """Analyse a telegram (normalize_telegram's output) with this binary. The driver and key
    are as a meter's form would save them; without them, those of the meter with the
    telegram's id where one is configured (`saved`), else `auto` and none."""
    if driver is not None:
        try:
            validate_driver(driver)
        except WmbusError as err:
            raise UnknownDriverError(driver) from err
    await refuse_altered(command)
    # (wmbusmeters reads a hex-looking item of --analyze=...: as a key: such a driver, abbb23,
    # is forced in the replay only)
    forced = driver not in (None, "auto") and not _HEX.fullmatch(str(driver))
    option = f"--analyze=plain:{driver}" if forced else "--analyze=plain"
    out, _, truncated = await _capture(command, [option, telegram], timeout)
    if _NO_SUCH_DRIVER.search(out) and driver is not None:
        raise UnknownDriverError(driver)
    found = _read_analysis(out)
    if found is None:
        raise UnreadableTelegramError
    listing, drivers, values = found
    meter_id = str(values.get("id", ""))
    encrypted = any(m and m.group(1) == "CE" for m in map(_LISTED.match, listing))
    manufacturer = next((m.group(1) for m in map(_MFCT.search, listing) if m), "")
    analysis = Analysis(
        meter_id=meter_id,
        manufacturer=manufacturer,
        auto_driver=None if drivers["Auto"] == _NOT_FOUND else drivers["Auto"],
        similar_driver=_driver(drivers["Similar"])[0],
        similar_understood=_driver(drivers["Similar"])[1],
        used_driver=_driver(drivers["Using"])[0] or "unknown",
        encrypted=encrypted,
        key=KeyVerdict.UNKNOWN,
        values=values,
        listing=[line[:MAX_LINE] for line in listing[:MAX_LINES]],
        truncated=truncated or len(listing) > MAX_LINES,
    )
    configured = saved(meter_id)
    if key is None:
        key = configured[1] if configured else ""
        analysis.key_source = "saved" if key else "none"
    if driver is None:
        # A configured meter is replayed as its receiver runs it; another with the driver the
        # analysis chose (2.0.0's `auto` in a configuration misses drivers its analysis finds).
        chosen = analysis.used_driver if analysis.used_driver != "unknown" else "auto"
        driver = configured[0] if configured else chosen
    try:
        meter = MeterConfig(meter_id, driver, key)
    except WmbusError:
        # (an id wmbusmeters printed that is not one meter's: nothing to replay it as)
        return analysis
    await _replay(command, telegram, meter, analysis, timeout)
    return analysis


def _driver(text: str) -> tuple[str | None, str]:
    """`kamheat 28/28` -> ("kamheat", "28/28"); `unknown 00/00` -> (None, "00/00")."""
    match = _DRIVER_SCORE.match(text)
    if match is None:
        return None, ""
    name = match.group(1)
    score = f"{match.group(2)}/{match.group(3)}" if match.group(2) else ""
    return (None if name == "unknown" else name), score


def _read_analysis(
    out: str,
) -> tuple[list[str], dict[str, str], dict[str, Any]] | None:
    """The listing, the three driver lines and the decoded JSON of an analysis; None if
    wmbusmeters printed none (it could not read the header)."""
    lines = out.splitlines()
    drivers: dict[str, str] = {}
    start = None
    for index, line in enumerate(lines):
        if match := _HEADER.match(line):
            drivers[match.group(1)] = match.group(2)
            if match.group(1) == "Using":
                start = index + 1
                break
    if start is None or len(drivers) != 3:
        return None
    listing: list[str] = []
    rest = lines[start:]
    while rest and rest[0].strip():
        listing.append(rest.pop(0).rstrip())
    text = "\n".join(rest)
    values: dict[str, Any] = {}
    if (begin := text.find("{")) >= 0:
        try:
            decoded = json.loads(text[begin : text.rfind("}") + 1])
        except ValueError:
            decoded = None
        if isinstance(decoded, dict) and decoded.get("_") == "telegram":
            values = decoded
    return listing, drivers, values


async def _replay(
    command: str, telegram: str, meter: MeterConfig, analysis: Analysis, timeout: float
) -> None:
    """Decode the telegram as a receiver with this one meter would: the values, and what
    wmbusmeters says of its key."""
    # The key is only in the meter file render_config writes (0600, in a 0700 directory).
    # All file work is done in a thread; the directory is removed once the thread that wrote
    # it is done, even when the call is cancelled meanwhile.
    prepare = asyncio.ensure_future(asyncio.to_thread(_prepare, telegram, meter))
    try:
        _, args = await asyncio.shield(prepare)
        out, err, truncated = await _capture(command, args, timeout)
    finally:
        cleanup = asyncio.ensure_future(_remove_after(prepare))
        _CLEANUPS.add(cleanup)
        cleanup.add_done_callback(_CLEANUPS.discard)
        await asyncio.shield(cleanup)
    analysis.truncated |= truncated
    decoded: dict[str, Any] | None = None
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict) and found.get("_") == "telegram":
                decoded = found
    problem: DecryptionProblem | None = None
    for line in err.splitlines():
        event = parse_stderr(line)
        if isinstance(event, DecryptionFailed):
            problem = event.problem
        if line.strip() and len(analysis.messages) < MAX_LINES:
            analysis.messages.append(redact(line.strip())[:MAX_LINE])
    if decoded is not None:
        # (what a receiver shows: its name for the meter is ours, not the user's)
        decoded.pop("name", None)
        if len(decoded) > len(analysis.values):
            # (a replay that decoded no more than the header keeps the analysis' values)
            analysis.values = decoded
            analysis.used_driver = str(decoded.get("meter") or analysis.used_driver)
    analysis.values.pop("name", None)
    analysis.key = _verdict(analysis.encrypted, bool(meter.key), problem, decoded is not None)


#: Removals under way (a task is only weakly held by the loop).
_CLEANUPS: set[asyncio.Future[None]] = set()


def _prepare(telegram: str, meter: MeterConfig) -> tuple[Path, list[str]]:
    """A private directory (0700) with the simulation file and the configuration, and the
    arguments to run it (blocking; nothing is left behind if it fails)."""
    root = Path(tempfile.mkdtemp(prefix="wmbusmeters-analyze-"))
    try:
        simulation = root / "simulation_analyze.txt"
        simulation.write_text(f"telegram=|{telegram}|\n")
        config = ReceiverConfig(str(simulation), meters=(meter,))
        return root, render_config(config, root / "config")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


async def _remove_after(prepare: asyncio.Future[tuple[Path, list[str]]]) -> None:
    """Remove the directory once the thread that writes it is done."""
    try:
        root, _ = await prepare
    except (Exception, asyncio.CancelledError):
        return  # (_prepare removed what it had made)
    await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)


def _verdict(
    encrypted: bool, has_key: bool, problem: DecryptionProblem | None, decoded: bool
) -> KeyVerdict:
    if has_key and not encrypted and problem is not None:
        # (a key for a telegram sent in the clear: wmbusmeters fails it, as wrong or as not
        # encrypted; the meter is to be saved without one)
        return KeyVerdict.NOT_ENCRYPTED
    if problem is DecryptionProblem.WRONG_KEY:
        # (without a key, wmbusmeters tries an AES-CTR telegram with none and calls it wrong)
        return KeyVerdict.WRONG if has_key else KeyVerdict.MISSING
    if problem is DecryptionProblem.MISSING_KEY:
        return KeyVerdict.MISSING
    if problem is DecryptionProblem.NOT_ENCRYPTED:
        return KeyVerdict.NOT_ENCRYPTED
    if not decoded:
        return KeyVerdict.MISSING if encrypted and not has_key else KeyVerdict.UNKNOWN
    return KeyVerdict.WORKS if encrypted and has_key else KeyVerdict.NOT_NEEDED


async def _capture(command: str, args: list[str], timeout: float) -> tuple[str, str, bool]:
    """The run's stdout and stderr (at most MAX_OUTPUT of each, the rest read and dropped so
    the program never blocks on a full pipe), and whether anything was dropped; killed
    if it has not ended within `timeout`."""
    proc = await start(command, *args, stderr=asyncio.subprocess.PIPE)
    if proc.stdout is None or proc.stderr is None:  # pragma: no cover - PIPE was given
        raise NotWmbusmetersError(command)
    try:
        async with asyncio.timeout(timeout):
            (out, cut_out), (errors, cut_err) = await asyncio.gather(
                _read_bounded(proc.stdout), _read_bounded(proc.stderr)
            )
            await proc.wait()
    except TimeoutError as exc:
        raise AnalyzeTimeoutError from exc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out.decode("utf-8", "replace"), errors.decode("utf-8", "replace"), cut_out or cut_err


async def _read_bounded(stream: asyncio.StreamReader) -> tuple[bytes, bool]:
    kept = bytearray()
    dropped = False
    while chunk := await stream.read(65536):
        room = MAX_OUTPUT - len(kept)
        kept += chunk[:room]
        dropped |= len(chunk) > room
    return bytes(kept), dropped

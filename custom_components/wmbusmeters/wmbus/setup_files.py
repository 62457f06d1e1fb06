"""Reading an existing wmbusmeters setup (the add-on's, a source install's): its
`wmbusmeters.conf` and its `wmbusmeters.d/` meter files, read by wmbusmeters' own rules
(src/config.cc in 3.0.0), into what this integration can take over and what it cannot, each
with its reason (issue 27, groundwork).

Read by wmbusmeters' rules: one `key=value` per line, whitespace around key and value
trimmed (inside kept), CR before the newline dropped, empty and `#` lines skipped, a line
without `=` skipped, the first `=` splits. Stricter where wmbusmeters would silently differ
from what a user sees: a file that is not text, larger than MAX_FILE, has a line longer than
wmbusmeters reads (4096) or ends in half a line (wmbusmeters drops it) is refused as a whole,
so that nothing is taken from a file that may be cut off or not a configuration at all.

Every value is checked here as the forms check theirs (config.py: ids, keys, drivers' names,
devices, types, link modes) before anything is built from it. No shell line of any kind is
ever taken; what is not taken is said, never dropped without a word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import stat
from typing import Final

from .config import (
    DEVICE_KEYWORDS,
    DEVICE_TYPES,
    LINK_MODES,
    MAX_NAME,
    MBUS,
    STDIN_DEVICE,
    WmbusConfigError,
    is_simulation,
    normalize_key,
    normalize_meter_id,
    validate_device,
    validate_driver,
    validate_link_modes,
)

#: The largest configuration file read (the add-on's are a few hundred bytes).
MAX_FILE: Final = 64 * 1024
#: The longest line wmbusmeters reads (src/config.cc: eatToSkipWhitespace(..., 4096, ...)).
MAX_LINE: Final = 4096
#: The most meter files read from one setup.
MAX_METERS: Final = 500
CONF_NAME: Final = "wmbusmeters.conf"
METERS_DIR: Final = "wmbusmeters.d"

#: Meter keys that run a program: never taken (their values reach a shell).
SHELL_KEYS: Final = frozenset({"shell", "metershell", "alarmshell"})
#: Settings of wmbusmeters.conf the integration makes itself (not taken, no harm).
MANAGED_CONF: Final = frozenset(
    {
        "loglevel",
        "format",
        "logfile",
        "logtelegrams",
        "meterfiles",
        "meterfilesaction",
        "meterfilesnaming",
        "meterfilestimestamp",
        "donotprobe",
        "ignoreduplicates",
        "resetafter",
        "exitafter",
        "separator",
        "addconversions",
        "selectfields",
        "json",
        "field",
        "listento",
        "logtimestamps",
        "useconfig",
        "alarmtimeout",
        "alarmexpectedactivity",
    }
)
_FREQUENCY = re.compile(r"\d{2,4}(\.\d{1,6})?M")
_BPS = re.compile(r"\d{3,6}")
_TYPE_WITH_ID = re.compile(r"([a-z0-9]+)(?:\[([0-9A-Fa-f]{1,16})\])?")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class SetupFileError(WmbusConfigError):
    """A file of the setup cannot be read as a configuration (nothing is taken from it)."""

    def __init__(self, translation_key: str, file: str) -> None:
        super().__init__(f"{file}: {translation_key}")
        self.translation_key = translation_key
        self.file = file


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something of the setup that is not taken over, and why (`reason`: a translation key;
    `what`: the file and key or value it was, never a key's value)."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class ImportedDevice:
    """The radio of the setup, as this integration's receiver form would hold it."""

    device: str
    device_type: str = ""
    link_modes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImportedMeter:
    """A meter file that can be taken over (its values checked as the forms check them)."""

    file: str
    name: str
    driver: str
    meter_id: str
    key: str = field(repr=False)


@dataclass(slots=True)
class ImportedSetup:
    """What a setup's files hold: the radio, the meters, and what is not taken."""

    root: Path
    device: ImportedDevice | None = None
    meters: list[ImportedMeter] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


_SHOWN_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_SHOWN_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _shown(key: str) -> str:
    """A key as a summary may show it: wmbusmeters' own keys are words; anything else (a
    file that is no wmbusmeters configuration: `db_url: postgresql://u:pw@...`) is not
    shown."""
    return key if _SHOWN_KEY.fullmatch(key) else "…"


def key_values(data: bytes, file: str) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """A configuration file's `key=value` lines by wmbusmeters' rules, and the lines it skips
    (no `=`, an empty key); SetupFileError if the file cannot be one."""
    if len(data) > MAX_FILE:
        raise SetupFileError("file_too_large", file)
    if b"\0" in data:
        raise SetupFileError("not_text", file)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SetupFileError("not_text", file) from err
    if text and not text.endswith("\n"):
        raise SetupFileError("half_line", file)
    pairs: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    for number, raw in enumerate(text.split("\n")[:-1], start=1):
        if len(raw) > MAX_LINE:
            raise SetupFileError("line_too_long", file)
        line = raw.removesuffix("\r").strip(" \t\r\n")
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(" \t\r\n"), value.strip(" \t\r\n")
        if not sep or not key:
            skipped.append(Skipped(f"{file}:{number}", "not_key_value"))
            continue
        if not key.isprintable() or not value.isprintable():
            raise SetupFileError("not_text", file)
        pairs.append((key, value))
    return pairs, skipped


def dropped_device_parts(value: str) -> list[str]:
    """What of a `device=` value the receiver form does not take (said in the summary): a
    dongle's id (`im871a[00102759]`), a frequency (`868.3M`), a bus speed."""
    parts = value.partition("=")[2] if "=" in value else value
    dropped = []
    for part in parts.split(":"):
        if "[" in part:
            dropped.append("device_id")
        elif _FREQUENCY.fullmatch(part):
            dropped.append("frequency")
        elif _BPS.fullmatch(part):
            dropped.append("bus_speed")
    return dropped


def parse_device(value: str) -> ImportedDevice:
    """A `device=` value (`auto:t1`, `/dev/ttyUSB0:im871a:c1,t1`, `im871a[00102759]:c1`,
    `rtlwmbus`, `/dev/ttyUSB0:mbus:2400`, `MAIN=/dev/ttyUSB1:mbus:2400`) as the receiver form
    holds it; WmbusConfigError if the form could not hold it."""
    alias, sep, rest = value.partition("=")
    if sep:
        if not _ALIAS.fullmatch(alias):
            raise WmbusConfigError("not a bus alias")
        value = rest
    parts = value.split(":")
    first, others = parts[0], parts[1:]
    device, device_type = first, ""
    if (match := _TYPE_WITH_ID.fullmatch(first)) and match.group(1) in DEVICE_TYPES:
        # A dongle named by its type (wmbusmeters finds it): the form's `auto` finds it too.
        device, device_type = "auto", ""
    device = validate_device(device)
    modes: list[str] = []
    for part in others:
        if (match := _TYPE_WITH_ID.fullmatch(part)) and match.group(1) in DEVICE_TYPES:
            if device_type or device in DEVICE_KEYWORDS:
                raise WmbusConfigError("a device type twice, or on a keyword")
            device_type = match.group(1)
        elif set(part.split(",")) <= set(LINK_MODES) and part:
            modes.extend(part.split(","))
        elif _BPS.fullmatch(part) or _FREQUENCY.fullmatch(part):
            continue  # a bus speed or a frequency: the form asks for it when it matters
        else:
            raise WmbusConfigError("an unknown part of the device")
    if device == STDIN_DEVICE:
        raise WmbusConfigError("stdin: a network receiver is set up in its own form")
    if device not in DEVICE_KEYWORDS and not device_type and not is_simulation(device):
        raise WmbusConfigError("a serial device without its type")
    link_modes = () if device_type == MBUS else validate_link_modes(modes)
    return ImportedDevice(device, device_type, link_modes)


def read_meter(
    pairs: list[tuple[str, str]], file: str
) -> tuple[ImportedMeter | None, list[Skipped]]:
    """A meter file's values, checked as the meter form checks them: the meter, or None
    with why, and what of it is not taken."""
    values: dict[str, str] = {}
    skipped: list[Skipped] = []
    for key, value in pairs:
        if key in SHELL_KEYS:
            skipped.append(Skipped(f"{file}:{_shown(key)}", "shell"))
        elif key.startswith("calculate_"):
            skipped.append(Skipped(f"{file}:{_shown(key)}", "calculated_field"))
        elif key.startswith(("json_", "field_")):
            skipped.append(Skipped(f"{file}:{_shown(key)}", "constant_field"))
        elif key in ("name", "driver", "type", "id", "key", "pollinterval"):
            values["driver" if key == "type" else key] = value
        else:
            # selectedfields, identitymode, bus, and what a newer wmbusmeters adds
            skipped.append(Skipped(f"{file}:{_shown(key)}", "not_taken"))
    name = values.get("name", "")
    if not name or len(name) > MAX_NAME or ":" in name or not name.isprintable():
        return None, [*skipped, Skipped(file, "invalid_name")]
    try:
        meter_id = normalize_meter_id(values.get("id", ""))
    except WmbusConfigError:
        return None, [*skipped, Skipped(file, "not_one_meter_id")]
    try:
        driver = validate_driver(values.get("driver", "auto") or "auto")
        key = normalize_key(values.get("key", ""))
    except WmbusConfigError as err:
        return None, [*skipped, Skipped(file, err.translation_key)]
    if "pollinterval" in values:
        skipped.append(Skipped(f"{file}:pollinterval", "not_taken"))  # wired meters only
    return ImportedMeter(file, name, driver, meter_id, key), skipped


def setup_dirs(root: Path) -> tuple[Path, Path] | None:
    """Where a setup's files are under `root`: the add-on's data path (`etc/` in it) or a
    source install's `/etc`; None if neither is there (blocking: stat)."""
    for etc in (root / "etc", root):
        conf = etc / CONF_NAME
        if not etc.is_symlink() and not conf.is_symlink() and conf.is_file():
            return conf, etc / METERS_DIR
    return None


def read_setup(root: Path) -> ImportedSetup:
    """Everything a setup's files hold that this integration can take, and what not, why
    (blocking: reads files). SetupFileError if there is no setup or a file cannot be one."""
    found = setup_dirs(root)
    if found is None:
        raise SetupFileError("no_setup", str(root))
    conf, meters_dir = found
    setup = ImportedSetup(root)
    pairs, setup.skipped = key_values(_read(conf), CONF_NAME)
    _read_conf(setup, pairs)
    seen: set[str] = set()
    for path in _meter_files(meters_dir):
        name = f"{METERS_DIR}/{path.name}"
        if not _SHOWN_FILE.fullmatch(path.name):
            setup.skipped.append(Skipped(f"{METERS_DIR}/…", "not_taken"))
            continue
        pairs, lines = key_values(_read(path, name), name)
        meter, skipped = read_meter(pairs, name)
        setup.skipped.extend([*lines, *skipped])
        if meter is not None and meter.meter_id in seen:
            setup.skipped.append(Skipped(name, "duplicate_meter"))
        elif meter is not None:
            seen.add(meter.meter_id)
            setup.meters.append(meter)
    return setup


def _read_conf(setup: ImportedSetup, pairs: list[tuple[str, str]]) -> None:
    """wmbusmeters.conf: its first radio; every other line not taken, with why."""
    for key, value in pairs:
        if key != "device":
            reason = "shell" if key in SHELL_KEYS else "managed"
            if key == "donotprobe":
                reason = "donotprobe"
            elif key not in MANAGED_CONF and key not in SHELL_KEYS:
                reason = "not_taken"
            setup.skipped.append(Skipped(f"{CONF_NAME}:{_shown(key)}", reason))
        elif setup.device is not None:
            setup.skipped.append(Skipped(f"{CONF_NAME}:device", "second_device"))
        else:
            try:
                setup.device = parse_device(value)
            except WmbusConfigError:
                setup.skipped.append(Skipped(f"{CONF_NAME}:device", "unknown_device"))
            else:
                setup.skipped.extend(
                    Skipped(f"{CONF_NAME}:device", part) for part in dropped_device_parts(value)
                )


def _meter_files(meters_dir: Path) -> list[Path]:
    """The meter files (regular files, not hidden), at most MAX_METERS of them, by name;
    none if the directory is not there. Listed without following links out of it."""
    if meters_dir.is_symlink() or not meters_dir.is_dir():
        return []
    files: list[Path] = []
    with os.scandir(meters_dir) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            if len(files) == MAX_METERS:
                raise SetupFileError("too_many_meters", METERS_DIR)
            files.append(Path(entry.path))
    return sorted(files)


def _read(path: Path, name: str = CONF_NAME) -> bytes:
    """A configuration file's bytes (at most one more than MAX_FILE): a regular file only,
    not through a link (a setup's files are its own), never waiting on a pipe or device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise SetupFileError("unreadable", name) from err
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SetupFileError("unreadable", name)
        try:
            return file.read(MAX_FILE + 1)
        except OSError as err:
            raise SetupFileError("unreadable", name) from err

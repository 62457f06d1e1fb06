"""Validate receiver and meter settings and render them into a --useconfig directory.

wmbusmeters' config format is `key=value` lines with no quoting or escaping, and 2.0.0 executes
`shell=` lines. So every value is checked against a strict pattern before it is written: nothing
a user types can add a line. User-chosen meter names never reach wmbusmeters at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import stat
import tempfile

from .errors import WmbusError
from .events import CATCH_ALL_NAME

LINK_MODES = ("c1", "t1", "s1", "s1m", "n1a", "n1b", "n1c", "n1d", "n1e", "n1f", "lora")
#: RTL-SDR receivers, started by wmbusmeters itself (no serial port, no link modes to set).
RTL_DEVICES = ("rtlwmbus", "rtl433")
#: Telegrams that come over the network: the integration's listener writes them to
#: wmbusmeters' stdin, as lines of rtl_wmbus' format or hex (`stdin:rtlwmbus`, `stdin:hex`).
STDIN_DEVICE = "stdin"
STDIN_FORMATS = ("rtlwmbus", "hex")
#: Devices that are words, not paths: wmbusmeters finds the radio itself.
DEVICE_KEYWORDS = ("auto", *RTL_DEVICES, STDIN_DEVICE)
#: Serial dongles wmbusmeters detects and sets up on a tty given as `<path>:<type>` (a bare
#: path never starts: "You have to specify the expected device type for the tty").
DONGLE_TYPES = ("im871a", "im170a", "amb8465", "amb3665", "cul", "rc1180", "iu891a", "iu880b")
#: A tty that carries raw telegrams. wmbusmeters cannot detect it on a tty (`<path>:rawtty`
#: is "not found", measured on 2.0.0 and 3.0.0): it is given by its speed, `<path>:<bps>`.
RAWTTY = "rawtty"
RAWTTY_BPS = 9600
#: A wired M-Bus master (a level converter on a serial port): wmbusmeters polls the meters on
#: it, at one of the bus' speeds, through a bus alias the meters name.
MBUS = "mbus"
MBUS_BAUD_RATES = (300, 2400, 9600)
MBUS_ALIAS = "MBUS"
MBUS_PRIMARY_RANGE = (0, 250)
#: Seconds between polls of a wired meter (a bus at 2400 bps answers in well under a second).
POLL_INTERVAL_RANGE = (2, 86400)
#: The longest meter name (the forms, an imported setup): longer names make entity ids nobody
#: can read (and a 5,000-character one was accepted).
MAX_NAME = 64
#: The types a serial device path is stored with.
DEVICE_TYPES = (*DONGLE_TYPES, RAWTTY, MBUS)

_C_S_T = ("c1", "s1", "s1m", "t1")
_N = ("n1a", "n1b", "n1c", "n1d", "n1e", "n1f")
_C_T = frozenset({"c1", "t1"})


@dataclass(frozen=True, slots=True)
class DongleModes:
    """What a dongle can listen to: its link modes, and the pairs it can listen to at once
    (every other choice is one mode). wmbusmeters' own rules (`supportedLinkModes` and
    `canSetLinkModes` of each dongle in 3.0.0); a choice they refuse makes wmbusmeters warn
    "Desired link modes ... cannot be set" and listen to something else."""

    modes: tuple[str, ...]
    pairs: tuple[frozenset[str], ...] = ()

    def allows(self, chosen: Collection[str]) -> bool:
        """Whether the dongle can listen to exactly these modes."""
        wanted = frozenset(chosen)
        if not wanted or not wanted <= set(self.modes):
            return False
        return len(wanted) == 1 or wanted in self.pairs


DONGLE_MODES: dict[str, DongleModes] = {
    # C1+T1 at once needs firmware 0x14 or later; detection reports the refusal of older ones.
    "im871a": DongleModes(_C_S_T, (_C_T,)),
    "im170a": DongleModes(_N),
    # Upstream accepts any pair with S1 or S1-m besides C1+T1.
    "amb8465": DongleModes(
        _C_S_T,
        (_C_T, *(frozenset({s, other}) for s in ("s1", "s1m") for other in _C_S_T if other != s)),
    ),
    "amb3665": DongleModes(_N),
    "cul": DongleModes(("c1", "s1", "t1")),
    "rc1180": DongleModes(("t1",)),
    "iu891a": DongleModes(_C_S_T, (_C_T,)),
    "iu880b": DongleModes(("lora",)),
}

#: RTL-SDR tuning wmbusmeters passes to rtl_sdr/rtl_433 (`rtlwmbus[serial](ppm=N):868.95M`).
#: It builds a shell command line from them, so each is a number or a short word of letters
#: and digits, nothing else.
RTL_PPM_RANGE = (-500, 500)
RTL_FREQUENCY_RANGE_MHZ = (24.0, 1766.0)
_RTL_SERIAL = re.compile(r"[A-Za-z0-9]{1,32}")

CONF_FILE = "wmbusmeters.conf"
METERS_DIR = "wmbusmeters.d"

_METER_ID = re.compile(r"[0-9A-Fa-f]{8}")
_KEY = re.compile(r"[0-9A-F]{32}")
_KEY_SEPARATORS = re.compile(r"[\s\-:]")
_DRIVER = re.compile(r"[a-z0-9_\-]{1,40}")
# A path is written verbatim after `device=`; ':' would start wmbusmeters' own device syntax.
_DEVICE_PATH = re.compile(r"/[A-Za-z0-9._/+\-]+")


class WmbusConfigError(WmbusError, ValueError):
    """A setting that must not be written to wmbusmeters' configuration."""

    #: Stable name for translations (config flow errors, exceptions).
    translation_key = "invalid_config"


class InvalidMeterIdError(WmbusConfigError):
    """A meter id is not exactly 8 hex digits."""

    translation_key = "invalid_meter_id"


class InvalidKeyError(WmbusConfigError):
    """An AES key is not 32 hex digits."""

    translation_key = "invalid_key"


class InvalidDriverError(WmbusConfigError):
    """A driver name is not `auto` nor one wmbusmeters knows."""

    translation_key = "unknown_driver"


class InvalidLinkModeError(WmbusConfigError):
    """A link mode wmbusmeters does not know."""

    translation_key = "invalid_link_mode"


class UnsupportedLinkModesError(InvalidLinkModeError):
    """Link modes this dongle cannot listen to (or not all at once)."""

    translation_key = "link_modes_unsupported"


class InvalidRtlOptionError(WmbusConfigError):
    """An RTL-SDR serial, ppm or frequency wmbusmeters could not take."""

    translation_key = "invalid_rtl_option"


class InvalidMbusOptionError(WmbusConfigError):
    """A baud rate, primary address or poll interval wmbusmeters could not take."""

    translation_key = "invalid_mbus_option"


class InvalidDeviceError(WmbusConfigError):
    """A device that is not a keyword nor a safe, existing path."""

    translation_key = "invalid_device"


def normalize_meter_id(raw: str) -> str:
    """Return the 8-hex-digit meter id in lower case, as wmbusmeters prints it (`004444dd`)."""
    value = raw.strip()
    if not _METER_ID.fullmatch(value):
        raise InvalidMeterIdError("a meter id is exactly 8 hex digits")
    return value.lower()


def normalize_key(raw: str) -> str:
    """Return the key as 32 upper-case hex digits, or "" for no key.

    Users copy keys from supplier letters with spaces, dashes and lower case; accept those.
    """
    value = _KEY_SEPARATORS.sub("", raw).upper()
    if value in ("", "NOKEY"):
        return ""
    if not _KEY.fullmatch(value):
        # Never echo the value: it is (almost) a secret.
        raise InvalidKeyError("an AES key is 32 hex digits")
    return value


def validate_driver(driver: str, known: Collection[str] | None = None) -> str:
    """Return the driver name if it is `auto` or known (when a list of known drivers is given)."""
    if not _DRIVER.fullmatch(driver) or (
        known is not None and driver != "auto" and driver not in known
    ):
        raise InvalidDriverError(f"unknown driver {driver[:40]!r}")
    return driver


def validate_link_modes(modes: Iterable[str]) -> tuple[str, ...]:
    """Return the link modes in wmbusmeters' order, each known, no duplicates."""
    chosen = set(modes)
    unknown = chosen.difference(LINK_MODES)
    if unknown:
        raise InvalidLinkModeError(f"unknown link mode(s): {', '.join(sorted(unknown))[:80]}")
    return tuple(mode for mode in LINK_MODES if mode in chosen)


def check_dongle_link_modes(device_type: str, modes: Collection[str]) -> None:
    """Raise if this dongle type cannot listen to these link modes (no rule: no check)."""
    rule = DONGLE_MODES.get(device_type)
    if rule is not None and modes and not rule.allows(modes):
        raise UnsupportedLinkModesError(f"{device_type} cannot listen to {', '.join(modes)}")


@dataclass(frozen=True, slots=True)
class RtlOptions:
    """Which RTL-SDR stick (its serial, as rtl_eeprom set it), its frequency correction and the
    frequency to listen on (otherwise wmbusmeters' default, which hears S1, T1 and C1)."""

    serial: str = ""
    ppm: int = 0
    frequency_mhz: float | None = None

    def __post_init__(self) -> None:
        """Refuse anything wmbusmeters could not put into its rtl_sdr command line."""
        if self.serial and not _RTL_SERIAL.fullmatch(self.serial):
            raise InvalidRtlOptionError("an RTL-SDR serial is 1-32 letters and digits")
        if isinstance(self.ppm, bool) or not isinstance(self.ppm, int):
            raise InvalidRtlOptionError("ppm is a whole number")
        if not RTL_PPM_RANGE[0] <= self.ppm <= RTL_PPM_RANGE[1]:
            raise InvalidRtlOptionError("ppm out of range")
        freq = self.frequency_mhz
        if freq is not None and not (
            isinstance(freq, (int, float))
            and RTL_FREQUENCY_RANGE_MHZ[0] <= freq <= RTL_FREQUENCY_RANGE_MHZ[1]
        ):
            raise InvalidRtlOptionError("frequency out of range")

    def spec(self, keyword: str) -> str:
        """`rtlwmbus[serial](ppm=N):868.95M`, each part only when set."""
        text = keyword
        if self.serial:
            text += f"[{self.serial}]"
        if self.ppm:
            text += f"(ppm={self.ppm})"
        if self.frequency_mhz is not None:
            # Digits and one dot (kHz precision): what wmbusmeters' isFrequency accepts.
            text += ":" + f"{self.frequency_mhz:.3f}".rstrip("0").rstrip(".") + "M"
        return text


def validate_device(device: str) -> str:
    """Return the device if it is a keyword or a safe path (existence is checked separately).
    A path with `.` or `..` parts (`/dev/../etc/passwd`) is refused: it is never a radio."""
    if device in DEVICE_KEYWORDS:
        return device
    if _DEVICE_PATH.fullmatch(device) and not {".", ".."} & set(device.split("/")):
        return device
    raise InvalidDeviceError(
        "a device is auto, rtlwmbus, rtl433 or an absolute path of letters, digits and ._/+-"
    )


def validate_device_type(device: str, device_type: str) -> str:
    """A type belongs to a serial device path, one of DEVICE_TYPES; a keyword or a simulation
    file has none."""
    if not device_type:
        if device == STDIN_DEVICE:
            raise InvalidDeviceError("stdin carries rtlwmbus or hex lines")
        return device_type
    if device_type not in (*DEVICE_TYPES, *STDIN_FORMATS):
        raise InvalidDeviceError("unknown device type")
    if device == STDIN_DEVICE:
        if device_type not in STDIN_FORMATS:
            raise InvalidDeviceError("stdin carries rtlwmbus or hex lines")
        return device_type
    if device in DEVICE_KEYWORDS or is_simulation(device):
        raise InvalidDeviceError("a device type is only given with a serial device path")
    return device_type


def device_kind_problem(device: str) -> str | None:
    """What is wrong with a path as a radio, or None (blocking: stat). A radio is a character
    device (a by-id link is followed) or a simulation file; `/etc/shadow` is neither."""
    if device in DEVICE_KEYWORDS:
        return None
    try:
        mode = os.stat(device).st_mode
    except OSError:
        return "device_not_found"
    if is_simulation(device):
        return None if stat.S_ISREG(mode) else "not_a_serial_port"
    return None if stat.S_ISCHR(mode) else "not_a_serial_port"


def needs_device_type(device: str) -> bool:
    """Whether wmbusmeters needs to be told what is on this device (a serial path)."""
    return device not in DEVICE_KEYWORDS and not is_simulation(device)


def is_simulation(device: str) -> bool:
    """Whether wmbusmeters replays this device as a simulation file (it checks the base name)."""
    return device.startswith("/") and os.path.basename(device).startswith("simulation")


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """One meter as wmbusmeters is told about it. Validated on creation."""

    meter_id: str
    driver: str = "auto"
    key: str = ""
    #: A wired M-Bus meter is polled every `poll_interval` seconds (0: a radio meter, which
    #: sends by itself), at its primary address if it has one, else at its secondary address
    #: (the meter id).
    poll_interval: int = 0
    primary_address: int | None = None

    def __post_init__(self) -> None:
        """Refuse anything that could not be written safely."""
        object.__setattr__(self, "meter_id", normalize_meter_id(self.meter_id))
        object.__setattr__(self, "key", normalize_key(self.key))
        validate_driver(self.driver)
        if self.poll_interval or self.primary_address is not None:
            low, high = POLL_INTERVAL_RANGE
            if not _whole(self.poll_interval) or not low <= self.poll_interval <= high:
                raise InvalidMbusOptionError("a poll interval is 2 to 86400 whole seconds")
            address = self.primary_address
            if address is not None and (
                not _whole(address) or not MBUS_PRIMARY_RANGE[0] <= address <= MBUS_PRIMARY_RANGE[1]
            ):
                raise InvalidMbusOptionError("a primary address is 0 to 250")
            if self.driver == "auto":
                # Polling needs the driver (`<driver>:MBUS:mbus`): auto cannot be polled.
                raise InvalidDriverError("a wired meter needs its driver")

    @property
    def polled(self) -> bool:
        """Whether wmbusmeters polls this meter on a wired M-Bus."""
        return self.poll_interval > 0

    @property
    def safe_name(self) -> str:
        """The name wmbusmeters gets: generated, never the user's (see module docstring)."""
        return f"m{self.meter_id}"


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """One radio and its meters. Validated on creation."""

    device: str
    link_modes: tuple[str, ...] = ()
    meters: tuple[MeterConfig, ...] = field(default=())
    #: Add a catch-all meter (driver auto, id *) so meters nobody configured are still heard.
    listen_all: bool = False
    #: What is on a serial device path (DEVICE_TYPES); empty for a keyword or a simulation.
    device_type: str = ""
    #: Tuning of an RTL-SDR stick (only with rtlwmbus or rtl433).
    rtl: RtlOptions = field(default_factory=RtlOptions)
    #: The speed of a wired M-Bus (only with device_type mbus).
    baud_rate: int = 2400

    def __post_init__(self) -> None:
        """Refuse anything that could not be written safely."""
        validate_device(self.device)
        validate_device_type(self.device, self.device_type)
        if self.baud_rate not in MBUS_BAUD_RATES or not _whole(self.baud_rate):
            raise InvalidMbusOptionError("an M-Bus runs at 300, 2400 or 9600 bps")
        wired = self.device_type == MBUS
        if any(meter.polled != wired for meter in self.meters):
            raise InvalidMbusOptionError("wired meters belong to an M-Bus, radio meters to a radio")
        if wired and (self.link_modes or self.listen_all):
            raise InvalidMbusOptionError("an M-Bus has no link modes and no unasked telegrams")
        if self.rtl != RtlOptions() and self.device not in RTL_DEVICES:
            raise InvalidRtlOptionError("RTL-SDR options belong to rtlwmbus or rtl433")
        object.__setattr__(self, "link_modes", validate_link_modes(self.link_modes))
        ids = [meter.meter_id for meter in self.meters]
        if len(ids) != len(set(ids)):
            raise InvalidMeterIdError("a meter id is configured twice")

    @property
    def device_spec(self) -> str:
        """The `device=` value, built from validated parts only: the device, its type (`im871a`,
        or the speed of a raw tty), then the link modes (not for a simulation file)."""
        if is_simulation(self.device):
            return self.device
        if self.device_type == MBUS:
            # `MBUS=/dev/ttyUSB0:mbus:2400`: the alias the meters' drivers name.
            return f"{MBUS_ALIAS}={self.device}:{MBUS}:{self.baud_rate}"
        parts = [self.rtl.spec(self.device) if self.device in RTL_DEVICES else self.device]
        if self.device_type == RAWTTY:
            parts.append(str(RAWTTY_BPS))
        elif self.device_type:
            parts.append(self.device_type)
        if self.link_modes:
            parts.append(",".join(self.link_modes))
        return ":".join(parts)


def render_lines(config: ReceiverConfig) -> dict[str, list[str]]:
    """The files of a --useconfig directory, relative path -> lines."""
    files = {
        CONF_FILE: [
            "loglevel=normal",
            f"device={config.device_spec}",
            "format=json",
            "logtelegrams=false",
        ]
    }
    for meter in config.meters:
        lines = [f"name={meter.safe_name}"]
        if meter.polled:
            address = meter.meter_id
            if meter.primary_address is not None:
                address = f"p{meter.primary_address}"
            lines += [
                f"driver={meter.driver}:{MBUS_ALIAS}:{MBUS}",
                f"id={address}",
                f"pollinterval={meter.poll_interval}s",
            ]
        else:
            lines += [f"driver={meter.driver}", f"id={meter.meter_id}"]
        files[f"{METERS_DIR}/{meter.safe_name}"] = [*lines, f"key={meter.key or 'NOKEY'}"]
    if config.listen_all:
        # Every id but the configured ones: 2.0.0 would otherwise hand a configured meter's
        # telegrams to the catch-all too, print them twice and, for an encrypted meter, warn
        # that the catch-all (having no key) cannot decrypt them.
        ids = "".join(f",!{meter.meter_id}" for meter in config.meters)
        files[f"{METERS_DIR}/zz_any"] = [
            f"name={CATCH_ALL_NAME}",
            "driver=auto",
            f"id=*{ids}",
            "key=NOKEY",
        ]
    return files


def _write_private(path: Path, text: str) -> None:
    """Write a file readable only by us, atomically (readers never see half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_config(config: ReceiverConfig, directory: Path) -> list[str]:
    """Write the configuration into `directory` and return the arguments for wmbusmeters.

    Blocking file I/O: call it from an executor. Meter files of meters no longer configured
    are removed, so wmbusmeters never sees a stale key.
    """
    meters_dir = directory / METERS_DIR
    for folder in (directory, meters_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    files = render_lines(config)
    for relative, lines in files.items():
        for line in lines:
            # Belt and braces: the validators above make this impossible.
            if "\n" in line or "\r" in line or not line.isascii():
                raise WmbusConfigError("refusing to write an unsafe configuration line")
        _write_private(directory / relative, "\n".join(lines) + "\n")
    wanted = {Path(relative).name for relative in files if relative.startswith(METERS_DIR)}
    for stale in meters_dir.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return [f"--useconfig={directory}"]

"""The wmbusmeters a release may ship beside the integration (`bin/<machine>/wmbusmeters`), for
installations where nothing can be installed next to Home Assistant (OS, Container).

Which command runs, in this order: the one the user set; `wmbusmeters` on PATH; the bundled
binary for this machine. Nothing is downloaded at run time.

A bundled binary runs only while its folder matches the release's `SHA256SUMS` (written by
scripts/release beside the binaries): a half-extracted or altered file is never run. The check
reads the files once per change of them (their size, time and inode), not at every start.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import platform
import re
import shutil
import stat
import threading

#: Where a release zip puts the binaries (scripts/release, issue 13).
BUNDLE_DIR = Path(__file__).resolve().parent.parent / "bin"
#: Other names of the same machines (Debian's and Docker's).
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
#: What must be executable beside it: wmbusmeters starts `rtl_sdr | rtl_wmbus` for an RTL-SDR
#: stick and looks for both in its own directory first (static, as it is: scripts/build-static).
_HELPERS = ("rtl_sdr", "rtl_wmbus")


#: The release's checksums of each machine's folder (`sha256sum` format).
SUMS = "SHA256SUMS"
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *]([A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*)")
#: folder -> (what its files looked like when checked, the problem found then)
_CHECKED: dict[Path, tuple[tuple[object, ...], str | None]] = {}
_CHECK_LOCK = threading.Lock()


class BundledAlteredError(OSError):
    """The bundled binary's folder does not match the release's checksums."""

    def __init__(self, file: str) -> None:
        """`file`: the first file that does not match (or SHA256SUMS itself)."""
        super().__init__(f"the bundled {file} does not match the release's SHA256SUMS")
        self.file = file


def _bundled_path(command: str, bundle_dir: Path | None) -> Path | None:
    """The command's path if it is the bundled wmbusmeters (not a link to one)."""
    base = (bundle_dir or BUNDLE_DIR).resolve()
    path = Path(command)
    if not path.is_absolute() or path.name != "wmbusmeters" or path.is_symlink():
        return None
    try:
        path.resolve().relative_to(base)
    except (OSError, ValueError):
        return None
    return path


def bundled_problem(command: str, bundle_dir: Path | None = None) -> str | None:
    """None when the command is not the bundled wmbusmeters, or its folder matches the
    release's SHA256SUMS; else the first file that does not (`SHA256SUMS` when the list is
    missing, unreadable or does not name wmbusmeters). Blocking: call from an executor."""
    path = _bundled_path(command, bundle_dir)
    if path is None:
        return None
    directory = path.parent
    try:
        listed = _read_sums(directory / SUMS)
    except OSError:
        return SUMS
    if listed is None or "wmbusmeters" not in listed:
        return SUMS
    with _CHECK_LOCK:
        look = _looks(directory, listed)
        cached = _CHECKED.get(directory)
        if cached is not None and cached[0] == look:
            return cached[1]
        problem = next(
            (name for name, digest in listed.items() if _digest(directory / name) != digest),
            None,
        )
        _CHECKED[directory] = (look, problem)
        return problem


def _read_sums(path: Path) -> dict[str, str] | None:
    """name -> sha256 of each listed file; None if a line is not one of sha256sum's."""
    listed: dict[str, str] = {}
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        match = _SUM_LINE.fullmatch(line.strip())
        if match is None or ".." in match[2].split("/"):
            return None
        listed[match[2]] = match[1]
    return listed


def _looks(directory: Path, listed: dict[str, str]) -> tuple[object, ...]:
    looks: list[object] = [tuple(sorted(listed.items()))]
    for name in sorted(listed):
        try:
            info = (directory / name).stat()
        except OSError:
            looks.append(None)
        else:
            # (ctime too: an in-place rewrite that keeps the size and the mtime still moves it)
            looks.append((info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(looks)


def _digest(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def prepare_bundled(command: str, bundle_dir: Path | None = None) -> None:
    """Before a start: a bundled command is made executable again and checked against its
    checksums (BundledAlteredError); any other command is left alone. Blocking."""
    if _bundled_path(command, bundle_dir) is None:
        return
    restore_bundled(command, bundle_dir)  # (a failure to chmod is not a reason to skip the check)
    if problem := bundled_problem(command, bundle_dir):
        raise BundledAlteredError(problem)


def _make_executable(path: Path) -> None:
    mode = path.stat().st_mode
    wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode != wanted:
        path.chmod(wanted)


def bundled_binary(bundle_dir: Path | None = None, machine: str | None = None) -> str | None:
    """The bundled binary for this machine, executable; None if there is none for it, or it
    does not match the release's checksums (never offered then).

    HACS unpacks the release with Python's zipfile, which drops the exec bit: it is set again
    here (blocking: call from an executor).
    """
    machine = machine or platform.machine()
    directory = (bundle_dir or BUNDLE_DIR) / _MACHINES.get(machine, machine)
    path = directory / "wmbusmeters"
    if not restore_bundled(str(path), bundle_dir) or bundled_problem(str(path), bundle_dir):
        return None
    return str(path) if os.access(path, os.X_OK) else None


def restore_bundled(command: str, bundle_dir: Path | None = None) -> bool:
    """Make a bundled command executable again, with its helpers; whether it is bundled.

    Every HACS update unpacks the release over the integration's folder and drops the exec
    bits: a receiver saved with the bundled binary must get them back before it starts, not
    only when a form next runs (blocking: call from an executor).
    """
    path = _bundled_path(command, bundle_dir)
    if path is None:
        return False
    try:
        if not path.is_file():
            return False
        _make_executable(path)
        _restore_helpers(path.parent)
    except OSError:
        # Not ours to change (read-only, another owner): the version check that follows
        # says what is wrong with it.
        return False
    return True


def _restore_helpers(directory: Path) -> None:
    for pattern in _HELPERS:
        for helper in directory.glob(pattern):
            if helper.is_file() and not helper.is_symlink():
                _make_executable(helper)


def release_notes(version: str, bundle_dir: Path | None = None) -> str | None:
    """The changelog's section of the release that ships wmbusmeters `version` (blocking).

    The release zip carries CHANGELOG.md beside manifest.json (scripts/release); a checkout has
    it at the repository's root.
    """
    integration = (bundle_dir or BUNDLE_DIR).parent
    for path in (integration / "CHANGELOG.md", integration.parent.parent / "CHANGELOG.md"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            break
    else:
        return None
    sections = ["## " + part for part in text.split("\n## ")[1:]]
    return next((s.strip() for s in sections if f"wmbusmeters {version}" in s), None)


def default_command(bundle_dir: Path | None = None) -> str:
    """What the receiver form suggests: wmbusmeters on PATH, else the bundled one, else ""
    (blocking)."""
    return shutil.which("wmbusmeters") or bundled_binary(bundle_dir) or ""

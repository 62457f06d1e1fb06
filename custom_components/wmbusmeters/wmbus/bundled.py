"""The wmbusmeters a release may ship beside the integration (`bin/<machine>/wmbusmeters`), for
installations where nothing can be installed next to Home Assistant (OS, Container).

Which command runs, in this order: the one the user set; `wmbusmeters` on PATH; the bundled
binary for this machine. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path
import platform
import shutil
import stat

#: Where a release zip puts the binaries (scripts/release, issue 13).
BUNDLE_DIR = Path(__file__).resolve().parent.parent / "bin"
#: Other names of the same machines (Debian's and Docker's).
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
#: What must be executable beside it: wmbusmeters starts `rtl_sdr | rtl_wmbus` for an RTL-SDR
#: stick and looks for both in its own directory first (static, as it is: scripts/build-static).
_HELPERS = ("rtl_sdr", "rtl_wmbus")


def _make_executable(path: Path) -> None:
    mode = path.stat().st_mode
    wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode != wanted:
        path.chmod(wanted)


def bundled_binary(bundle_dir: Path | None = None, machine: str | None = None) -> str | None:
    """The bundled binary for this machine, executable; None if there is none for it.

    HACS unpacks the release with Python's zipfile, which drops the exec bit: it is set again
    here (blocking: call from an executor).
    """
    machine = machine or platform.machine()
    directory = (bundle_dir or BUNDLE_DIR) / _MACHINES.get(machine, machine)
    path = directory / "wmbusmeters"
    if not restore_bundled(str(path), bundle_dir):
        return None
    return str(path) if os.access(path, os.X_OK) else None


def restore_bundled(command: str, bundle_dir: Path | None = None) -> bool:
    """Make a bundled command executable again, with its helpers; whether it is bundled.

    Every HACS update unpacks the release over the integration's folder and drops the exec
    bits: a receiver saved with the bundled binary must get them back before it starts, not
    only when a form next runs (blocking: call from an executor).
    """
    base = (bundle_dir or BUNDLE_DIR).resolve()
    path = Path(command)
    if not path.is_absolute() or path.name != "wmbusmeters" or path.is_symlink():
        return False
    try:
        path.resolve().relative_to(base)
        if not path.is_file():
            return False
        _make_executable(path)
        _restore_helpers(path.parent)
    except (OSError, ValueError):
        # Not ours, or not ours to change (read-only, another owner): the version check that
        # follows says what is wrong with it.
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

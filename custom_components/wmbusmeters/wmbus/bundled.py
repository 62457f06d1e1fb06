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


def bundled_binary(bundle_dir: Path | None = None, machine: str | None = None) -> str | None:
    """The bundled binary for this machine, executable; None if there is none for it.

    HACS unpacks the release with Python's zipfile, which drops the exec bit: it is set again
    here (blocking: call from an executor).
    """
    machine = machine or platform.machine()
    path = (bundle_dir or BUNDLE_DIR) / _MACHINES.get(machine, machine) / "wmbusmeters"
    if not path.is_file():
        return None
    mode = path.stat().st_mode
    wanted = mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode != wanted:
        path.chmod(wanted)
    return str(path) if os.access(path, os.X_OK) else None


def default_command(bundle_dir: Path | None = None) -> str:
    """What the receiver form suggests: wmbusmeters on PATH, else the bundled one, else ""
    (blocking)."""
    return shutil.which("wmbusmeters") or bundled_binary(bundle_dir) or ""

"""The checks HACS' action runs on a repository submitted to its default list, where they can
run from the files alone (hacs/integration's custom_components/hacs/validate/: hacsjson,
integration_manifest, information, brands; images only for plugins and themes). The others
ask GitHub (archived, description, issues, license, topics; the default list's owner,
editable and releases jobs) and run in the `hacs` job of .github/workflows/ci.yml."""

from __future__ import annotations

import json
from pathlib import Path
import re
import struct
import zipfile

from awesomeversion import AwesomeVersion
import pytest

from .conftest import release_zip

REPO = Path(__file__).parent.parent
INTEGRATION = REPO / "custom_components" / "wmbusmeters"
#: hacs.json's schema (HACS rejects any other key); `name` is required.
HACS_KEYS = {
    "name": str,
    "content_in_root": bool,
    "hide_default_branch": bool,
    "render_readme": bool,
    "zip_release": bool,
    "filename": str,
    "hacs": str,
    "homeassistant": str,
    "persistent_directory": str,
    "country": (str, list),
}
_URL = re.compile(r"https://[^\s/]+/\S+")


def test_hacsjson() -> None:
    hacs = json.loads((REPO / "hacs.json").read_text())
    assert isinstance(hacs.get("name"), str)
    assert hacs["name"]
    for key, value in hacs.items():
        assert key in HACS_KEYS, f"hacs.json: HACS does not take {key!r}"
        assert isinstance(value, HACS_KEYS[key]), key
    if hacs.get("zip_release"):
        assert hacs.get("filename", "").endswith(".zip")
    AwesomeVersion(hacs["homeassistant"])  # parsable by HACS


def test_integration_manifest() -> None:
    """What HACS requires of a custom integration's manifest, and hassfest's key order
    (domain, name, then alphabetical)."""
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    assert isinstance(manifest["domain"], str)
    assert manifest["domain"] == INTEGRATION.name
    assert isinstance(manifest["name"], str)
    assert isinstance(manifest["codeowners"], list)
    assert manifest["codeowners"]
    assert all(c.startswith("@") for c in manifest["codeowners"])
    for key in ("documentation", "issue_tracker"):
        assert _URL.fullmatch(manifest[key]), key
    assert AwesomeVersion(manifest["version"]).valid
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_information() -> None:
    """A README HACS renders (render_readme): its first lines say what it is and link the
    install, and it shows images."""
    readme = (REPO / "README.md").read_text()
    assert readme.startswith("# wmbusmeters for Home Assistant\n")
    assert "HACS" in readme.split("\n## ", 1)[0]
    assert re.search(r"!\[[^\]]*\]\(docs/images/[^)]+\.png\)", readme)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_brands_local() -> None:
    """The brands check passes on the integration's own brand/icon.png, which Home Assistant
    serves from 2026.3 on (older versions fall back to the brands CDN): square, 256 px, and
    512 px at @2x, as home-assistant/brands asks."""
    assert png_size((INTEGRATION / "brand" / "icon.png").read_bytes()) == (256, 256)
    assert png_size((INTEGRATION / "brand" / "icon@2x.png").read_bytes()) == (512, 512)


@pytest.mark.usefixtures("installed")
def test_brands_in_the_release() -> None:
    """What HACS installs carries the brand folder too."""
    with zipfile.ZipFile(release_zip()) as release:
        names = set(release.namelist())
    assert {"brand/icon.png", "brand/icon@2x.png", "manifest.json"} <= names

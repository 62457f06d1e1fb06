"""The wmbusmeters a release may ship beside the integration, found for this machine only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from custom_components.wmbusmeters.wmbus import bundled


def test_no_bundle_for_this_machine(tmp_path: Path) -> None:
    """A release without a binary for this machine offers none (and PATH decides)."""
    assert bundled.bundled_binary(tmp_path, machine="riscv64") is None


def bundle(tmp_path: Path, files: dict[str, bytes], sums: str | None = None) -> Path:
    """A release's bin/x86_64/ with these files and their SHA256SUMS (or the given text)."""
    folder = tmp_path / "bin" / "x86_64"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if sums is None:
        sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in files.items())
    (folder / "SHA256SUMS").write_text(sums)
    return folder / "wmbusmeters"


FILES = {"wmbusmeters": b"\x7fELF wmbusmeters", "rtl_sdr": b"\x7fELF rtl_sdr"}


def test_checksums(tmp_path: Path) -> None:
    """The folder as listed: no problem; an altered helper is named; a missing or unreadable
    list (or one without wmbusmeters) is SHA256SUMS; a command outside the bundle is not
    checked at all."""
    binary = bundle(tmp_path, FILES)
    assert bundled.bundled_problem(str(binary), tmp_path / "bin") is None
    (binary.parent / "rtl_sdr").write_bytes(b"\x7fELF rtl_sdr, altered")
    assert bundled.bundled_problem(str(binary), tmp_path / "bin") == "rtl_sdr"
    with pytest.raises(bundled.BundledAlteredError):
        bundled.prepare_bundled(str(binary), tmp_path / "bin")
    (binary.parent / "SHA256SUMS").unlink()
    assert bundled.bundled_problem(str(binary), tmp_path / "bin") == "SHA256SUMS"
    other = bundle(tmp_path / "other", FILES, sums="not a checksum line\n")
    assert bundled.bundled_problem(str(other), tmp_path / "other" / "bin") == "SHA256SUMS"
    assert bundled.bundled_problem("/usr/bin/wmbusmeters", tmp_path / "bin") is None
    bundled.prepare_bundled("/usr/bin/wmbusmeters", tmp_path / "bin")  # not ours: no check


def test_checksums_are_read_once_per_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = bundle(tmp_path, FILES)
    hashed: list[Path] = []
    digest = bundled._digest

    def counting(path: Path) -> str | None:
        hashed.append(path)
        return digest(path)

    monkeypatch.setattr(bundled, "_digest", counting)
    for _ in range(3):
        assert bundled.bundled_problem(str(binary), tmp_path / "bin") is None
    assert len(hashed) == len(FILES)  # once, then from what the files look like
    (binary.parent / "rtl_sdr").write_bytes(b"\x7fELF rtl_sdr, other")  # same folder, changed
    assert bundled.bundled_problem(str(binary), tmp_path / "bin") == "rtl_sdr"

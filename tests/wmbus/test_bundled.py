"""The wmbusmeters a release may ship beside the integration, found for this machine only."""

from __future__ import annotations

from pathlib import Path

from custom_components.wmbusmeters.wmbus import bundled


def test_no_bundle_for_this_machine(tmp_path: Path) -> None:
    """A release without a binary for this machine offers none (and PATH decides)."""
    assert bundled.bundled_binary(tmp_path, machine="riscv64") is None

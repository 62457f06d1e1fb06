"""Shared test set-up: the real wmbusmeters, the repo's integration, recorded fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import shutil

import pytest

# pytest-homeassistant-custom-component ships a `custom_components` package of its own: import
# ours first, or HA answers "Integration not found".
import custom_components.wmbusmeters  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "wmbusmeters-2.0.0"
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load integrations from custom_components/."""


@pytest.fixture(scope="session")
def wmbusmeters() -> str:
    """The real wmbusmeters binary (scripts/setup installs Debian's 2.0.0)."""
    path = shutil.which("wmbusmeters")
    assert path, "wmbusmeters is not on PATH: run the tests through scripts/test"
    return path


def fixture_text(name: str) -> str:
    """A recorded file of the real wmbusmeters 2.0.0."""
    return (FIXTURES / name).read_text()


@pytest.fixture
def simulation(tmp_path: Path) -> Callable[..., Path]:
    """Write a recorded case's input as a simulation file (2.0.0 needs the `simulation` name)."""

    def make(case: str, name: str = "simulation_test.txt") -> Path:
        path = tmp_path / name
        path.write_text(fixture_text(f"{case}.input.txt"))
        return path

    return make


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    """A simulation file with one encrypted multical21 telegram (76348799, key in the file)."""
    path = tmp_path / "simulation_encrypted.txt"
    shutil.copy(DATA / "simulation_encrypted.txt", path)
    return path

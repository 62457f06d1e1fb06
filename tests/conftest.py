"""Shared test set-up: the real wmbusmeters, the repo's integration, recorded fixtures."""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
import shutil
from unittest.mock import PropertyMock, patch

from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
import pytest
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

# pytest-homeassistant-custom-component ships a `custom_components` package of its own: import
# ours first, or HA answers "Integration not found".
import custom_components.wmbusmeters  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "wmbusmeters-2.0.0"
#: The wmbusmeters versions the project supports, and their commands in the dev environment
#: (scripts/setup: Debian's 2.0.0, and 3.0.0 built from the upstream release).
BINARIES = {"2.0.0": "wmbusmeters", "3.0.0": "wmbusmeters-3.0.0"}
DATA = Path(__file__).parent / "data"
HA_SERIES = f"{MAJOR_VERSION}.{MINOR_VERSION}"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load integrations from custom_components/."""


class VersionedSnapshotExtension(HomeAssistantSnapshotExtension):
    """HA's serializer, one folder per supported HA version: their entries and states differ."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        """tests/snapshots-<HA series>: not inside tests/snapshots, where the plugin of the
        other version would find the files and delete them as unused."""
        return str(Path(test_location.filepath).parent / f"snapshots-{HA_SERIES}")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """The same serializer on both versions (the plugins' own fixtures differ in which wins)."""
    return snapshot.use_extension(VersionedSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Every entity enabled, also those off by default (snapshot_platform wants them all)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture(scope="session", params=list(BINARIES))
def wmbus_version(request: pytest.FixtureRequest) -> str:
    """Each supported wmbusmeters version in turn: every real-binary test runs on both."""
    return str(request.param)


@pytest.fixture(scope="session")
def wmbusmeters(wmbus_version: str) -> str:
    """The real wmbusmeters binary of that version."""
    path = shutil.which(BINARIES[wmbus_version])
    assert path, f"{BINARIES[wmbus_version]} is not on PATH: run the tests through scripts/test"
    return path


@pytest.fixture(scope="session")
def kamstrup(wmbus_version: str) -> str:
    """The Kamstrup water meter driver (multical21) as the version names it: 3.0.0 merged
    multical21 and flowiq2200 into kamwater."""
    return "multical21" if wmbus_version == "2.0.0" else "kamwater"


def fixture_text(name: str, version: str = "2.0.0") -> str:
    """A recorded file of the real wmbusmeters (inputs and command lines are the same for
    every version: scripts/record-fixtures replays the 2.0.0 cases)."""
    return (FIXTURES.parent / f"wmbusmeters-{version}" / name).read_text()


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

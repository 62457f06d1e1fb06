"""Shared test set-up: the real wmbusmeters, the repo's integration, recorded fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from http import HTTPStatus
import logging
import os
from pathlib import Path
import shutil
import sys
from typing import Any
from unittest.mock import PropertyMock, patch
import zipfile

from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

# pytest-homeassistant-custom-component ships a `custom_components` package of its own: import
# ours first, or HA answers "Integration not found".
import custom_components.wmbusmeters  # noqa: F401
from custom_components.wmbusmeters.alarms import ALARMS_TASK
from custom_components.wmbusmeters.availability import signal_receiver
from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import RunnerState

FIXTURES = Path(__file__).parent / "fixtures" / "wmbusmeters-2.0.0"
#: The wmbusmeters versions the project supports, and their commands in the dev environment
#: (scripts/setup: Debian's 2.0.0, and 3.0.0 built from the upstream release).
BINARIES = {"2.0.0": "wmbusmeters", "3.0.0": "wmbusmeters-3.0.0"}
DATA = Path(__file__).parent / "data"
#: A stand-in for wmbusmeters, for the faults the real one cannot be made to show.
FAKE = Path(__file__).parent / "fake_wmbusmeters.py"
HA_SERIES = f"{MAJOR_VERSION}.{MINOR_VERSION}"


@pytest.fixture(autouse=True)
def own_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's receivers write their wmbusmeters configuration under its own tmp_path:
    HA's test config dir is shared by the parallel workers, and tests with a fixed entry id
    (the snapshots) otherwise rewrote each other's files mid-run."""
    folder = tmp_path / "wmbusmeters-config"
    monkeypatch.setattr("custom_components.wmbusmeters.supervisor.CONFIG_SUBDIR", str(folder))
    monkeypatch.setattr("custom_components.wmbusmeters.CONFIG_SUBDIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load integrations from custom_components/."""


#: How Home Assistant words a deprecated use it detects (helpers/frame.py, deprecation.py).
DEPRECATION_WORDS = ("will stop working", "deprecated", "is a deprecated")


def deprecations(records: list[logging.LogRecord]) -> list[str]:
    """The deprecation warnings Home Assistant logged about this integration."""
    return [
        message
        for record in records
        if DOMAIN in (message := record.getMessage())
        and any(word in message.lower() for word in DEPRECATION_WORDS)
    ]


@pytest.fixture(autouse=True)
def no_deprecated_api(caplog: pytest.LogCaptureFixture) -> Generator[None]:
    """Every test fails if Home Assistant logs that this integration uses a deprecated API
    (on both supported HA versions): such a use stops working in a later release."""
    yield
    # caplog.records is the current phase's (teardown): read the test's own phases.
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert deprecations(records) == []


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
def quiet(tmp_path: Path) -> Path:
    """A radio that hears nothing: an empty simulation file (wmbusmeters plays it and ends)."""
    path = tmp_path / "simulation_quiet.txt"
    path.write_text("")
    return path


@pytest.fixture
def radio(tmp_path: Path) -> str:
    """An existing setup's radio (tests/test_addon_*.py): a simulation file with one
    encrypted multical21 telegram (76348799, key in the file)."""
    path = tmp_path / "simulation_addon.txt"
    shutil.copy(DATA / "simulation_encrypted.txt", path)
    return str(path)


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    """A simulation file with one encrypted multical21 telegram (76348799, key in the file)."""
    path = tmp_path / "simulation_encrypted.txt"
    shutil.copy(DATA / "simulation_encrypted.txt", path)
    return path


type RunUntilPlayed = Callable[[MockConfigEntry], Awaitable[None]]


@pytest.fixture
def run_until_played(hass: HomeAssistant) -> RunUntilPlayed:
    """`await run_until_played(entry)`: wait until wmbusmeters has played the whole
    simulation file of the receiver (it then exits 0)."""

    async def wait(entry: MockConfigEntry) -> None:
        runner = entry.runtime_data.supervisor.runner
        played = asyncio.Event()

        @callback
        def check() -> None:
            if runner.status.state is RunnerState.BACKOFF:
                played.set()

        remove = async_dispatcher_connect(hass, signal_receiver(entry.entry_id), check)
        check()
        try:
            # No asyncio.timeout: a test may freeze the clock. pytest-timeout guards the test.
            await played.wait()
        finally:
            remove()
        await hass.async_block_till_done()
        # A meter on `auto` learns its driver's alarms from its telegrams, in the background
        # (alarms.MeterAlarms): their sensors are there once the binary has answered.
        asking = [t for t in asyncio.all_tasks() if t.get_name().startswith(ALARMS_TASK)]
        await asyncio.gather(*asking)
        await hass.async_block_till_done()

    return wait


def release_zip() -> str:
    """The HACS release zip scripts/test built (WMBUS_RELEASE_ZIP); skipped outside it."""
    archive = os.environ.get("WMBUS_RELEASE_ZIP")
    if not archive:
        if os.environ.get("CI"):
            pytest.fail("scripts/test builds the release zip: WMBUS_RELEASE_ZIP is not set")
        pytest.skip("run through scripts/test, which builds the release zip")
    return archive


def hacs_unpack(target: Path) -> None:
    """Install or update as HACS does: the folder is replaced by the zip's contents, unpacked
    with Python's zipfile (which drops every exec bit)."""
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(release_zip()) as release:
        release.extractall(target)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """The release unpacked as HACS does, into custom_components/wmbusmeters/."""
    target = tmp_path / "custom_components" / DOMAIN
    hacs_unpack(target)
    return target


@pytest.fixture
def fake_command(tmp_path: Path) -> str:
    """The fake wmbusmeters as an executable, run by this test's Python (tests using it say
    which fault it plays, through FAKE_WMBUSMETERS_MODE)."""
    path = tmp_path / "wmbusmeters"
    path.write_text(f"#!{sys.executable}\n" + FAKE.read_text())
    path.chmod(0o755)
    return str(path)


class RepairFix:
    """The Repairs page's fix flow, through the same HTTP API the frontend calls."""

    def __init__(self, hass_client: ClientSessionGenerator) -> None:
        self._hass_client = hass_client
        self._client: Any = None

    async def client(self) -> Any:
        """The HTTP client, made at first use (HA's HTTP server starts with it, and a
        websocket client wanted by the test must come first)."""
        if self._client is None:
            self._client = await self._hass_client()
        return self._client

    async def start(self, issue_id: str) -> dict[str, Any]:
        """POST /api/repairs/issues/fix."""
        resp = await (await self.client()).post(
            "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
        )
        assert resp.status == HTTPStatus.OK
        return await resp.json()  # type: ignore[no-any-return]

    async def submit(self, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """POST /api/repairs/issues/fix/<flow_id>."""
        resp = await (await self.client()).post(f"/api/repairs/issues/fix/{flow_id}", json=data)
        assert resp.status == HTTPStatus.OK
        return await resp.json()  # type: ignore[no-any-return]


@pytest.fixture
async def repair_fix(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> RepairFix:
    """The repairs component set up, and a client for its fix flows."""
    assert await async_setup_component(hass, "repairs", {})
    return RepairFix(hass_client)

"""Nothing a user types reaches a shell, another meter's line, or an extra config line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from homeassistant.core import HomeAssistant
import pytest

from custom_components.wmbusmeters.wmbus import (
    InvalidDeviceError,
    InvalidDriverError,
    InvalidKeyError,
    InvalidMeterIdError,
    MeterConfig,
    ReceiverConfig,
)

from .common import meter, receiver_entry, setup_receiver
from .test_sensor import run_until_played


async def test_hostile_meter_name(
    hass: HomeAssistant, wmbusmeters: str, simulation: Callable[..., Path], tmp_path: Path
) -> None:
    """A name with quotes, a newline and a shell= line: valid telegrams, nothing executed."""
    pwned = tmp_path / "pwned"
    name = f'Køkken "varmt"\nshell=touch {pwned}'
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter(name, "multical21", "76348799")]
    )
    await setup_receiver(hass, entry)
    await run_until_played(hass, entry)

    states = [s for s in hass.states.async_all("sensor") if s.entity_id.endswith("_total")]
    assert [s.state for s in states] == ["6.408"]
    assert not pwned.exists()
    config_dir = entry.runtime_data.runner.config_dir
    rendered = "".join(p.read_text() for p in config_dir.rglob("*") if p.is_file())
    assert "Køkken" not in rendered
    assert "shell" not in rendered
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: MeterConfig("7634879\n"), InvalidMeterIdError),
        (lambda: MeterConfig("76348799", "multical21\nshell=x"), InvalidDriverError),
        (lambda: MeterConfig("76348799", "multical21", "00" * 16 + "\nshell=x"), InvalidKeyError),
        (lambda: ReceiverConfig("/dev/ttyUSB0\nshell=touch /tmp/x"), InvalidDeviceError),
        (lambda: ReceiverConfig("/dev/ttyUSB0:im871a"), InvalidDeviceError),
        (lambda: ReceiverConfig("auto; rm -rf /"), InvalidDeviceError),
    ],
)
def test_values_that_could_add_a_line_are_refused(
    make: Callable[[], object], error: type[Exception]
) -> None:
    """Every value written after `key=` is checked first; the error never echoes a key."""
    with pytest.raises(error) as err:
        make()
    assert "00000000" not in str(err.value)

"""Nothing a user types reaches a shell, another meter's line, or an extra config line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from homeassistant.core import HomeAssistant

from .common import meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed


async def test_hostile_meter_name(
    hass: HomeAssistant,
    wmbusmeters: str,
    simulation: Callable[..., Path],
    tmp_path: Path,
    run_until_played: RunUntilPlayed,
) -> None:
    """A name with quotes, a newline and a shell= line: valid telegrams, nothing executed."""
    pwned = tmp_path / "pwned"
    name = f'Køkken "varmt"\nshell=touch {pwned}'
    entry = receiver_entry(
        wmbusmeters, simulation("c1_water_multical21"), [meter(name, "multical21", "76348799")]
    )
    await setup_receiver(hass, entry)
    await run_until_played(entry)

    states = [s for s in hass.states.async_all("sensor") if s.entity_id.endswith("_total")]
    assert [s.state for s in states] == ["6.408"]
    assert not pwned.exists()
    config_dir = entry.runtime_data.supervisor.runner.config_dir
    rendered = "".join(p.read_text() for p in config_dir.rglob("*") if p.is_file())
    assert "Køkken" not in rendered
    assert "shell" not in rendered
    await hass.config_entries.async_unload(entry.entry_id)

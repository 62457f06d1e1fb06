"""Taking over an existing wmbusmeters setup in the add-receiver flow (import_flow.py,
addon_import.py): a tree written as the add-on writes it, read from a directory Home Assistant
may read; the summary says what is taken and what not; the receiver and its meters are
created, and the imported key decodes the meter on the real wmbusmeters (both versions).
Nothing is created from a broken tree or an unreadable place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.wmbusmeters.const import DOMAIN

from .common import meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed

KEY = "28F64A24988064A079AA2C807D6102AE"  # tests/data/simulation_encrypted.txt
SHELL = 'shell=/wmbusmeters/mosquitto_pub.sh "wmbusmeters/$METER_NAME" "$METER_JSON"'


def addon_tree(root: Path, device: str, meters: dict[str, str]) -> Path:
    """`<data_path>/etc/...` as the add-on's run script writes it."""
    etc = root / "etc"
    (etc / "wmbusmeters.d").mkdir(parents=True)
    (etc / "wmbusmeters.conf").write_text(
        f"loglevel=normal\ndevice={device}\ndonotprobe=/dev/ttyAMA0\nformat=json\n{SHELL}\n"
    )
    for name, text in meters.items():
        (etc / "wmbusmeters.d" / name).write_text(text)
    return root


def md(text: str) -> str:
    """As the summary's markdown shows a file's text: markup characters escaped."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]()<>#+!|~" else c for c in text)


async def import_flow(hass: HomeAssistant, path: Path | str, command: str) -> dict[str, Any]:
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert "import_setup" in menu["menu_options"]
    form = await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "import_setup"}
    )
    assert form["step_id"] == "import_setup"
    return await hass.config_entries.flow.async_configure(  # type: ignore[return-value]
        form["flow_id"], {"setup_path": str(path), "command": command}
    )


async def read_addon(
    hass: HomeAssistant, tmp_path: Path, command: str, device: str, meters: dict[str, str]
) -> dict[str, Any]:
    """The add-on's tree in a directory Home Assistant may read, read by the import step:
    its summary."""
    root = addon_tree(tmp_path / "addon", device, meters)
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    return await import_flow(hass, root, command)


async def test_the_addons_setup_becomes_a_receiver_with_its_meters(
    hass: HomeAssistant,
    wmbusmeters: str,
    tmp_path: Path,
    radio: str,
    run_until_played: RunUntilPlayed,
    own_config_dir: Path,
) -> None:
    """The summary lists the radio, each meter (with key, never the key itself) and what
    is not taken (the MQTT publisher: a program); confirmed, the receiver holds the meters
    and the imported key decodes the encrypted meter."""
    summary = await read_addon(
        hass,
        tmp_path,
        wmbusmeters,
        radio,
        {
            "meter-0001": f"name=MainWater\nid=76348799\nkey={KEY}\ndriver=auto\n",
            "meter-0002": "name=Neighbour\nid=1234*\ndriver=auto\n",
            "meter-0003": "name=Odd\nid=22222222\ndriver=nosuchdriver\n",
        },
    )
    assert summary["type"] is FlowResultType.FORM
    assert summary["step_id"] == "import_summary"
    text = summary["description_placeholders"]
    assert text["receiver"] == md(radio)
    assert text["meters"] == "- MainWater · auto · 76348799 · with key"
    assert KEY not in str(text)
    skipped = text["skipped"]
    assert "wmbusmeters.conf:shell: runs a program: never taken" in skipped
    assert "wmbusmeters.d/meter-0002: its id is not one meter's 8 hex digits" in skipped
    assert "wmbusmeters.d/meter-0003: its driver is not one the chosen wmbusmeters lists" in skipped

    result = await hass.config_entries.flow.async_configure(summary["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = hass.config_entries.async_get_entry(result["result"].entry_id)
    assert entry is not None
    assert entry.data["device"] == radio
    assert [(s.unique_id, s.title, dict(s.data)) for s in entry.subentries.values()] == [
        (
            "76348799",
            "MainWater",
            {"name": "MainWater", "driver": "auto", "meter_id": "76348799", "key": KEY},
        )
    ]
    await hass.async_block_till_done()
    await run_until_played(entry)
    state = hass.states.get("sensor.mainwater_total")
    assert state is not None
    assert state.state == "6.408"
    # No line of the add-on's reached wmbusmeters' configuration (its shell least of all):
    # what the integration wrote for it holds the one meter, and no program to run.
    config = entry.runtime_data.supervisor.runner.config
    assert [m.meter_id for m in config.meters] == ["76348799"]
    written = "\n".join(p.read_text() for p in own_config_dir.rglob("*") if p.is_file())
    assert "76348799" in written
    for never in ("shell", "mosquitto", "1234*", "nosuchdriver", "donotprobe"):
        assert never not in written, never
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_meter_another_receiver_has_is_not_taken(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, radio: str, quiet: Path
) -> None:
    other = receiver_entry(wmbusmeters, quiet, [meter("Tap", "multical21", "76348799")])
    await setup_receiver(hass, other)
    summary = await read_addon(
        hass, tmp_path, wmbusmeters, radio, {"meter-0001": "name=Tap\nid=76348799\ndriver=auto\n"}
    )
    assert summary["description_placeholders"]["meters"] == "-"
    assert (
        "another receiver already has this meter" in summary["description_placeholders"]["skipped"]
    )
    await hass.config_entries.async_unload(other.entry_id)


@pytest.mark.parametrize(
    ("conf", "error", "file"),
    [
        (b"device=auto:t1\nloglevel=norm", "setup_half_line", "wmbusmeters.conf"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "setup_not_text", "wmbusmeters.conf"),
    ],
)
async def test_a_broken_setup_creates_nothing(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, conf: bytes, error: str, file: str
) -> None:
    root = addon_tree(tmp_path / "addon", "auto:t1", {})
    (root / "etc" / "wmbusmeters.conf").write_bytes(conf)
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    result = await import_flow(hass, root, wmbusmeters)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"setup_path": error}
    assert result["description_placeholders"]["file"] == file
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_only_directories_home_assistant_may_read(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path
) -> None:
    """A setup outside the configuration directory and its allowed directories is not read
    (nor a path with `..` out of an allowed one); /etc is: here Debian's package's own
    /etc/wmbusmeters.conf (scripts/setup installs it), a source install's radio and no meter."""
    root = addon_tree(tmp_path / "addon", "auto:t1", {})
    for path in (root, f"{tmp_path}/allowed/../addon", "relative/path"):
        if path != root:
            hass.config.allowlist_external_dirs.add(f"{tmp_path}/allowed")
        result = await import_flow(hass, path, wmbusmeters)
        assert result["errors"] == {"setup_path": "path_not_allowed"}, path
    result = await import_flow(hass, "/etc", wmbusmeters)
    assert result["step_id"] == "import_summary"
    assert result["description_placeholders"]["receiver"] == "auto t1"
    assert result["description_placeholders"]["meters"] == "-"
    assert (
        "wmbusmeters.conf:logfile: set by this integration"
        in result["description_placeholders"]["skipped"]
    )
    result = await import_flow(hass, str(tmp_path / "nothing"), wmbusmeters)
    assert result["errors"] == {"setup_path": "path_not_allowed"}
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    result = await import_flow(hass, str(tmp_path), wmbusmeters)
    assert result["errors"] == {"setup_path": "setup_no_setup"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_a_radio_that_is_not_there_creates_nothing(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path
) -> None:
    """The add-on's dongle is not on this machine (or another program holds it): confirming
    says so, as the radio form does, and nothing is created."""
    summary = await read_addon(
        hass,
        tmp_path,
        wmbusmeters,
        "/dev/serial/by-id/usb-not-here:im871a:c1,t1",
        {"meter-0001": "name=Tap\nid=76348799\ndriver=auto\n"},
    )
    assert summary["description_placeholders"]["receiver"] == (
        "/dev/serial/by-id/usb-not-here im871a c1,t1"
    )
    result = await hass.config_entries.flow.async_configure(summary["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "device_not_found"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_the_default_directory_is_the_addons_in_the_configuration(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, radio: str
) -> None:
    """The form proposes `<config>/wmbusmeters` when the add-on's files are there, and reads
    it as proposed (the configuration directory needs no allowlist)."""
    config = tmp_path / "config"
    addon_tree(config / "wmbusmeters", radio, {"meter-0001": "name=Tap\nid=76348799\n"})
    hass.config.config_dir = str(config)
    menu = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    form = await hass.config_entries.flow.async_configure(
        menu["flow_id"], {"next_step_id": "import_setup"}
    )
    suggested = {str(key): key.description["suggested_value"] for key in form["data_schema"].schema}
    assert suggested["setup_path"] == str(config / "wmbusmeters")
    summary = await hass.config_entries.flow.async_configure(
        form["flow_id"], {"setup_path": suggested["setup_path"], "command": wmbusmeters}
    )
    assert summary["step_id"] == "import_summary"
    assert summary["description_placeholders"]["meters"] == "- Tap · auto · 76348799"


async def test_links_out_of_the_setup_are_not_followed(
    hass: HomeAssistant, wmbusmeters: str, tmp_path: Path, radio: str
) -> None:
    """A meter file that links elsewhere (a secret in the configuration directory) is not
    read, and what is read shows no value of a line that is not wmbusmeters' own."""
    secret = tmp_path / "secrets.yaml"
    secret.write_text("db_url=postgresql://u:pw@h/db\n")
    root = addon_tree(
        tmp_path / "addon",
        radio,
        {"meter-0001": "name=Tap\nid=76348799\nDB-URL: postgresql://u:pw@h/db=x\n"},
    )
    (root / "etc" / "wmbusmeters.d" / "meter-0002").symlink_to(secret)
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    summary = await import_flow(hass, root, wmbusmeters)
    text = str(summary["description_placeholders"])
    assert "pw@h" not in text
    assert "meter-0002" not in text
    assert summary["description_placeholders"]["meters"] == "- Tap · auto · 76348799"

"""A utility's Kamstrup key file instead of a typed key (issue 31): uploaded through Home
Assistant's own file upload (the frontend's POST /api/file_upload), in the meter form and in
the wrong-key repair's fix flow, with the real wmbusmeters decoding the meter with the key
that came from the file. The KEM files are built by the documented scheme
(tests/wmbus/test_kem.py)."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
import tempfile
from typing import Any

import aiohttp
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.wmbusmeters.const import DOMAIN

from .common import meter, receiver_entry, setup_receiver, until
from .conftest import RepairFix, RunUntilPlayed
from .test_addon_import import read_addon
from .wmbus.test_kem import KEY_A, KEY_B, METERS_IN_ORDER, PASSWORD, kem, zipped

ISSUE_ID = "decryption_failed_76348799"


@pytest.fixture(autouse=True)
def own_upload_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HA's file upload keeps its files in <temp dir>/home-assistant-file_upload, one path
    for the machine, removed when it starts there and when HA stops: the parallel test runs
    get a temp dir each."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


async def upload(hass_client: ClientSessionGenerator, name: str, data: bytes) -> str:
    """The file as the frontend's file selector sends it; its upload id (file_upload is set
    up with the integration, a dependency of it)."""
    client = await hass_client()
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    resp = await client.post("/api/file_upload", data=form)
    assert resp.status == HTTPStatus.OK, await resp.text()
    return str((await resp.json())["file_id"])


def file_section(file_id: str, password: str = PASSWORD) -> dict[str, Any]:
    return {"key_file_section": {"key_file": file_id, "key_file_password": password}}


async def add_meter(hass: HomeAssistant, entry_id: str, data: dict[str, Any]) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry_id, "meter"), context={"source": SOURCE_USER}
    )
    return await hass.config_entries.subentries.async_configure(  # type: ignore[no-any-return]
        result["flow_id"], data
    )


async def test_meter_form_takes_the_key_and_offers_the_others(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    wmbusmeters: str,
    encrypted: Path,
    run_until_played: RunUntilPlayed,
) -> None:
    """A zipped KEM file of a building: the form's meter gets its key from it (and wmbusmeters
    decodes it), the other meter it lists is offered and added with its own key; the upload
    is gone, and neither file nor password is in the saved meter."""
    entry = receiver_entry(wmbusmeters, encrypted)
    await setup_receiver(hass, entry)
    file_id = await upload(hass_client, "building.zip", zipped("keys.kem", kem(METERS_IN_ORDER)))
    result = await add_meter(
        hass,
        entry.entry_id,
        {"name": "Vand", "meter_id": "76348799", "driver": "auto", **file_section(file_id)},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "key_file_meters"
    assert result["description_placeholders"] == {"count": "1"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"add_meters": ["80363608"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    saved = {sub.unique_id: dict(sub.data) for sub in entry.subentries.values()}
    assert saved["76348799"] == {
        "name": "Vand",
        "driver": "auto",
        "key": KEY_A,
        "meter_id": "76348799",
    }
    assert saved["80363608"]["key"] == KEY_B
    assert saved["80363608"]["name"] == "1002"  # the utility's number of the meter
    assert PASSWORD not in str(saved)
    # The upload was deleted once read (HA's upload folder is empty), and the same id sent
    # again (a form that kept it) is to be chosen again, not read as nothing.
    assert not [p for p in Path(tempfile.gettempdir()).rglob("*") if p.is_file()]
    again = await add_meter(
        hass,
        entry.entry_id,
        {"name": "X", "meter_id": "11111111", "driver": "auto", **file_section(file_id)},
    )
    assert again["errors"] == {"key_file_section": "key_file_choose_again"}
    await run_until_played(entry)
    await until(
        hass,
        lambda: (s := hass.states.get("sensor.vand_total")) is not None and s.state == "6.408",
        "Vand's total from the key file's key",
    )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_meter_form_errors_save_nothing(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, wmbusmeters: str, encrypted: Path
) -> None:
    """Wrong password, not a key file, a file without the meter, a typed key that differs:
    each a translated error on the form, nothing saved."""
    entry = receiver_entry(wmbusmeters, encrypted)
    await setup_receiver(hass, entry)
    form = {"name": "Vand", "meter_id": "76348799", "driver": "auto"}
    cases = [
        (kem(METERS_IN_ORDER), "wrong", {"key_file_section": "key_file_password"}),
        (b"just text", PASSWORD, {"key_file_section": "key_file_invalid"}),
        (
            kem(METERS_IN_ORDER.replace("76348799", "12345678")),
            PASSWORD,
            {"key_file_section": "key_file_meter_missing"},
        ),
    ]
    for data, password, errors in cases:
        file_id = await upload(hass_client, "keys.kem", data)
        result = await add_meter(hass, entry.entry_id, {**form, **file_section(file_id, password)})
        assert result["errors"] == errors
    # A password without a file: the file was meant, not forgotten silently.
    result = await add_meter(
        hass, entry.entry_id, {**form, "key_file_section": {"key_file_password": PASSWORD}}
    )
    assert result["errors"] == {"key_file_section": "key_file_not_chosen"}
    file_id = await upload(hass_client, "keys.kem", kem(METERS_IN_ORDER))
    result = await add_meter(hass, entry.entry_id, {**form, "key": KEY_B, **file_section(file_id)})
    assert result["errors"] == {"key": "key_and_key_file"}
    assert not entry.subentries
    await hass.config_entries.async_unload(entry.entry_id)


async def test_wrong_key_repair_fixed_with_a_key_file(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    wmbusmeters: str,
    encrypted: Path,
    run_until_played: RunUntilPlayed,
    repair_fix: RepairFix,
) -> None:
    """The wrong-key repair: the key file instead of typing; the meter's values appear and
    the repair clears itself."""
    entry = receiver_entry(wmbusmeters, encrypted, [meter("Vand", "multical21", "76348799", KEY_B)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is not None
    flow = await repair_fix.start(ISSUE_ID)
    file_id = await upload(hass_client, "keys.kem2", kem(METERS_IN_ORDER))
    flow = await repair_fix.submit(flow["flow_id"], {"key": "", **file_section(file_id)})
    assert flow["type"] == "create_entry"
    assert next(iter(entry.subentries.values())).data["key"] == KEY_A
    await until(
        hass,
        lambda: (s := hass.states.get("sensor.vand_total")) is not None and s.state == "6.408",
        "Vand's total",
    )
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_ID) is None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_addon_import_takes_keys_from_a_key_file(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    wmbusmeters: str,
    tmp_path: Path,
    radio: str,
    run_until_played: RunUntilPlayed,
) -> None:
    """Taking over the add-on's setup whose meter file has no key: the summary's key-file
    section gives it (a wrong password and a file of other meters are errors that change
    nothing), the summary says where the key came from, and the created meter decodes."""
    summary = await read_addon(
        hass, tmp_path, wmbusmeters, radio, {"meter-0001": "name=Vand\nid=76348799\ndriver=auto\n"}
    )
    assert summary["description_placeholders"]["meters"] == "- Vand · auto · 76348799"
    flow_id = summary["flow_id"]
    configure = hass.config_entries.flow.async_configure

    wrong = await upload(hass_client, "keys.kem", kem(METERS_IN_ORDER))
    result = await configure(flow_id, file_section(wrong, "not the password"))
    assert result["step_id"] == "import_summary"
    assert result["errors"] == {"key_file_section": "key_file_password"}
    others = METERS_IN_ORDER.replace("76348799", "11111111")
    result = await configure(flow_id, file_section(await upload(hass_client, "k.kem", kem(others))))
    assert result["errors"] == {"key_file_section": "key_file_no_import_meter"}
    assert result["description_placeholders"]["meters"] == "- Vand · auto · 76348799"

    file_id = await upload(hass_client, "building.zip", zipped("keys.kem2", kem(METERS_IN_ORDER)))
    result = await configure(flow_id, file_section(file_id))
    assert result["type"] is FlowResultType.FORM  # shown again, nothing created yet
    assert result["errors"] == {}
    text = result["description_placeholders"]
    assert text["meters"] == "- Vand · auto · 76348799 · key from the key file"
    assert KEY_A not in str(text)
    assert not hass.config_entries.async_entries(DOMAIN)

    # Confirmed with the same upload still in the form (as a frontend that keeps it sends):
    # its keys were taken, it is not read again nor an error.
    result = await configure(flow_id, file_section(file_id))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    saved = [dict(s.data) for s in entry.subentries.values()]
    assert saved == [{"name": "Vand", "driver": "auto", "meter_id": "76348799", "key": KEY_A}]
    assert PASSWORD not in str(entry.data) + str(saved)
    await hass.async_block_till_done()
    await run_until_played(entry)
    state = hass.states.get("sensor.vand_total")
    assert state is not None
    assert state.state == "6.408"
    await hass.config_entries.async_unload(entry.entry_id)

"""The `wmbusmeters.analyze` action (issue 31): a telegram in, what the receiver's own
wmbusmeters makes of it out, as Developer tools → Actions shows the response; with the real
2.0.0 and 3.0.0 on recorded telegrams."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockUser

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import analyze as analyze_module

from .common import meter, receiver_entry, setup_receiver
from .conftest import RunUntilPlayed
from .wmbus.test_analyze import KAMSTRUP, KEY, PLAIN_HEAT, TECHEM, WRONG_KEY


async def call(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "analyze", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def test_a_telegram_of_a_saved_meter(
    hass: HomeAssistant,
    wmbusmeters: str,
    encrypted: Path,
    run_until_played: RunUntilPlayed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The telegram of a meter saved with its key: the key works (the saved one), its values
    and drivers; a wrong key given in the call is said to be wrong; neither key appears in the
    response or the log."""
    caplog.set_level(logging.DEBUG)
    entry = receiver_entry(wmbusmeters, encrypted, [meter("Vand", "auto", "76348799", KEY)])
    await setup_receiver(hass, entry)
    await run_until_played(entry)

    found = await call(hass, telegram=f"telegram=|{KAMSTRUP}|")
    assert found["receiver"] == entry.title
    assert found["wmbusmeters"] == entry.runtime_data.catalog.info.version
    assert found["key"] == "works"
    assert found["key_source"] == "saved"
    assert found["meter_id"] == "76348799"
    assert found["values"]["total_m3"] == 6.408
    assert found["drivers"]["used"] == found["values"]["meter"]
    assert any("dll-mfct (KAM)" in line for line in found["analysis"])
    json.dumps(found)  # (a response is JSON)

    wrong = await call(hass, telegram=KAMSTRUP, key=WRONG_KEY, config_entry_id=entry.entry_id)
    assert wrong["key"] == "wrong"
    assert wrong["key_source"] == "given"
    assert "total_m3" not in wrong["values"]

    heat = await call(hass, telegram=PLAIN_HEAT)
    assert heat["key"] == "not_needed"
    assert heat["values"]["total_energy_consumption_kwh"] == 165

    techem = await call(hass, telegram=TECHEM)
    assert techem["key"] == "missing"
    assert techem["key_source"] == "none"

    for text in (str(found), str(wrong), caplog.text):
        assert KEY not in text
        assert WRONG_KEY not in text
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("data", "translation_key"),
    [
        ({"telegram": "hello"}, "analyze_not_hex"),
        ({"telegram": KAMSTRUP[:20]}, "analyze_unreadable"),
        ({"telegram": KAMSTRUP, "key": "not a key " + KEY[:8]}, "analyze_invalid_key"),
        ({"telegram": KAMSTRUP, "driver": "nosuchdriver"}, "analyze_unknown_driver"),
        ({"telegram": KAMSTRUP, "driver": KEY.lower()}, "analyze_unknown_driver"),
        ({"telegram": KAMSTRUP, "config_entry_id": "nope"}, None),
    ],
    ids=["not hex", "cut", "bad key", "unknown driver", "key as driver", "unknown receiver"],
)
async def test_bad_input_is_a_translated_error(
    hass: HomeAssistant,
    wmbusmeters: str,
    encrypted: Path,
    data: dict[str, str],
    translation_key: str | None,
) -> None:
    entry = receiver_entry(wmbusmeters, encrypted)
    await setup_receiver(hass, entry)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, **data)
    if translation_key is not None:
        assert err.value.translation_key == translation_key
    assert KEY[:8] not in str(err.value)
    assert KEY[:8].lower() not in str(err.value.translation_placeholders)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_for_administrators_only(
    hass: HomeAssistant, wmbusmeters: str, encrypted: Path, hass_read_only_user: MockUser
) -> None:
    """It runs programs and may be given a key: a user who is not an administrator may not."""
    entry = receiver_entry(wmbusmeters, encrypted)
    await setup_receiver(hass, entry)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "analyze",
            {"telegram": KAMSTRUP},
            blocking=True,
            return_response=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    await hass.config_entries.async_unload(entry.entry_id)


async def test_no_receiver_loaded(hass: HomeAssistant) -> None:
    from custom_components.wmbusmeters import services  # noqa: PLC0415

    services.async_setup_services(hass)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, telegram=KAMSTRUP)
    assert err.value.translation_key == "no_receiver"


async def test_every_analyze_error_has_text(hass: HomeAssistant) -> None:
    """Each error the analysis raises, and the action's own, is translated (en and da)."""
    keys = {
        obj.translation_key
        for obj in vars(analyze_module).values()
        if isinstance(obj, type) and issubclass(obj, analyze_module.AnalyzeError)
    } | {"analyze_which_receiver", "analyze_invalid_key", "analyze_unknown_driver"}
    for language in ("en", "da"):
        texts = await async_get_translations(hass, language, "exceptions", [DOMAIN])
        for key in keys:
            assert texts.get(f"component.{DOMAIN}.exceptions.{key}.message"), (language, key)


async def test_a_program_that_hangs_is_an_error_of_the_program(
    hass: HomeAssistant, wmbusmeters: str, encrypted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hang (a fault the real binary cannot be made to show: the analysis is replaced by one
    that times out, as tests/wmbus/test_analyze.py's stand-in does) is Home Assistant's
    error, not a validation error of the call's data, and translated."""
    entry = receiver_entry(wmbusmeters, encrypted)
    await setup_receiver(hass, entry)

    async def hangs(*_: object, **__: object) -> None:
        raise analyze_module.AnalyzeTimeoutError

    monkeypatch.setattr("custom_components.wmbusmeters.services.analyze", hangs)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, telegram=KAMSTRUP)
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "analyze_timeout"
    await hass.config_entries.async_unload(entry.entry_id)

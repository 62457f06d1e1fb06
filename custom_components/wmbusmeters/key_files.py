"""A utility's key file in the meter form (issue 31): the collapsed section where a Kamstrup
KEM file (or a zip holding one) and its password replace typing the key. The file comes
through Home Assistant's own file upload and is deleted once read; neither it nor its
password is stored, logged or put in diagnostics: only the key of the form's meter is kept."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    FileSelector,
    FileSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util.hass_dict import HassKey

from .compat import vol
from .const import CONF_KEY, CONF_METER_ID, DOMAIN
from .wmbus.kem import MAX_FILE, KeyFileError, KeyFileMeter, KeyFileTooLargeError, read_key_file

#: The meter form's collapsed section, and its fields.
SECTION_KEY_FILE = "key_file_section"
CONF_KEY_FILE = "key_file"
CONF_KEY_FILE_PASSWORD = "key_file_password"  # noqa: S105  (a field name)
#: The uploads read lately (id -> whether their keys were taken), the oldest forgotten first.
_READ_UPLOADS: HassKey[OrderedDict[str, bool]] = HassKey(f"{DOMAIN}_key_file_uploads")
MAX_REMEMBERED = 64
#: What the file selector offers (the browser's filter; the content is what is checked).
ACCEPT = ".kem,.kem2,.zip"


def key_file_section() -> dict[Any, Any]:
    """The collapsed "use a key file" section of a meter form."""
    return {
        vol.Optional(SECTION_KEY_FILE): section(
            vol.Schema(
                {
                    vol.Optional(CONF_KEY_FILE): FileSelector(FileSelectorConfig(accept=ACCEPT)),
                    vol.Optional(CONF_KEY_FILE_PASSWORD): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    ),
                }
            ),
            {"collapsed": True},
        )
    }


def _read_upload(hass: HomeAssistant, file_id: str, password: str) -> list[KeyFileMeter]:
    """The uploaded file's meters (blocking); the upload is deleted whatever happens."""
    try:
        with process_uploaded_file(hass, file_id) as path:
            if path.stat().st_size > MAX_FILE:
                raise KeyFileTooLargeError
            data = path.read_bytes()
    except (ValueError, OSError) as err:  # (an unknown or expired upload id)
        raise KeyFileError from err
    return read_key_file(data, password)


async def async_read_key_file(
    hass: HomeAssistant, user_input: dict[str, Any], errors: dict[str, str]
) -> list[KeyFileMeter] | None:
    """The meters of the key file in the form's section (which leaves the input: nothing of it
    is saved); None without a file, or with an error under the section."""
    given: Mapping[str, Any] = user_input.pop(SECTION_KEY_FILE, None) or {}
    file_id = str(given.get(CONF_KEY_FILE) or "")
    password = str(given.get(CONF_KEY_FILE_PASSWORD) or "")
    if not file_id:
        if password:
            # (a password alone: the file was meant, and would otherwise be silently missed)
            errors[SECTION_KEY_FILE] = "key_file_not_chosen"
        return None
    read = _uploads(hass)
    if file_id in read:
        # A form shown again may send the upload it was given before, deleted once read: one
        # whose keys were taken is done with; any other must be chosen again.
        if not read[file_id]:
            errors[SECTION_KEY_FILE] = "key_file_choose_again"
        return None
    read[file_id] = False
    while len(read) > MAX_REMEMBERED:
        read.popitem(last=False)
    try:
        return await hass.async_add_executor_job(_read_upload, hass, file_id, password)
    except KeyFileError as err:
        errors[SECTION_KEY_FILE] = err.translation_key
        return None


def keys_taken(hass: HomeAssistant, user_input: Mapping[str, Any]) -> None:
    """The form's key file gave its keys (the form is shown again with them): the same
    upload sent again with the next submit is done with, not an error."""
    given: Mapping[str, Any] = user_input.get(SECTION_KEY_FILE) or {}
    if file_id := str(given.get(CONF_KEY_FILE) or ""):
        _uploads(hass)[file_id] = True


def _uploads(hass: HomeAssistant) -> OrderedDict[str, bool]:
    return hass.data.setdefault(_READ_UPLOADS, OrderedDict())


async def async_key_from_file(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    meter_id: str | None,
    errors: dict[str, str],
    current_key: str = "",
) -> list[KeyFileMeter] | None:
    """With a key file in the form: its meters, and the form's key set from the one whose id is
    the meter's (errors under the section otherwise); None without a file. A key typed into
    the form that differs from the file's is an error, unless it is the meter's current key
    (a form shows it prefilled: the file replaces it). The section leaves the input either
    way (nothing of it is saved)."""
    meters = await async_read_key_file(hass, user_input, errors)
    if meters is not None and meter_id is not None:
        found = next((m for m in meters if m.meter_id == meter_id.lower()), None)
        if found is None:
            errors[SECTION_KEY_FILE] = "key_file_meter_missing"
        elif _typed(user_input) not in ("", found.key, current_key.upper()):
            errors[CONF_KEY] = "key_and_key_file"
        else:
            user_input[CONF_KEY] = found.key
    return meters


async def async_key_for_meter(
    hass: HomeAssistant,
    user_input: dict[str, Any],
    meter: Mapping[str, Any],
    errors: dict[str, str],
) -> None:
    """A saved meter's form (its reconfigure, its key repair): the key from a key file, which
    replaces the meter's current key."""
    await async_key_from_file(
        hass, user_input, meter[CONF_METER_ID], errors, str(meter.get(CONF_KEY) or "")
    )


def _typed(user_input: Mapping[str, Any]) -> str:
    return "".join(c for c in str(user_input.get(CONF_KEY) or "") if c.isalnum()).upper()

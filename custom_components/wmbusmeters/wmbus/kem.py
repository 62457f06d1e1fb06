"""Kamstrup KEM key files (issue 31, groundwork: what the meter form's "use a key file" will
read): the meters and AES keys a utility hands out, in a password-protected file.

A KEM file is XML whose `CipherValue` holds base64 of AES-128-CBC ciphertext, key and IV both
the password's UTF-8 bytes padded with zeros to 16 (wmbusmeters' utils/kem-import.py, the
add-on's page). The plaintext is XML again, one of two layouts:
- `MetersInOrder/Meter`: `SerialNo` (the meter id wmbusmeters uses), `MeterNo`, `EncKeys/DEK`;
- `Devices/Device`: `SerialNumber`, `Keys/Key/Value`.
It may come zipped (`.kem` or `.kem2` inside). Everything read is bounded, no document type or
entity is accepted (no expansion, no external fetch), and a file that is not this is an error
with a translation key, never an exception of the parser.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
import io
import lzma
import re
from typing import Final
import xml.etree.ElementTree as ET
import zipfile
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import WmbusError

#: The largest key file read (a building's file lists hundreds of meters in kilobytes).
MAX_FILE: Final = 1024 * 1024
#: Members of a zip looked at, and how much one may inflate to (a zip bomb stops there).
MAX_MEMBERS: Final = 32
MAX_RATIO: Final = 200
#: Meters taken from one file.
MAX_METERS: Final = 2000
_HEX_KEY = re.compile(r"[0-9A-Fa-f]{32}")
_METER_ID = re.compile(r"[0-9A-Fa-f]{8}")
#: Control characters the decrypted text may carry (CBC padding among them): not XML.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class KeyFileError(WmbusError):
    """The key file cannot be read; `translation_key` says why."""

    translation_key = "key_file_invalid"


class NotAKeyFileError(KeyFileError):
    """Not a KEM file (nor a zip holding one)."""

    translation_key = "key_file_invalid"


class EncryptedZipError(KeyFileError):
    """A zip with a password of its own: unpack it first (the KEM password is another)."""

    translation_key = "key_file_zip_encrypted"


class KeyFileTooLargeError(KeyFileError):
    """Over MAX_FILE, or a zip that inflates past its bounds."""

    translation_key = "key_file_too_large"


class WrongPasswordError(KeyFileError):
    """The password does not open it (or is longer than 16 bytes, which none is)."""

    translation_key = "key_file_password"


class NoMetersError(KeyFileError):
    """It opens, but lists no meter with an id and a key."""

    translation_key = "key_file_no_meters"


@dataclass(frozen=True, slots=True)
class KeyFileMeter:
    """One meter of a key file: its id as wmbusmeters knows it (lower case) and its key."""

    meter_id: str
    key: str
    #: The utility's own number of the meter, where the file has one (a name to offer).
    number: str | None = None


def read_key_file(data: bytes, password: str) -> list[KeyFileMeter]:
    """Every meter in a KEM file (plain or zipped); KeyFileError if it cannot be read."""
    if len(data) > MAX_FILE:
        raise KeyFileTooLargeError
    if data[:4] == b"PK\x03\x04":
        data = _from_zip(data)
    cipher_text = _cipher_value(data)
    plain = _decrypt(cipher_text, password)
    return _meters(plain)


def _from_zip(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise KeyFileTooLargeError
            for member in members:
                name = member.filename.rsplit("/", 1)[-1]
                if (
                    not name.lower().endswith((".kem", ".kem2"))
                    or name.startswith(".")  # (a Mac's ._ companions, hidden files)
                    or member.filename.startswith("__MACOSX/")
                ):
                    continue
                if member.flag_bits & 0x1:
                    raise EncryptedZipError
                if member.file_size > MAX_FILE or member.file_size > MAX_RATIO * max(
                    member.compress_size, 1
                ):
                    raise KeyFileTooLargeError
                with archive.open(member) as file:
                    content = file.read(MAX_FILE + 1)  # (the header's size is not trusted)
                if len(content) > MAX_FILE:
                    raise KeyFileTooLargeError
                return content
    except KeyFileError:
        raise
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        RuntimeError,  # (an encrypted member read without its password)
        zlib.error,
        lzma.LZMAError,
    ) as err:
        raise NotAKeyFileError from err
    raise NotAKeyFileError


def _parse(text: bytes | str) -> ET.Element:
    """XML without a document type: no entity is declared, so none is expanded or fetched.
    Bytes are read as UTF-8 (a KEM file is): the check then sees what the parser sees, which
    it could not in another encoding (UTF-16 hides `<!DOCTYPE` from a byte search)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise NotAKeyFileError from err
    upper = text.upper()
    # (NUL is in no XML text; it is in every UTF-16 one read as UTF-8)
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper or "\x00" in text:
        raise NotAKeyFileError
    try:
        # UTF-8 whatever the declaration says: what was checked is what is parsed.
        parser = ET.XMLParser(encoding="utf-8")  # noqa: S314  (no DTD, checked above)
        parser.feed(text.encode("utf-8"))
        return parser.close()
    except (ET.ParseError, ValueError) as err:
        raise NotAKeyFileError from err


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _cipher_value(data: bytes) -> bytes:
    root = _parse(data)
    value = next((e.text for e in root.iter() if _local(e.tag) == "CipherValue"), None)
    if not value:
        raise NotAKeyFileError
    try:
        cipher_text = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise NotAKeyFileError from err
    if not cipher_text or len(cipher_text) % 16:
        raise NotAKeyFileError
    return cipher_text


def _decrypt(cipher_text: bytes, password: str) -> str:
    secret = password.encode("utf-8")
    if not secret or len(secret) > 16:
        raise WrongPasswordError
    secret = secret.ljust(16, b"\0")
    decryptor = Cipher(algorithms.AES(secret), modes.CBC(secret)).decryptor()
    plain = decryptor.update(cipher_text) + decryptor.finalize()
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WrongPasswordError from err
    text = _CONTROL.sub("", text).strip()
    if not text.startswith("<"):
        raise WrongPasswordError  # (a wrong key may still decode as text, rarely as XML)
    return text


def _meters(text: str) -> list[KeyFileMeter]:
    try:
        root = _parse(text)
    except NotAKeyFileError as err:
        raise WrongPasswordError from err
    layout = _local(root.tag)
    rows: list[tuple[ET.Element, str, tuple[str, ...], str]]
    if layout == "MetersInOrder":
        rows = [(e, "SerialNo", ("DEK",), "MeterNo") for e in _children(root, "Meter")]
    elif layout == "Devices":
        rows = [
            (e, "SerialNumber", ("Keys", "Key", "Value"), "CustomerDeviceNumber")
            for e in _children(root, "Device")
        ]
    else:
        raise NoMetersError
    meters: dict[str, KeyFileMeter] = {}
    for element, id_tag, key_path, number_tag in rows[:MAX_METERS]:
        meter_id = _text(element, id_tag)
        key = _path_text(element, key_path)
        if meter_id is None or key is None:
            continue
        meter_id = meter_id.rjust(8, "0") if meter_id.isdigit() else meter_id
        if not _METER_ID.fullmatch(meter_id) or not _HEX_KEY.fullmatch(key):
            continue
        number = _text(element, number_tag)
        meters.setdefault(
            meter_id.lower(),
            KeyFileMeter(meter_id.lower(), key.upper(), number[:64] if number else None),
        )
    if not meters:
        raise NoMetersError
    return list(meters.values())


def _children(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _path_text(element: ET.Element, path: tuple[str, ...]) -> str | None:
    """The text at this path of local names, anywhere below; of several `Key`s, the one of
    `Type` DEK (the meter's data key) first."""
    if len(path) == 1:
        return _text(element, path[0])
    for child in element.iter():
        if _local(child.tag) == path[0]:
            inner = [e for e in child if _local(e.tag) == path[1]]
            inner.sort(key=lambda e: (_text(e, "Type") or "").upper() != "DEK")
            for candidate in inner:
                if found := _path_text(candidate, path[1:]):
                    return found
    return None


def _text(element: ET.Element, name: str) -> str | None:
    found = next((e for e in element.iter() if _local(e.tag) == name), None)
    text = (found.text or "").strip() if found is not None else ""
    return text or None

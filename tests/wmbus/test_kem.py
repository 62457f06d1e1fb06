"""Kamstrup KEM key files (wmbus/kem.py): files built here by the documented scheme (XML with
a base64 CipherValue, AES-128-CBC with the password's bytes, zero-padded to 16, as key and IV),
in both layouts utilities use, plain and zipped; and what must be refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from custom_components.wmbusmeters.wmbus.kem import (
    MAX_FILE,
    EncryptedZipError,
    KeyFileMeter,
    KeyFileTooLargeError,
    NoMetersError,
    NotAKeyFileError,
    WrongPasswordError,
    read_key_file,
)
from demo import key_file

PASSWORD = "Forsyning2026"
KEY_A = "28F64A24988064A079AA2C807D6102AE"
KEY_B = "00112233445566778899AABBCCDDEEFF"

METERS_IN_ORDER = f"""<?xml version="1.0" encoding="utf-8"?>
<MetersInOrder>
  <Meter><MeterName>MC21</MeterName><MeterNo>1001</MeterNo><SerialNo>76348799</SerialNo>
    <EncKeys><DEK>{KEY_A}</DEK></EncKeys></Meter>
  <Meter><MeterName>MC403</MeterName><MeterNo>1002</MeterNo><SerialNo>80363608</SerialNo>
    <EncKeys><DEK>{KEY_B.lower()}</DEK></EncKeys></Meter>
</MetersInOrder>"""

DEVICES = f"""<?xml version="1.0" encoding="utf-8"?>
<Devices xmlns="http://example.invalid/kem2">
  <Device><CustomerDeviceNumber>Flat 3</CustomerDeviceNumber>
    <DeviceId><SerialNumber>7634879</SerialNumber></DeviceId>
    <Keys><Key><Type>DEK</Type><Value>{KEY_A}</Value></Key></Keys></Device>
</Devices>"""


def kem(plain: str, password: str = PASSWORD) -> bytes:
    """A KEM file of this plain XML (demo/key_file.py: the documented scheme)."""
    return key_file.kem(plain, password)


def zipped(name: str, data: bytes) -> bytes:
    """A zip with a fixed date: made at collection, it must be the same bytes in every
    pytest-xdist worker (a zip dated now differed when a second ticked between two)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in (("readme.txt", b"the key file of your building"), (name, data)):
            info = zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return out.getvalue()


def test_meters_in_order() -> None:
    assert read_key_file(kem(METERS_IN_ORDER), PASSWORD) == [
        KeyFileMeter("76348799", KEY_A, "1001"),
        KeyFileMeter("80363608", KEY_B, "1002"),
    ]


def test_devices_layout_and_a_short_serial() -> None:
    """The newer layout, with a namespace; a 7-digit serial is the meter id with its zero."""
    assert read_key_file(kem(DEVICES), PASSWORD) == [KeyFileMeter("07634879", KEY_A, "Flat 3")]


@pytest.mark.parametrize("name", ["Building 7.kem", "keys.KEM2"])
def test_zipped(name: str) -> None:
    meters = read_key_file(zipped(name, kem(METERS_IN_ORDER)), PASSWORD)
    assert [m.meter_id for m in meters] == ["76348799", "80363608"]


def test_wrong_password() -> None:
    with pytest.raises(WrongPasswordError):
        read_key_file(kem(METERS_IN_ORDER), "wrong password")
    with pytest.raises(WrongPasswordError):
        read_key_file(kem(METERS_IN_ORDER), "seventeen bytes!!")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"<EncryptedData/>",
        b"<EncryptedData><CipherValue>not base64!</CipherValue></EncryptedData>",
        b"<EncryptedData><CipherValue>AAAA</CipherValue></EncryptedData>",  # not whole blocks
        b"<a><b></a>",
        b"PK\x03\x04 not really a zip",
        zipped("keys.txt", b"no kem in here"),
    ],
    ids=[
        "empty",
        "text",
        "empty xml",
        "not base64",
        "not whole blocks",
        "bad xml",
        "not a zip",
        "zip without kem",
    ],
)
def test_not_a_key_file(data: bytes) -> None:
    with pytest.raises(NotAKeyFileError):
        read_key_file(data, PASSWORD)


#: A document type whose entity expands to valid cipher text: were it parsed, it would read as
#: a KEM file (and end as a wrong password); refused first, it is not a key file.
DOCTYPE = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "AAAAAAAAAAAAAAAAAAAAAA==">]>'
    "<EncryptedData><CipherValue>&a;</CipherValue></EncryptedData>"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le"])
def test_no_document_type_in_any_encoding(encoding: str) -> None:
    """UTF-16 would hide `<!DOCTYPE` from a search of the bytes: the file is read as UTF-8
    (what a KEM file is) and checked as the parser would read it."""
    data = DOCTYPE.replace("?>", f' encoding="{encoding}"?>', 1).encode(encoding)
    with pytest.raises(NotAKeyFileError):
        read_key_file(data, PASSWORD)
    with pytest.raises(NotAKeyFileError):
        read_key_file(DOCTYPE.lower().replace("cipherValue", "CipherValue").encode(), PASSWORD)


def test_zips_that_are_not_readable() -> None:
    """A zip with a password of its own, a damaged one, and a Mac's companion file first."""
    protected = bytearray(zipped("keys.kem", kem(METERS_IN_ORDER)))
    # (the standard library writes no encrypted zips: the member's encrypted flag is set, in
    # its local header, 30 bytes before its name, and in the central directory, 46 before)
    local = protected.find(b"keys.kem")
    central = protected.find(b"keys.kem", local + 1)
    assert protected[local - 30 : local - 26] == b"PK\x03\x04"
    assert protected[central - 46 : central - 42] == b"PK\x01\x02"
    protected[local - 30 + 6] |= 0x1
    protected[central - 46 + 8] |= 0x1
    with pytest.raises(EncryptedZipError):
        read_key_file(bytes(protected), PASSWORD)
    damaged = bytearray(zipped("keys.kem", kem(METERS_IN_ORDER)))
    start = damaged.find(b"keys.kem", 40) + len("keys.kem")
    damaged[start + 10 : start + 30] = b"\xff" * 20
    with pytest.raises(NotAKeyFileError):
        read_key_file(bytes(damaged), PASSWORD)
    mac = io.BytesIO()
    with zipfile.ZipFile(mac, "w") as archive:
        archive.writestr("__MACOSX/._keys.kem", b"\x00\x05\x16\x07 resource fork")
        archive.writestr("keys.kem", kem(METERS_IN_ORDER))
    assert len(read_key_file(mac.getvalue(), PASSWORD)) == 2


def test_the_data_key_of_several() -> None:
    """A device with more than one key: its DEK."""
    devices = DEVICES.replace("<Keys>", f"<Keys><Key><Type>AK</Type><Value>{KEY_B}</Value></Key>")
    assert read_key_file(kem(devices), PASSWORD)[0].key == KEY_A


def test_a_file_without_meters() -> None:
    with pytest.raises(NoMetersError):
        read_key_file(
            kem("<MetersInOrder><Meter><SerialNo>1</SerialNo></Meter></MetersInOrder>"), PASSWORD
        )
    with pytest.raises(NoMetersError):
        read_key_file(kem("<Other/>"), PASSWORD)


def test_sizes_and_zip_bombs() -> None:
    with pytest.raises(KeyFileTooLargeError):
        read_key_file(b"<" + b" " * MAX_FILE + b">", PASSWORD)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("keys.kem", b"\0" * (MAX_FILE * 4))
    assert len(bomb.getvalue()) < MAX_FILE  # small on disk, huge inflated
    with pytest.raises(KeyFileTooLargeError):
        read_key_file(bomb.getvalue(), PASSWORD)

"""A Kamstrup KEM key file as utilities hand them out, by the documented scheme (XML
encryption: a base64 CipherValue, AES-128-CBC with the password's UTF-8 bytes padded with
zeros to 16 as key and IV), for the demo's browser test (e2e/browser.py fixes the demo's wrong
key by uploading one) and the tests of the integration's reader (tests/wmbus/test_kem.py)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def encrypt(plain: str, password: str) -> bytes:
    """The XML's cipher text."""
    secret = password.encode().ljust(16, b"\0")
    data = plain.encode()
    data += bytes([16 - len(data) % 16]) * (16 - len(data) % 16)  # (PKCS#7, as .NET writes it)
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(secret)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def kem(plain: str, password: str) -> bytes:
    """A KEM file: XML encryption with the cipher text in CipherValue."""
    value = base64.b64encode(encrypt(plain, password)).decode()
    return (
        '<?xml version="1.0"?><EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#">'
        '<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        f"<CipherData><CipherValue>{value[:40]}\n{value[40:]}</CipherValue></CipherData>"
        "</EncryptedData>"
    ).encode()


def meters_in_order(meters: dict[str, str]) -> str:
    """The older layout's plain XML: meter id -> key."""
    rows = "".join(
        f"<Meter><MeterNo>{n}</MeterNo><SerialNo>{meter_id}</SerialNo>"
        f"<EncKeys><DEK>{key}</DEK></EncKeys></Meter>"
        for n, (meter_id, key) in enumerate(meters.items(), 1)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><MetersInOrder>{rows}</MetersInOrder>'

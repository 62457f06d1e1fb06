"""What wmbusmeters makes of one telegram (wmbus/analyze.py), asked of the real 2.0.0 and
3.0.0 with recorded telegrams; a key never on a command line. A shell-script stand-in only
for the faults the real binary cannot be made to show (a hang, a flood), said where used."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import stat

import pytest

from custom_components.wmbusmeters.wmbus.analyze import (
    MAX_LINES,
    MAX_OUTPUT,
    AnalyzeTimeoutError,
    KeyVerdict,
    NotATelegramError,
    UnknownDriverError,
    UnreadableTelegramError,
    analyze,
    normalize_telegram,
)

#: tests/data/simulation_encrypted.txt: a Kamstrup multical21 (kamwater in 3.0.0), C1, its
#: ELL encrypted with AES-CTR, and its key.
KAMSTRUP = "2A442D2C998734761B168D2091D37CAC21E1D68CDAFFCD3DC452BD802913FF7B1706CA9E355D6C2701CC24"
KEY = "28F64A24988064A079AA2C807D6102AE"
WRONG_KEY = "00112233445566778899AABBCCDDEEFF"
#: A Techem heat cost allocator, TPL encrypted (mode 5), from the recorded fixtures.
TECHEM = "294468501657060394087A4C001025A11E4EFF816C2F8D147ED0C1F959F55E0F0FF724805FCC33D19A19"
#: A Kamstrup heat meter sending in the clear (upstream's multical21 C1 simulation).
PLAIN_HEAT = (
    "42442D2C0836368035048D20E18025B62087D0780406A500000004FF072B01000004FF089C00000004142102"
    "0000043B120000000259D014025D000904FF2200000000"
)
#: A water meter of a manufacturer no driver knows (synthetic: manufacturer code 0xFFFF).
UNKNOWN = "2E44FFFF1234567801077A1B0000002F2F0413A1080000"


def no_key_in(found: object) -> None:
    assert KEY not in json.dumps(found)
    assert WRONG_KEY not in json.dumps(found)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"telegram=|{KAMSTRUP}|", KAMSTRUP),
        (f"  {KAMSTRUP.lower()}\n", KAMSTRUP),
        (f"0x{KAMSTRUP}", KAMSTRUP),
        (f"{KAMSTRUP[:20]}_{KAMSTRUP[20:]}", KAMSTRUP),
        (" ".join(KAMSTRUP[i : i + 2] for i in range(0, len(KAMSTRUP), 2)), KAMSTRUP),
        (f"telegram=|{KAMSTRUP[:20]}_{KAMSTRUP[20:]}|+0", KAMSTRUP),
        (", ".join(f"0x{KAMSTRUP[i : i + 2]}" for i in range(0, len(KAMSTRUP), 2)), KAMSTRUP),
    ],
    ids=[
        "simulation line",
        "lower case",
        "0x",
        "header_content",
        "spaced bytes",
        "--logtelegrams line",
        "0x bytes",
    ],
)
def test_telegram_as_users_copy_it(raw: str, expected: str) -> None:
    assert normalize_telegram(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "2A44", KAMSTRUP[:-1], "ZZ" * 20, "00" * 301, f"{KAMSTRUP}; rm -rf /"],
    ids=["empty", "short", "odd", "not hex", "too long", "shell"],
)
def test_not_a_telegram(raw: str) -> None:
    with pytest.raises(NotATelegramError):
        normalize_telegram(raw)


async def test_the_right_key_decodes(wmbusmeters: str) -> None:
    found = await analyze(wmbusmeters, KAMSTRUP, key=KEY)
    assert found.key is KeyVerdict.WORKS
    assert found.encrypted
    assert found.meter_id == "76348799"
    assert found.manufacturer == "KAM"
    assert found.values["total_m3"] == 6.408
    # 2.0.0 calls the driver multical21, 3.0.0 kamwater: whichever, the same in each place
    assert found.auto_driver == found.used_driver == found.values["meter"]
    assert any("dll-id (76348799)" in line for line in found.listing)
    assert "name" not in found.values
    no_key_in(found.as_dict())


@pytest.mark.parametrize(
    ("telegram", "key", "verdict"),
    [
        (KAMSTRUP, WRONG_KEY, KeyVerdict.WRONG),
        (KAMSTRUP, "", KeyVerdict.MISSING),  # (AES-CTR: wmbusmeters tries it without a key)
        (TECHEM, "", KeyVerdict.MISSING),
        (TECHEM, WRONG_KEY, KeyVerdict.WRONG),
    ],
    ids=["ctr wrong", "ctr none", "mode5 none", "mode5 wrong"],
)
async def test_keys_that_do_not_decode(
    wmbusmeters: str, telegram: str, key: str, verdict: KeyVerdict
) -> None:
    found = await analyze(wmbusmeters, telegram, key=key)
    assert found.key is verdict
    assert found.encrypted
    assert not [f for f in found.values if f.endswith(("_m3", "_hca"))]
    assert found.messages  # what wmbusmeters said, as it said it
    no_key_in(found.as_dict())


async def test_a_telegram_in_the_clear(wmbusmeters: str) -> None:
    """Without a key its values; with one, wmbusmeters refuses it (the meter should then be
    saved without a key) and says so."""
    found = await analyze(wmbusmeters, PLAIN_HEAT)
    assert found.key is KeyVerdict.NOT_NEEDED
    assert not found.encrypted
    assert found.values["total_energy_consumption_kwh"] == 165
    assert found.key_source == "none"
    with_key = await analyze(wmbusmeters, PLAIN_HEAT, key=KEY)
    assert with_key.key is KeyVerdict.NOT_ENCRYPTED
    assert with_key.key_source == "given"


async def test_the_saved_meter_and_a_forced_driver(wmbusmeters: str) -> None:
    """Without a key in the call, the configured meter's driver and key are used."""
    asked: list[str] = []

    def saved(meter_id: str) -> tuple[str, str] | None:
        asked.append(meter_id)
        return ("auto", KEY) if meter_id == "76348799" else None

    found = await analyze(wmbusmeters, KAMSTRUP, saved=saved)
    assert asked == ["76348799"]
    assert found.key is KeyVerdict.WORKS
    assert found.key_source == "saved"
    assert found.values["total_m3"] == 6.408
    forced = await analyze(wmbusmeters, PLAIN_HEAT, driver="iperl")
    assert forced.used_driver == "iperl"
    assert forced.auto_driver == "kamheat"


async def test_drivers_wmbusmeters_would_misread(wmbusmeters: str) -> None:
    """A driver the binary lacks is said to be unknown (the catalogue may be empty); one whose
    name looks like hex (abbb23: wmbusmeters would take it for a key on its command line) is
    tried in the replay only, and the telegram in the clear is not called encrypted."""
    with pytest.raises(UnknownDriverError) as err:
        await analyze(wmbusmeters, PLAIN_HEAT, driver="nosuchdriver")
    assert err.value.placeholders == {"driver": "nosuchdriver"}
    hexlike = await analyze(wmbusmeters, PLAIN_HEAT, driver="abbb23")
    assert not hexlike.encrypted
    assert hexlike.auto_driver == "kamheat"
    assert not any("Wrong key" in line for line in hexlike.listing)
    pasted_key = UnknownDriverError(KEY.lower())
    assert KEY.lower() not in str(pasted_key.placeholders)


async def test_a_meter_no_driver_knows(wmbusmeters: str) -> None:
    found = await analyze(wmbusmeters, UNKNOWN)
    assert found.auto_driver is None
    assert found.meter_id == "78563412"
    assert found.manufacturer == "___"


async def test_a_cut_telegram_is_unreadable(wmbusmeters: str) -> None:
    with pytest.raises(UnreadableTelegramError):
        await analyze(wmbusmeters, KAMSTRUP[:20])


async def test_the_key_is_never_on_a_command_line(wmbusmeters: str, tmp_path: Path) -> None:
    """A wrapper records every argument list and the mode of the meter file the real binary
    reads; the key is in none of the arguments, the file is the user's alone, and the
    private directory is gone afterwards."""
    record = tmp_path / "calls.txt"
    wrapper = tmp_path / "wmbusmeters"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {record}\n'
        'for a in "$@"; do case "$a" in --useconfig=*) d="${a#--useconfig=}"\n'
        f'  stat -c "%a %n" "$d" "$d"/wmbusmeters.d/* >> {record};; esac; done\n'
        f'exec {wmbusmeters} "$@"\n'
    )
    wrapper.chmod(stat.S_IRWXU)
    found = await analyze(str(wrapper), KAMSTRUP, key=KEY)
    assert found.key is KeyVerdict.WORKS
    calls = record.read_text()
    assert KEY not in calls
    assert "--analyze=plain " in calls
    modes = [line.split()[0] for line in calls.splitlines() if line[:3].isdigit()]
    assert modes == ["700", "600"]
    folder = next(
        arg.removeprefix("--useconfig=") for arg in calls.split() if arg.startswith("--useconfig=")
    )
    assert not Path(folder).exists()


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A stand-in (a fault the real binary cannot be made to show), its behaviour written by
    each test."""
    return tmp_path / "wmbusmeters"


async def test_a_hang_is_bounded_in_time(stand_in: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    stand_in.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    stand_in.chmod(stat.S_IRWXU)
    with pytest.raises(AnalyzeTimeoutError):
        await analyze(str(stand_in), KAMSTRUP, timeout=3.0)
    # (killed and reaped: no process left behind; the stand-in writes its pid first thing)
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()


async def test_a_flood_is_bounded_in_output(stand_in: Path) -> None:
    """A program that prints the analysis header, then 10 MB of listing: read to its end and
    dropped past MAX_OUTPUT, the listing cut at MAX_LINES, and the answer says it was cut."""
    header = "Auto driver    : x\nSimilar driver : unknown 00/00\nUsing driver   : x 00/00\n"
    stand_in.write_text(
        f"#!/bin/sh\nprintf '{header}'\nyes '000   : 2a length (42 bytes)' | head -c 10000000\n"
    )
    stand_in.chmod(stat.S_IRWXU)
    found = await asyncio.wait_for(analyze(str(stand_in), KAMSTRUP), 60)
    assert found.truncated
    assert len(found.listing) == MAX_LINES
    assert sum(len(line) + 1 for line in found.listing) <= MAX_OUTPUT

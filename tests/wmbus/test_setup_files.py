"""Reading an existing wmbusmeters setup (wmbus/setup_files.py): trees written the way the
add-on writes them (its run script: `jq to_entries` of its options, `;` values split into
repeated lines, one `meter-NNNN` file per meter) and the way a source install keeps them
under /etc; what is taken, what is not and why; files that are no configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.wmbusmeters.wmbus.config import WmbusConfigError
from custom_components.wmbusmeters.wmbus.setup_files import (
    MAX_FILE,
    MAX_LINE,
    ImportedDevice,
    SetupFileError,
    Skipped,
    key_values,
    parse_device,
    read_setup,
)

KEY = "28F64A24988064A079AA2C807D6102AE"
#: What the add-on's run script writes for its default options, then a serial dongle.
ADDON_CONF = (
    "loglevel=normal\n"
    "device=/dev/ttyUSB0:im871a:c1,t1\n"
    "donotprobe=/dev/ttyAMA0\n"
    "donotprobe=/dev/ttyUSB1\n"
    "logtelegrams=false\n"
    "format=json\n"
    "logfile=/dev/stdout\n"
    'shell=/wmbusmeters/mosquitto_pub.sh "wmbusmeters/$METER_NAME" "$METER_JSON"\n'
)


def write_tree(root: Path, conf: str, meters: dict[str, str], etc: bool = True) -> Path:
    base = root / "etc" if etc else root
    (base / "wmbusmeters.d").mkdir(parents=True)
    (base / "wmbusmeters.conf").write_text(conf)
    for name, text in meters.items():
        (base / "wmbusmeters.d" / name).write_text(text)
    return root


def test_the_addons_tree(tmp_path: Path) -> None:
    """Its data path (`<config>/wmbusmeters/etc/...`): the dongle and its link modes, each
    meter with its key; the MQTT publisher, logging and probing settings are not taken."""
    root = write_tree(
        tmp_path,
        ADDON_CONF,
        {
            "meter-0001": f"name=MainWater\nid=76348799\nkey={KEY}\ndriver=multical21\n",
            "meter-0002": "name=Heat\nid=80363608\nkey=NOKEY\ndriver=kamheat\n",
        },
    )
    setup = read_setup(root)
    assert setup.device == ImportedDevice("/dev/ttyUSB0", "im871a", ("c1", "t1"))
    assert [(m.file, m.name, m.driver, m.meter_id, m.key) for m in setup.meters] == [
        ("wmbusmeters.d/meter-0001", "MainWater", "multical21", "76348799", KEY),
        ("wmbusmeters.d/meter-0002", "Heat", "kamheat", "80363608", ""),
    ]
    assert Skipped("wmbusmeters.conf:shell", "shell") in setup.skipped
    assert Skipped("wmbusmeters.conf:donotprobe", "donotprobe") in setup.skipped
    assert Skipped("wmbusmeters.conf:format", "managed") in setup.skipped
    # A key is never shown (the summary lists whether a meter has one).
    assert KEY not in repr(setup)


def test_a_source_install_under_etc(tmp_path: Path) -> None:
    """`/etc/wmbusmeters.conf` and `/etc/wmbusmeters.d/` (CRLF, comments, spaces around `=`)."""
    root = write_tree(
        tmp_path,
        "# my radio\r\ndevice = auto:t1 \r\n\r\n",
        {"water": "# kitchen\nname = Kitchen tap\nid = 12345678\ntype = iperl\n"},
        etc=False,
    )
    setup = read_setup(root)
    assert setup.device == ImportedDevice("auto", "", ("t1",))
    assert [(m.name, m.driver, m.meter_id) for m in setup.meters] == [
        ("Kitchen tap", "iperl", "12345678")
    ]


def test_what_a_meter_file_may_hold_that_is_not_taken(tmp_path: Path) -> None:
    """Programs (shell, metershell, alarmshell), calculated and constant fields are named
    with their reason; a meter whose id is a pattern, whose key or name is not one the form
    takes, or that repeats another's id is not taken at all."""
    root = write_tree(
        tmp_path,
        "device=auto:c1,t1\ndevice=/dev/ttyUSB1:amb8465:t1\n",
        {
            "meter-0001": (
                "name=Tap\nid=76348799\ndriver=multical21\n"
                "shell=/bin/touch /tmp/x\nmetershell=/bin/sh -c id\nalarmshell=/bin/false\n"
                "calculate_total_l=total_m3*1000\njson_floor=3\nselectedfields=total_m3\n"
            ),
            "meter-0002": "name=All\nid=7634*\ndriver=auto\n",
            "meter-0003": "name=Bad key\nid=11111111\nkey=1234\n",
            "meter-0004": "name=a:b\nid=22222222\n",
            "meter-0005": "name=Tap again\nid=76348799\n",
        },
    )
    setup = read_setup(root)
    assert [m.meter_id for m in setup.meters] == ["76348799"]
    reasons = {(s.what, s.reason) for s in setup.skipped}
    assert {
        ("wmbusmeters.conf:device", "second_device"),
        ("wmbusmeters.d/meter-0001:shell", "shell"),
        ("wmbusmeters.d/meter-0001:metershell", "shell"),
        ("wmbusmeters.d/meter-0001:alarmshell", "shell"),
        ("wmbusmeters.d/meter-0001:calculate_total_l", "calculated_field"),
        ("wmbusmeters.d/meter-0001:json_floor", "constant_field"),
        ("wmbusmeters.d/meter-0001:selectedfields", "not_taken"),
        ("wmbusmeters.d/meter-0002", "not_one_meter_id"),
        ("wmbusmeters.d/meter-0003", "invalid_key"),
        ("wmbusmeters.d/meter-0004", "invalid_name"),
        ("wmbusmeters.d/meter-0005", "duplicate_meter"),
    } <= reasons
    assert "/bin/sh" not in repr(setup)
    assert "1234" not in repr(setup.skipped)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto:t1", ImportedDevice("auto", "", ("t1",))),
        ("im871a[00102759]:c1,t1", ImportedDevice("auto", "", ("c1", "t1"))),
        ("rtlwmbus", ImportedDevice("rtlwmbus")),
        ("rtlwmbus:868.95M", ImportedDevice("rtlwmbus")),
        ("/dev/ttyUSB0:amb8465:t1", ImportedDevice("/dev/ttyUSB0", "amb8465", ("t1",))),
        ("MAIN=/dev/ttyUSB1:mbus:2400", ImportedDevice("/dev/ttyUSB1", "mbus")),
    ],
)
def test_devices_the_form_can_hold(value: str, expected: ImportedDevice) -> None:
    assert parse_device(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "/dev/ttyUSB0",  # a serial port without its type
        "/dev/ttyUSB0:im871a:x9",  # not a link mode
        "/dev/../etc/passwd:im871a:t1",
        "/dev/ttyUSB0;reboot:im871a:t1",
        "stdin:rtlwmbus",  # a network receiver: its own form
        "auto:im871a:t1",
        "1bad=/dev/ttyUSB0:mbus:2400",
    ],
)
def test_devices_it_cannot(value: str) -> None:
    with pytest.raises(WmbusConfigError):
        parse_device(value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"device=auto:t1\nname=\x00\x01\n", "not_text"),
        (b"\xff\xfe\x00d\x00e\x00v\n", "not_text"),
        (b"device=auto:t1\nloglevel=norm", "half_line"),
        (b"device=auto:t1\n" + b"#" * (MAX_FILE + 1) + b"\n", "file_too_large"),
        (b"format=" + b"j" * MAX_LINE + b"\n", "line_too_long"),
        (b"device=auto:t1\x1b[2J\n", "not_text"),
    ],
)
def test_files_that_are_no_configuration(data: bytes, reason: str) -> None:
    with pytest.raises(SetupFileError) as err:
        key_values(data, "wmbusmeters.conf")
    assert err.value.translation_key == reason


def test_a_broken_meter_file_takes_nothing(tmp_path: Path) -> None:
    """A meter file cut off (half a line): the whole setup is refused, nothing is taken."""
    root = write_tree(tmp_path, "device=auto:t1\n", {"meter-0001": "name=Tap\nid=763487"})
    with pytest.raises(SetupFileError) as err:
        read_setup(root)
    assert (err.value.translation_key, err.value.file) == ("half_line", "wmbusmeters.d/meter-0001")


def test_no_setup_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SetupFileError) as err:
        read_setup(tmp_path)
    assert err.value.translation_key == "no_setup"
    root = write_tree(tmp_path / "a", "device=auto:t1\n", {})
    (root / "etc" / "wmbusmeters.d" / "meter-0001").mkdir()  # not a file: passed over
    assert read_setup(root).meters == []
    conf = root / "etc" / "wmbusmeters.conf"
    conf.unlink()
    conf.mkdir()
    with pytest.raises(SetupFileError) as err:
        read_setup(root)
    assert err.value.translation_key == "no_setup"

"""The alarm rule against what wmbusmeters 3.0.0 prints: every status word its drivers can print
is decided (an alarm or deliberately none), and real status texts give the alarms they mean.

The words come from the release source, read by its structure: the xmq drivers' `lookup` tables
(and `mfct_tpl_status_bits`) of status-like fields, the C++ drivers' lookup tables and the texts
they build themselves, and the TPL status byte's words (src/wmbus.cc). The words wmbusmeters makes
up itself (`<LOOKUP>_<bits>`, `UNKNOWN_<hex>`, `DECODING_ERROR_<field>`, `BAD_RULE_…`) are made
from the printf formats that print them. The real texts are the drivers' own test telegrams: the
JSON the release expects, and what the binary printed (tests/fixtures/driver-tests/).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import tarfile

import pytest

from custom_components.wmbusmeters.wmbus import list_drivers, print_driver
from custom_components.wmbusmeters.wmbus.alarms import (
    ALARMS,
    GENERATED,
    HISTORY_FIELD_PREFIXES,
    NOT_ALARMS,
    TPL_STATUS_WORDS,
    AlarmKind,
    alarm_kinds,
    definition_alarms,
    definition_words,
    is_status_field,
    status_words,
    words_alarms,
)
from custom_components.wmbusmeters.wmbus.driver_alarms import DRIVER_ALARMS, render_table
from custom_components.wmbusmeters.wmbus.xmq import parse_xmq, values

REPO = Path(__file__).parents[2]
RELEASE = "wmbusmeters-3.0.0.tar.gz"
#: Where scripts/setup finds the release: the shared folder beside the repo, or its download cache.
TARBALLS = (
    REPO.parent / "shared" / "upstream" / RELEASE,
    Path(
        os.environ.get("WMBUS_DEV_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wmbusmeters-ha-dev"
    )
    / "downloads"
    / RELEASE,
)
RECORDED = REPO / "tests" / "fixtures" / "driver-tests" / "wmbusmeters-3.0.0.jsonl"

#: A field whose text is status: by its name, or by what the driver does with it.
STATUS_NAME = re.compile(r"status|alarm|error")
STATUS_ATTRIBUTES = frozenset({"STATUS", "INCLUDE_TPL_STATUS", "INJECT_INTO_STATUS"})
#: A value that is a date, not status words (`error_date`, `last_alarm_date`...).
DATE = re.compile(r"\d{4}-\d\d-\d\d")


@dataclass
class Printed:
    """What the release's drivers can print in their status-like fields."""

    #: Word (as printed) -> the files that print it.
    words: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: The names of the status lookups: wmbusmeters prints `<NAME>_<bits>` for unnamed bits.
    lookups: set[str] = field(default_factory=set)
    #: Drivers whose status carries the TPL status byte (INCLUDE_TPL_STATUS).
    tpl_drivers: set[str] = field(default_factory=set)
    #: Fields decoded by an ixml grammar: `DECODING_ERROR_<field>` when one fails.
    ixml_fields: set[str] = field(default_factory=set)
    #: Texts the made-up words are printed from (printf formats, filled in).
    made_up: set[str] = field(default_factory=set)
    #: Driver file -> the driver names it defines (its name, then its aliases).
    drivers: dict[str, list[str]] = field(default_factory=dict)
    #: Status texts the drivers' test telegrams expect (their JSON), field -> texts.
    expected: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, text: str, source: str) -> None:
        for word in re.split(r"[\s,]+", text):
            if word:
                self.words[word].add(source)


def from_xmq(path: str, text: str, printed: Printed) -> None:
    (driver,) = values(parse_xmq(text), "driver")
    found = definition_words(text)
    assert found is not None, path
    names, words = found
    printed.drivers[path] = names
    for text_ in words:
        if text_ not in TPL_STATUS_WORDS:  # (the TPL byte's words are wmbus.cc's)
            printed.add(text_, path)
    for fields in values(driver, "fields"):
        for entry in values(fields, "field"):
            (name,) = values(entry, "name")
            attributes = set(",".join(values(entry, "attributes")).split(","))
            if values(entry, "ixml"):
                printed.ixml_fields.add(name)
            if "INCLUDE_TPL_STATUS" in attributes:
                printed.tpl_drivers.add(path)
            if STATUS_NAME.search(name) or attributes & STATUS_ATTRIBUTES:
                for lookup in values(entry, "lookup"):
                    printed.lookups.update(values(lookup, "name"))
    for tests in values(driver, "tests"):
        for test in values(tests, "test"):
            for expected in values(test, "json"):
                collect_texts(json.loads(expected), printed.expected)


# --- C++: string literals and brackets, comments skipped.

_C_TOKEN = re.compile(r"""//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""", re.DOTALL)
_C_BRACKET = re.compile(r"""[(){}]|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""")
#: A lookup rule: its name, then its map type: `{"ERROR_FLAGS", Translate::MapType::...`.
RULE_NAME = re.compile(r'"(\w+)"\s*,\s*Translate::MapType::')
#: A rule's entry `{ 0x01, "NO_FLOW" }`, and its default message after the mask.
MAP_WORD = re.compile(r'\{\s*(?:0x[0-9A-Fa-f]+|\d+)\s*,\s*"([^"]*)"')
DEFAULT_MESSAGE = re.compile(r'MaskBits\([^)]*\)\s*,\s*"([^"]*)"')


def decomment(text: str) -> str:
    """The source with its comments blanked (same length), its string literals kept."""
    return _C_TOKEN.sub(
        lambda m: re.sub(r"\S", " ", m.group()) if m.group()[0] == "/" else m.group(), text
    )


def literals(code: str) -> list[str]:
    return [m.group()[1:-1] for m in _C_TOKEN.finditer(code) if m.group()[0] == '"']


def closing(code: str, start: int) -> int:
    """The end of the bracketed code that starts at code[start]."""
    opener = code[start]
    closer = {"(": ")", "{": "}"}[opener]
    depth = 0
    for match in _C_BRACKET.finditer(code, start):
        depth += (match.group() == opener) - (match.group() == closer)
        if depth == 0:
            return match.end()
    raise AssertionError(f"unbalanced {opener} at {start}")


def function_body(code: str, name: str) -> str:
    match = re.search(rf"\b{name}\s*\([^)]*\)\s*\{{", code)
    assert match is not None, name
    return code[match.end() - 1 : closing(code, match.end() - 1)]


def from_cc(path: str, text: str, printed: Printed) -> None:
    """A C++ driver: the status-like fields it adds (with their lookups) and the texts it sets
    them to itself (`setStringValue("field", "WORDS")` or a function's literals)."""
    code = decomment(text)
    status_fields: set[str] = set()
    if names := re.findall(r'\bdi\.(?:setName|addNameAlias)\s*\(\s*"(\w+)"', code):
        printed.drivers[path] = names
    for match in re.finditer(r"\badd\w*Field\w*\s*\(", code):
        call = code[match.start() : closing(code, match.end() - 1)]
        if not (strings := literals(call)):
            continue
        properties = set(re.findall(r"PrintProperty::(\w+)", call))
        if "INCLUDE_TPL_STATUS" in properties:
            printed.tpl_drivers.add(path)
        if is_status_field(strings[0]) or properties & STATUS_ATTRIBUTES:
            status_fields.add(strings[0])
            printed.lookups.update(RULE_NAME.findall(call))
            for text_ in MAP_WORD.findall(call) + DEFAULT_MESSAGE.findall(call):
                printed.add(text_, path)
    for match in re.finditer(r'\bsetStringValue\s*\(\s*"(\w+)"\s*,\s*', code):
        if match.group(1) not in status_fields:
            continue
        value = code[match.end() :]
        if value.startswith('"'):
            printed.add(literals(value)[0], path)
        elif builder := re.match(r"(\w+)\s*\(", value):
            for text_ in literals(function_body(code, builder.group(1))):
                printed.add(text_, path)
    for expected in re.findall(r'^// (\{"_":"telegram".*\})$', text, re.MULTILINE):
        collect_texts(json.loads(expected), printed.expected)


def from_wmbusmeters(files: dict[str, str], printed: Printed) -> None:
    """What wmbusmeters itself prints into status: the TPL status byte's words (for every
    driver that includes it), and the words it makes up from printf formats."""
    wmbus = decomment(files["src/wmbus.cc"])
    tpl = re.findall(r"\bstring\s+(decodeTPLStatusByte\w*)\s*\([^)]*\)\s*\{", wmbus)
    assert tpl, "the TPL status byte's decoders moved"
    formats: set[str] = set()
    for name in tpl:
        for text_ in literals(function_body(wmbus, name)):
            if "%" in text_:
                formats.add(text_)
            else:
                printed.add(text_, "src/wmbus.cc")
    # A driver's manufacturer TPL bits are a lookup of wmbusmeters' naming (TPL_STS).
    mfct_tpl = RULE_NAME.findall(decomment(files["src/driver_dynamic.cc"]))
    assert mfct_tpl, "driver_dynamic.cc names no rule"
    lookups = printed.lookups | set(mfct_tpl)
    translate = literals(decomment(files["src/translatebits.cc"]))
    formats.update(text_ for text_ in translate if "%s" in text_)
    assert any(f.startswith("%s_") for f in formats), "translatebits.cc no longer prints NAME_bits"
    for format_ in formats:
        conversions = re.findall(r"%[-0-9]*[a-zA-Z]", format_)
        for name in sorted(lookups) if "%s" in conversions else [""]:
            printed.made_up.add(format_ % tuple(name if c == "%s" else 0x1F for c in conversions))
    meters = decomment(files["src/meters.cc"])
    prefixes = re.findall(r'string\("(\w+)"\)\s*\+\s*fi\.vname\(\)', meters)
    assert prefixes, "meters.cc no longer prints DECODING_ERROR_<field>"
    printed.made_up.update(p + f for p in prefixes for f in printed.ixml_fields)


def collect_texts(telegram: dict[str, object], into: dict[str, set[str]]) -> None:
    for name, value in telegram.items():
        if isinstance(value, str) and STATUS_NAME.search(name) and not DATE.match(value):
            into[name].add(value)


#: An entry of src/generated_database.cc: `{ "name", "...", "driver{...}", false }`.
BUILT_IN = re.compile(r'\{\s*"([\w-]+)"\s*,\s*"[^"]*"\s*,\s*"((?:\\.|[^"\\])*)"')


@pytest.fixture(scope="module")
def printed() -> Printed:
    tarball = next((path for path in TARBALLS if path.is_file()), None)
    # Not a skip: the static build needs the same source, so a machine that runs the tests
    # has it; a check that silently stopped looking would let a new driver's word through.
    assert tarball is not None, f"no {RELEASE} in {[str(p) for p in TARBALLS]}"
    files: dict[str, str] = {}
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            path = member.name.partition("/")[2]
            if member.isfile() and re.fullmatch(r"drivers/src/[^/]+\.xmq|src/[^/]+\.cc", path):
                file = tar.extractfile(member)
                assert file is not None
                files[path] = file.read().decode("utf-8")
    found = Printed()
    for path, text in sorted(files.items()):
        if path.startswith("drivers/src/"):
            from_xmq(path, text, found)
        elif re.fullmatch(r"src/driver_\w+\.cc", path):
            from_cc(path, text, found)
    # The definitions built into the binary: one (ultrimisv2) has no file in drivers/src.
    defined = {name for names in found.drivers.values() for name in names}
    built_in = BUILT_IN.findall(decomment(files["src/generated_database.cc"]))
    assert len(built_in) > 100, "generated_database.cc changed its form"
    for name, escaped in built_in:
        if name not in defined:
            text = re.sub(r"\\(.)", r"\1", escaped)
            from_xmq(f"src/generated_database.cc:{name}", text, found)
    assert len(found.tpl_drivers) > 50
    from_wmbusmeters(files, found)
    return found


def decided(word: str) -> bool:
    """In the tables, or one of the words wmbusmeters makes up: not left to the fallback."""
    return (
        word in ALARMS
        or word in NOT_ALARMS
        or any(pattern.fullmatch(word) for pattern, _ in GENERATED)
    )


def test_every_status_word_the_drivers_print_is_decided(printed: Printed) -> None:
    """A word a driver prints is an alarm or deliberately none: a new word is a decision
    (add it to ALARMS or NOT_ALARMS in wmbus/alarms.py, with its source)."""
    assert len(printed.words) > 200
    undecided = {
        word: sorted(sources)
        for word, sources in printed.words.items()
        if not all(w in ALARMS or w in NOT_ALARMS for w in status_words(word))
    }
    assert undecided == {}


def test_the_words_wmbusmeters_makes_up_are_decided(printed: Printed) -> None:
    """`<LOOKUP>_<bits>` for each status lookup, the TPL byte's `UNKNOWN_<hex>`,
    `DECODING_ERROR_<field>`, `BAD_RULE_…`: each word of them is matched, as an error."""
    assert any(text.startswith("UNKNOWN_") for text in printed.made_up)
    assert any(text.startswith("BAD_RULE_") for text in printed.made_up)
    undecided = sorted(
        text for text in printed.made_up if not all(decided(word) for word in status_words(text))
    )
    assert undecided == []
    assert all(alarm_kinds(text) == {AlarmKind.ERROR} for text in printed.made_up)


def test_every_entry_is_a_word_the_drivers_print(printed: Printed) -> None:
    """No entry is a typo or a word of another release."""
    words = {word for text in printed.words for word in status_words(text)}
    assert sorted((ALARMS.keys() | NOT_ALARMS) - words) == []
    assert not ALARMS.keys() & NOT_ALARMS


def test_each_kind_is_printed_by_drivers(printed: Printed) -> None:
    """Every kind has words some drivers print from their own tables (the TPL status byte's
    words, in src/wmbus.cc, come on top)."""
    drivers: dict[AlarmKind, set[str]] = {kind: set() for kind in AlarmKind}
    for word, sources in printed.words.items():
        for kind in alarm_kinds(word):
            drivers[kind].update(sources - {"src/wmbus.cc"})
    assert [kind for kind, names in drivers.items() if not names] == []


def driver_alarms(printed: Printed) -> dict[str, frozenset[AlarmKind]]:
    """Each driver name (aliases too) -> the alarm sensors its status words give (the error
    kind is the problem sensor, which every meter with a status has)."""
    words: dict[str, set[str]] = defaultdict(set)
    for word, sources in printed.words.items():
        for source in sources:
            words[source].add(word)
    found: dict[str, frozenset[AlarmKind]] = {}
    for path, names in printed.drivers.items():
        tpl = set(TPL_STATUS_WORDS) if path in printed.tpl_drivers else set()
        kinds = words_alarms(words[path] | tpl) - {AlarmKind.ERROR}
        found.update(dict.fromkeys(names, kinds))
    return {name: kinds for name, kinds in sorted(found.items()) if kinds}


def test_driver_table_is_the_release_source(printed: Printed) -> None:
    """wmbus/driver_alarms.py (the alarms of drivers a binary cannot print: 3.0.0's C++ ones,
    2.0.0's) is what the release source says. After an upgrade of the source, its body is the
    text this test prints."""
    found = driver_alarms(printed)
    assert {"izar", "qheat", "qwater", "kamwater", "multical21"} <= found.keys()
    assert dict(DRIVER_ALARMS) == found, render_table(found)


@pytest.fixture(scope="module")
def recorded() -> set[str]:
    """The status texts the 3.0.0 binary printed for the drivers' test telegrams."""
    texts: dict[str, set[str]] = defaultdict(set)
    for line in RECORDED.read_text().splitlines():
        collect_texts(json.loads(line), texts)
    return {text for field_texts in texts.values() for text in field_texts}


def test_recorded_words_are_all_decided(printed: Printed, recorded: set[str]) -> None:
    """What the binary printed, and what the drivers' test JSON expects: no word is left to
    the fallback."""
    expected = {text for texts in printed.expected.values() for text in texts}
    texts = recorded | expected
    assert len(recorded) > 50
    assert len(expected) > 50
    assert sorted({w for t in texts for w in status_words(t) if not decided(w)}) == []


#: Real status texts (printed by the 3.0.0 binary for its drivers' test telegrams) and the
#: alarms they raise.
REAL = {
    "OK": set(),
    "": set(),
    "POWER_LOW": {AlarmKind.BATTERY_LOW},
    "BATTERY_LOW POWER_LOW": {AlarmKind.BATTERY_LOW},
    "LEAKAGE_OR_NO_USAGE POWER_LOW": {AlarmKind.LEAK, AlarmKind.BATTERY_LOW},
    "DRY": {AlarmKind.DRY},
    "DRY ERROR RETURN_SENSOR_INTERRUPTED": {AlarmKind.DRY, AlarmKind.ERROR},
    "WRONG_FLOW_DIRECTION": {AlarmKind.REVERSE_FLOW},
    "TAMPER": {AlarmKind.TAMPER},
    "TAMPERING": {AlarmKind.TAMPER},
    "TAMPER_WHILE_REMOVED": {AlarmKind.TAMPER},
    "MODULE_REMOVED": {AlarmKind.TAMPER},
    "SEAL_BROKEN": {AlarmKind.TAMPER},
    "PERMANENT_ERROR POWER_LOW SABOTAGE_ENCLOSURE": {
        AlarmKind.ERROR,
        AlarmKind.BATTERY_LOW,
        AlarmKind.TAMPER,
    },
    # History: a leak the meter had, not one it has.
    "PREV_LEAKAGE": set(),
    (
        "PERMANENT_ERROR P_CLOCK_HAND_ERROR P_DETECTION_WITHOUT_CHANGES P_LEAK P_MBUS_DISCONNECTED "
        "P_MINIMUM_FLOW P_PROCESSOR_RESET P_REVERSE_FLOW P_STRONG_LIGHT TEMPORARY_ERROR UNKNOWN_E0"
    ): {AlarmKind.ERROR},
    "METER_BLOCKED UNDERFLOW": {AlarmKind.ERROR},
    "ERROR_FLAGS_1100 HF MEASUREMENT": {AlarmKind.ERROR},
    "UNKNOWN_C0": {AlarmKind.ERROR},
    "STATUS_1BBF80": {AlarmKind.ERROR},
    "DECODING_ERROR_payload": {AlarmKind.ERROR},
    "SMOKE": {AlarmKind.ERROR},
    "CLEANING_RECOMMENDED": {AlarmKind.ERROR},
    "LOW": {AlarmKind.ERROR},
    # States, not faults: a mode, a door contact, the frame's summer time, a low flow.
    "MODE_2F": set(),
    "DUAL_SENSOR_MODE": set(),
    "CLOSED": set(),
    "OPEN": set(),
    "SUMMER_TIME": set(),
    "MINIMUM_FLOW": set(),
    # izar's C++ driver: lowercase, comma-joined.
    "meter_blocked,underflow": {AlarmKind.ERROR},
    "no_alarm": set(),
}


# Ids from the text alone: a set's order follows the hash seed, which differs between
# pytest-xdist's workers (they must collect the same ids).
@pytest.mark.parametrize(("text", "kinds"), REAL.items(), ids=[t[:40] or "empty" for t in REAL])
def test_real_status_texts(text: str, kinds: set[AlarmKind], recorded: set[str]) -> None:
    assert text in recorded, "not a text the binary printed"
    assert alarm_kinds(text) == kinds


def test_history_fields_are_not_status() -> None:
    """izar's previous_alarms prints the present words ("leakage"): a history field, whose
    name says so, is not read for current alarms."""
    assert alarm_kinds("leakage") == {AlarmKind.LEAK}
    assert "previous_alarms".startswith(HISTORY_FIELD_PREFIXES)
    assert "historic_status".startswith(HISTORY_FIELD_PREFIXES)
    assert not "current_alarms".startswith(HISTORY_FIELD_PREFIXES)
    assert not "current_status".startswith(HISTORY_FIELD_PREFIXES)


def test_unknown_words_are_errors_and_words_are_split_as_printed() -> None:
    """A word no table knows is an error (the status is not OK); spaces and commas separate
    words; a BAD_RULE_…(…) word is one word."""
    assert alarm_kinds("SOMETHING_NEW") == {AlarmKind.ERROR}
    assert alarm_kinds("  OK  ") == frozenset()
    assert status_words("leakage,back_flow") == ["LEAKAGE", "BACK_FLOW"]
    assert status_words("BAD_RULE_ALARMS(from=0x1 mask=0x2) OK") == [
        "BAD_RULE_ALARMS(FROM=0X1 MASK=0X2)",
        "OK",
    ]


async def test_printed_definitions_agree_with_the_table(
    wmbusmeters: str, wmbus_version: str
) -> None:
    """What a binary's `--printdriver` says a driver can raise (3.0.0: all but its C++
    drivers; 2.0.0: its few xmq ones) is what the table, read from the release source, says
    (3.0.0), or part of it (2.0.0's older drivers say less: 3.0.0's kaden added tamper): the
    catalogue offers both, so a meter has the same sensors on either."""
    differ = {}
    printed = 0
    for driver in await list_drivers(wmbusmeters):
        kinds = definition_alarms(await print_driver(wmbusmeters, driver.name))
        if kinds is None:
            continue  # built into the binary (`info='Driver is binary only.'`)
        printed += 1
        kinds -= {AlarmKind.ERROR}
        table = DRIVER_ALARMS.get(driver.name, frozenset())
        if kinds != table if wmbus_version == "3.0.0" else not kinds <= table:
            differ[driver.name] = (sorted(kinds), sorted(table))
    assert printed > 20
    assert differ == {}


@pytest.mark.parametrize(
    "output",
    [
        "info='Driver is binary only.'",
        "info='No such driver nosuch'",
        "driver{name=x fields{",
        "driver = x",
        "driver{name=x}driver{name=y}",
        "driver{name=x info=(&#99999999999;)}",
        "driver{" * 5000,
        "",
    ],
    ids=["binary only", "no such", "unended", "a value", "two", "bad entity", "deep", "empty"],
)
def test_what_is_no_definition(output: str) -> None:
    """What `--printdriver` prints that is no driver's definition says nothing (None), and
    raises nothing: the meter's other sensors are set up whatever a binary prints."""
    assert definition_alarms(output) is None


def test_a_definition_on_one_line() -> None:
    """As `--printdriver` prints it: quotes run into the next key, compound values."""
    printed = (
        "driver{name=mine aliases=m1,m2 fields{field{name=status quantity=Text info='Flags.'"
        "attributes=STATUS,INCLUDE_TPL_STATUS lookup{name=F map_type=BitToString "
        "mask_bits=0xff default_message=OK map{name=LEAK value=0x01 test=Set}}}"
        "field{name=x quantity=Text ixml=('a = b.'&#10;\"-hex = ['A'-'F'].\")}}}"
    )
    assert definition_words(printed) == (
        ["mine", "m1", "m2"],
        [*TPL_STATUS_WORDS, "OK", "LEAK"],
    )
    assert definition_alarms(printed) == {
        AlarmKind.LEAK,
        AlarmKind.BATTERY_LOW,
        AlarmKind.ERROR,
    }

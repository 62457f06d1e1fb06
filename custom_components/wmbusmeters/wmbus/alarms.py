"""The alarms a meter raises, read from the words wmbusmeters prints in its status.

The rule is data: each word the wmbusmeters 3.0.0 drivers print in a status-like field (`status`,
`current_status`, `*_status`, `*alarm*`, `*error*`, the fields injected into `status`) is an
`AlarmKind` (ALARMS) or deliberately none (NOT_ALARMS); the words wmbusmeters makes up itself are
GENERATED; any other word is UNKNOWN: an error, as the problem sensor is on whenever the status is
not OK. Words are separated by spaces (izar's C++ driver: commas, lowercase), matched upper-cased.

History is no alarm: past-tense words (WAS_LEAKING, PREV_LEAKAGE, P_LEAK) are none, and history
fields (HISTORY_FIELD_PREFIXES) are not status texts for this rule.

Sources name the release's files: `kamwater` is drivers/src/kamwater.xmq, `izar.cc`
src/driver_izar.cc, `wmbus.cc` the TPL status byte (in every driver with INCLUDE_TPL_STATUS).
tests/wmbus/test_alarms.py fails on a status word of theirs that is in neither table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import lru_cache
import re
from types import MappingProxyType
from typing import Any, Final

from .xmq import Xmq, XmqError, parse_xmq, values


class AlarmKind(StrEnum):
    """What a meter warns about, as something to automate on."""

    LEAK = "leak"
    BURST = "burst"
    TAMPER = "tamper"  # magnetic field, sabotage and removal included
    BATTERY_LOW = "battery_low"
    REVERSE_FLOW = "reverse_flow"
    DRY = "dry"
    ERROR = "error"  # anything else the meter reports as not OK


#: Each status word the drivers print (upper-cased) and the alarm it raises.
ALARMS: Final[Mapping[str, AlarmKind]] = MappingProxyType(
    {
        word: kind
        for kind, words in (
            # Leaks; kamheat's leak inputs and V1/V2 comparison, waterstarm's LEAKAGE_OR_NO_USAGE
            # (the meter cannot tell them apart), gwfwater's CONTINUOUS_FLOW (never stops).
            # Sources: apatorna1 aquastream engelmann_faw gwfwater izarv2 kamheat kamwater
            # minomess ultrimis waterstarm izar.cc.
            (
                AlarmKind.LEAK,
                "LEAK LEAKAGE LEAKING LEAKAGE_COLD_WATER LEAKAGE_HOT_WATER "
                "IN_A1_LEAKAGE_IN_THE_SYSTEM IN_A2_LEAKAGE_IN_THE_SYSTEM "
                "IN_B1_LEAKAGE_IN_THE_SYSTEM IN_B2_LEAKAGE_IN_THE_SYSTEM "
                "V1_V2_LEAKAGE_WATER_LOSS V1_V2_LEAKAGE_WATER_PENETRATION "
                "LEAKAGE_OR_NO_USAGE CONTINUOUS_FLOW",
            ),
            # Bursts, broken pipes. Sources: aquastream gwfwater kamheat kamwater minomess ultrimis.
            (
                AlarmKind.BURST,
                "BURST BURSTING BROKEN_PIPE BURST_WATER_LOSS V1_V2_BURST_WATER_LOSS "
                "V1_V2_BURST_WATER_PENETRATION",
            ),
            # Tampering, sabotage, fraud; aquastream's TEMPORARY_ALARM is "manipulation/module
            # removed". Sources: apatoreitn aquastream aventieshca aventieswm eurisii hydrocalm3
            # hydrocalm4 iwmtx5 izarv2 kaden kamwater lansenpu lansenth qheatv2 qwaterv2 ultrimis
            # waterstarm izar.cc qheat.cc.
            (
                AlarmKind.TAMPER,
                "TAMPER TAMPERING SABOTAGE SABOTAGE_ENCLOSURE MANIPULATION SEAL_BROKEN "
                "SENSOR_FRAUD MECHANICAL_FRAUD TEMPORARY_ALARM",
            ),
            # A magnetic field, or strong light on an optical sensor.
            # Sources: apatorna1 aptmbusna engelmann_faw gransystems.
            (
                AlarmKind.TAMPER,
                "MAGNETIC_FIELD MAGNETIC_MANIPULATION MAGNETIC_FRAUD_PRESENT STRONG_LIGHT",
            ),
            # Removal: hcae2's OPEN_C is "removed from the heat conductor", apatorna1's
            # DEVICE_DISCONNECTED its radio overlay off the meter. Sources: apatorna1 caltose ei6500
            # engelmann_faw hcae2 minomess rfmamb zennerhca.
            (
                AlarmKind.TAMPER,
                "REMOVED MODULE_REMOVED REMOVAL REMOVAL_DETECTED TAMPER_WHILE_REMOVED OPEN_C "
                "DEVICE_DISCONNECTED",
            ),
            # A low, failing or expired battery; the TPL byte's POWER_LOW is EN 13757's "battery
            # end of life or external power failure". Sources: apatorna1 aptmbusna aquastream
            # aventieshca aventieswm c5isf caltose ei6500 elf2 eurisii gransystems gwfwater kamheat
            # kamwater lansensm minomess qheatv2 qwaterv2 rfmamb sensostar ultrimis waterstarm
            # qheat.cc wmbus.cc.
            (
                AlarmKind.BATTERY_LOW,
                "BATTERY_LOW LOW_BATTERY LOW_BATTERY_LEVEL LOW_BATTERY_VOLTAGE "
                "CRITICAL_BATTERY_VOLTAGE LOW_BATTERY_FAULT BATTERY_VOLTAGE_ERROR BATTERY "
                "BATTERY_EOL BATTERY_EXPIRED BATTERY_WARNING "
                "OK_BATTERY_LOW POWER_LOW",
            ),
            # Water flowing backwards. Sources: apatorna1 aptmbusna c5isf engelmann_faw gwfwater
            # izarv2 kamheat kamwater minomess ultrimis waterstarm izar.cc.
            (
                AlarmKind.REVERSE_FLOW,
                "REVERSE REVERSE_FLOW BACKFLOW BACK_FLOW BACKFLOWING WRONG_FLOW_DIRECTION "
                "V1_WRONG_FLOW_DIRECTION V2_WRONG_FLOW_DIRECTION",
            ),
            # No water in the pipe: DRY, air in the flow sensor. Sources: c5isf kamheat kamwater
            # ultrimis ultrimisv2.
            (AlarmKind.DRY, "DRY AIR_INSIDE V1_AIR V2_AIR FLOW_SENSOR_WEAK_OR_AIR"),
            # Errors and alarms of no kind: the TPL byte's, GENERAL_ALARM (izar: several at once),
            # kamheat's external alarm inputs. Sources: eltako gransystems kamheat lansensm minomess
            # nzr rfmamb izar.cc wmbus.cc.
            (
                AlarmKind.ERROR,
                "ERROR ALARM PERMANENT_ERROR TEMPORARY_ERROR GENERIC_APP_ERROR APP_ERROR "
                "GENERAL_ALARM ABNORMAL_CONDITION MALFUNCTION INTERNAL_ERROR "
                "DEVICE_NOT_CONFIGURED IN_A1_A2_EXTERNAL_ALARM IN_B1_B2_EXTERNAL_ALARM",
            ),
            # Electronics, memory, firmware, clock, resets, reserved bits set. Sources: aptmbusna
            # aventieshca aventieswm c5isf caltose ei6500 elf2 engelmann_faw eurisii gransystems
            # hcae2 kamheat qheatv2 qwaterv2 sensostar waterstarm qheat.cc.
            (
                AlarmKind.ERROR,
                "MEMORY_ERROR MEMORY_FAILURE FLASH_ERROR CRC_ERROR RAM_ERROR ROM_ERROR "
                "EEPROM1_ERROR CALIBRATION_EEPROM_ERROR METER_HARDWARE_ERROR DSP_HARDWARE_ERROR "
                "HARDWARE_ERROR1 HARDWARE_ERROR2 HARDWARE_ERROR3 ELECTRONICS_ERROR "
                "ERROR_ELECTRONICS_DEFECT TEMPERATURE_ELECTRONICS_ERROR SW_ERROR "
                "CPU_OVERTEMPERATURE RTC_ERROR RTC_INVALID INVALID_METROLOGICAL_TABLE "
                "PROCESSOR_RESET UNEXPECTED_RST RESET CS VOLUME_DETECTION_COILS_DEFECT "
                "RESERVED_BIT_2 RESERVED_BIT_10 RESERVED_BIT_12 RESERVED_BIT_13 RESERVED_BIT_14 "
                "RESERVED_BIT_15 RESERVED_BIT_26",
            ),
            # Sensors and measurement. NO_FLOW is no dry pipe: ultrimis has DRY beside it, and
            # Qundis' F0 ("no flow measurable", its drivers say uncertain) is a fault code.
            # Sources: aventieshca aventieswm c5isf elf2 eurisii hcae2 kamheat qheatv2 qwaterv2
            # rfmamb sensostar ultrimis waterstarm qheat.cc.
            (
                AlarmKind.ERROR,
                "NO_FLOW SENSOR_ERROR SENSOR_BREAK SENSOR_SHORT SENSOR_READ_ERROR "
                "SUPPLY_SENSOR_INTERRUPTED RETURN_SENSOR_INTERRUPTED SHORT_CIRCUIT_SUPPLY_SENSOR "
                "SHORT_CIRCUIT_RETURN_SENSOR ERROR_TEMP_SENSOR_1_CABLE_BREAK "
                "ERROR_TEMP_SENSOR_1_SHORT_CIRCUIT ERROR_TEMP_SENSOR_2_CABLE_BREAK "
                "ERROR_TEMP_SENSOR_2_SHORT_CIRCUIT ERROR_FLOW_MEASUREMENT_SYSTEM_ERROR "
                "ERROR_MEASURING MEASUREMENT MEASUREMENT_ERROR FLOW_METER_FAILURE "
                "RETURN_TEMPERATURE_ERROR SUPPLY_TEMPERATURE_ERROR DIFFERENTIAL_TEMPERATURE_ERROR "
                "DIFFERENTIAL_TEMPERATURE_TOO_LOW TEMP_DIFF_WRONG_POLARITY V1_WRONG_PULSE_FIGURE "
                "V2_WRONG_PULSE_FIGURE",
            ),
            # Outside the meter's range, blocked, flooded (izar's SUBMARINE). Sources: apatorna1
            # aptmbusna c5isf elf2 em24 engelmann_faw izarv2 kaden kamheat kamwater rfmamb ultrimis
            # waterstarm izar.cc.
            (
                AlarmKind.ERROR,
                "MAXIMUM_FLOW MAX_SPEED_EXCEEDED FLOW_ABOVE_Q4 FLOW_INCREASED V2_INCREASED_FLOW "
                "DAILY_ABNORMAL_NOMINAL_FLOW ANNUAL_ABNORMAL_NOMINAL_FLOW OVERLOAD VALUE_OVERLOAD "
                "OVERFLOW UNDERFLOW METER_BLOCKED BLOCKED SUBMARINE HIGH_TEMPERATURE "
                "TEMP_ABOVE_RANGE TEMP_BELOW_RANGE TEMP_OUT_OF_RANGE RH_OUT_OF_RANGE "
                "WRONG_TEMPERATURE LOW_ABIENT_TEMPERATURE SENSOR_T1_ABOVE_MEASURING_RANGE "
                "SENSOR_T2_ABOVE_MEASURING_RANGE SENSOR_T1_BELOW_MEASURING_RANGE "
                "SENSOR_T2_BELOW_MEASURING_RANGE SENSOR_T1_OUTSIDE_MEASURING_RANGE "
                "SENSOR_T2_OUTSIDE_MEASURING_RANGE SENSOR_T3_OUTSIDE_MEASURING_RANGE "
                "T3_ABOVE_MEASURING_RANGE_OR_SWITCHED_OFF T3_BELOW_MEASURING_RANGE_OR_SWITCHED_OFF "
                "V_1_OVERFLOW V_2_OVERFLOW I_1_OVERFLOW I_2_OVERFLOW I_3_OVERFLOW FREQUENCY",
            ),
            # Pressure alarms. Sources: kampress.
            (AlarmKind.ERROR, "DROP SURGE HIGH LOW TRANSIENT COMM_ERROR"),
            # Power and communication. Sources: apatorna1 aptmbusna aventieshca aventieswm c5isf
            # ei6500 elf2 eurisii gransystems iem3000 kaden kamheat lansensm.
            (
                AlarmKind.ERROR,
                "VOLTAGE_INTERRUPTED MBUS_DISCONNECTED DSP_COMMUNICATION_ERROR "
                "V1_COMMUNICATION_ERROR V2_COMMUNICATION_ERROR "
                "INTERNAL_DATA_BUS_COMUNICATION_ERROR WIRELESS_ERROR HF DEVICE_ACCESS_ERROR "
                "COMM_TO_HEAD_FAULT NO_CONNECTION_TO_SMOKE_DETECTOR UART_LIMIT_OVERRUN",
            ),
            # Error codes. Sources: iem3000.
            (
                AlarmKind.ERROR,
                "CODE_101_EEPROM_ERROR CODE_102_NO_CALIBRATION_TABLE "
                "CODE_201_MISMATCH_BETWEEN_FREQUENCY_SETTINGS_AND_FREQUENCY_MEASUREMENTS "
                "CODE_202_PHASE_SEQUENCE_REVERSED CODE_203_PHASE_SEQUENCE_REVERSED "
                "CODE_204_TOTAL_ACTIVE_ENERGY_NEGATIVE_DUE_TO_INCORRECT_V_OR_A_CONNECTIONS "
                "CODE_205_DATE_TIME_RESET_DUE_TO_POWER_FAILUER "
                "CODE_206_PULSE_MISSING_DUE_TO_OVERSPEED_OF_ENERGY_PULSE_OUTPUT "
                "CODE_207_ABNORMAL_INTERNAL_CLOCK_FUNCTION",
            ),
            # Smoke detectors (smoke has no kind of its own here). Sources: ei6500 lansensm tsd2.
            (
                AlarmKind.ERROR,
                "SMOKE SMOKE_SENSOR_END_OF_LIFE SOUNDER_FAULT ALARM_SENSOR_FAULT "
                "OBSTACLE_DETECTOR_FAULT OBSTACLE_DETECTED SMOKE_DETECTOR_FULLY_COVERED "
                "INTERFERENCE_PREVENTING_OBSTACLE_DETECTION CLEANING_RECOMMENDED EOL_REACHED",
            ),
            # A request's application errors; the calibration period is over. Sources: c5isf ei6500.
            (
                AlarmKind.ERROR,
                "UNKNOWN_FIELD_C UNKNOWN_FIELD_CI UNKNOWN_RECORD ACCESS_RIGHT RECORD_SIZE "
                "RECORD_VALUE BAD_PASSWORD VERIFICATION_EXPIRED",
            ),
        )
        for word in words.split()
    }
)

#: Status words that are deliberately no alarm.
NOT_ALARMS: Final[frozenset[str]] = frozenset(
    " ".join(
        (
            # All is well. Sources: every driver's default (69), wmbus.cc, izar.cc (NO_ALARM).
            "OK NO_ALARM",
            # History, not now: past tense, PREV_, P_ ("has been detected"), _PAST.
            # Sources: aptmbusna gransystems izarv2 minomess.
            "WAS_LEAKING WAS_TAMPERED WAS_REMOVED WAS_BACKFLOWING WAS_BLOCKED PREV_LEAKAGE "
            "PREV_SENSOR_FRAUD PREV_MECHANICAL_FRAUD MAGNETIC_FRAUD_PAST P_LEAK P_REVERSE_FLOW "
            "P_MAGNETIC_FIELD P_STRONG_LIGHT P_MBUS_DISCONNECTED P_MINIMUM_FLOW P_MAXIMUM_FLOW "
            "P_DETECTION_WITHOUT_CHANGES P_DETECTOR_ERROR P_PROCESSOR_RESET P_CLOCK_HAND_ERROR",
            # History by the month: it happened this month or the last (the bare word is now).
            # Sources: ultrimisv2 (src/generated_database.cc: it has no drivers/src file).
            "TAMPER_THIS_MONTH LOW_BATTERY_THIS_MONTH DRY_THIS_MONTH NO_FLOW_THIS_MONTH "
            "HIGH_TEMPERATURE_THIS_MONTH BURST_THIS_MONTH REVERSE_THIS_MONTH LEAK_THIS_MONTH "
            "TAMPER_PREV_MONTH LOW_BATTERY_PREV_MONTH DRY_PREV_MONTH NO_FLOW_PREV_MONTH "
            "HIGH_TEMPERATURE_PREV_MONTH BURST_PREV_MONTH REVERSE_PREV_MONTH LEAK_PREV_MONTH",
            # A state or mode, not a fault: busy answering, scale and sensor modes, a door
            # contact. Sources: caltose eltako hcae2 lansendw nzr rfmamb zennerhca wmbus.cc.
            "BUSY APP_BUSY DUAL_SENSOR_MODE PRODUCT_SCALE MODE_2F REMOTE_SENSOR CLOSED OPEN",
            # What the telegram is, not the meter. Sources: apatorna1 (its frame status).
            "SUMMER_TIME INSTALL_FRAME HISTORICAL_INDICATION SERVICE_EVENT TWO_WAY_COM_BLOCK",
            # Little or no use, a low load, a meter sized for another flow.
            # Sources: apatorna1 aptmbusna elf2 eltako kamwater minomess nzr.
            "NO_CONSUMPTION MEASUREMENT_UNCHANGED DETECTION_WITHOUT_CHANGES MINIMUM_FLOW "
            "CURRENT_LOW UNDERSIZED OVERSIZED",
            # Notices the meter calls information (hcae2's "info only", ei6500's a year ahead, a
            # test button, sensostar's OK_ flag). Sources: ei6500 hcae2 lansensm sensostar.
            "ANNO_10_11 WDT EOL_WITHIN_12_MONTH SEODS_NOT_YET_COMPLETED "
            "ENV_CHANGED_SINCE_INSTALLATION MANUAL_TEST OK_INSTRUMENT_RESET",
        )
    ).split()
)

#: Words wmbusmeters makes up itself rather than a driver naming them, and the alarm each is.
GENERATED: Final[tuple[tuple[re.Pattern[str], AlarmKind], ...]] = (
    # <LOOKUP>_<bits>, in hex or decimal: set bits the driver's table has no word for
    # (translatebits.cc); the TPL byte's UNKNOWN_<hex> and TPL_STS_<hex> (wmbus.cc,
    # driver_dynamic.cc).
    (re.compile(r"[A-Z][A-Z0-9_]*_[0-9A-F]+"), AlarmKind.ERROR),
    # DECODING_ERROR_<field>: a field the driver could not decode (meters.cc).
    (re.compile(r"DECODING_ERROR_\w+"), AlarmKind.ERROR),
    # BAD_RULE_<lookup>(from=… mask=…): a driver's own table is wrong (translatebits.cc).
    (re.compile(r"BAD_RULE_\w+\(.*\)"), AlarmKind.ERROR),
)

#: Any other word: a newer driver's, say. Not OK, so an error, as for the problem sensor.
UNKNOWN: Final = AlarmKind.ERROR

#: Fields whose whole value is history (izar.cc's previous_alarms, apatorna1's
#: historic_status): they print the present words, so they are not status texts for this rule.
HISTORY_FIELD_PREFIXES: Final = ("previous_", "historic_")

# A word: up to a space or comma; BAD_RULE_…(from=… mask=…) keeps its parenthesis whole.
_WORD = re.compile(r"[^\s,()]+(?:\([^)]*\))?")


def status_words(status_text: str) -> list[str]:
    """The words of a status text, upper-cased as the tables hold them."""
    return [word.upper() for word in _WORD.findall(status_text)]


def word_kind(word: str) -> AlarmKind | None:
    """The alarm one upper-cased status word raises, None for none."""
    if word in NOT_ALARMS:
        return None
    if (kind := ALARMS.get(word)) is not None:
        return kind
    return next((kind for pattern, kind in GENERATED if pattern.fullmatch(word)), UNKNOWN)


@lru_cache(maxsize=1024)  # a meter repeats its status texts, telegram after telegram
def alarm_kinds(status_text: str) -> frozenset[AlarmKind]:
    """The alarms a status text raises now: empty for OK, "" and history."""
    return frozenset(
        kind for word in status_words(status_text) if (kind := word_kind(word)) is not None
    )


#: The words of the TPL status byte (src/wmbus.cc, decodeTPLStatusByte), in the status of every
#: driver whose status field includes it (INCLUDE_TPL_STATUS).
TPL_STATUS_WORDS: Final = (
    "OK",
    "BUSY",
    "ERROR",
    "ALARM",
    "POWER_LOW",
    "PERMANENT_ERROR",
    "TEMPORARY_ERROR",
)

#: A field whose text is status words, by its name: `status`, `current_status`, `error_flags`,
#: izar's `current_alarms`. A date in one (`error_date`) is no status text.
_STATUS_NAME = re.compile(r"status|alarm|error")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
#: Driver attributes that make a field's words status (xmq; C++ PrintProperty alike).
_STATUS_ATTRIBUTES = frozenset({"STATUS", "INCLUDE_TPL_STATUS", "INJECT_INTO_STATUS"})


@lru_cache(maxsize=4096)  # asked for each field of each telegram; a meter has few names
def is_status_field(field: str) -> bool:
    """Whether a field's text is read for the meter's alarms (history fields are not)."""
    return _STATUS_NAME.search(field) is not None and not field.startswith(HISTORY_FIELD_PREFIXES)


def readings_alarms(readings: Mapping[str, Any]) -> frozenset[AlarmKind] | None:
    """The alarms a telegram's status texts raise now; None if it has no status text (a
    short telegram says nothing about them)."""
    # Runs for every telegram (scripts/benchmark): cached look-ups, no set built for one text.
    kinds: frozenset[AlarmKind] | None = None
    for field, value in readings.items():
        if type(value) is str and is_status_field(field) and not _DATE.match(value):
            text_kinds = alarm_kinds(value)
            kinds = text_kinds if kinds is None else kinds | text_kinds
    return kinds


def words_alarms(words: Iterable[str]) -> frozenset[AlarmKind]:
    """The alarms that status words (as a driver's tables hold them) can raise."""
    return frozenset(kind for text in words for kind in alarm_kinds(text))


def definition_words(definition: str) -> tuple[list[str], list[str]] | None:
    """The driver names (name, then aliases) and the status words a driver definition can
    print (the text of drivers/src/NAME.xmq, or what `--printdriver=NAME` prints): its status
    fields' lookups, its manufacturer TPL bits, and the TPL status byte's words if its status
    includes that byte. None if it is no definition (a binary-only driver prints `info=`)."""
    try:
        document = parse_xmq(definition)
    except (XmqError, RecursionError):
        return None
    drivers = _blocks(document, "driver")
    if len(drivers) != 1:
        return None
    driver = drivers[0]
    names = [n for n in values(driver, "name") if isinstance(n, str)]
    names += [a for aliases in values(driver, "aliases") for a in str(aliases).split(",") if a]
    words: list[str] = []

    def lookup_words(lookup: Xmq) -> list[str]:
        maps = [n for m in _blocks(lookup, "map") for n in values(m, "name")]
        return [str(w) for w in values(lookup, "default_message") + maps]

    for fields in _blocks(driver, "fields"):
        for entry in _blocks(fields, "field"):
            name = next(iter(values(entry, "name")), "")
            attributes = set(",".join(map(str, values(entry, "attributes"))).split(","))
            if "INCLUDE_TPL_STATUS" in attributes:
                words.extend(TPL_STATUS_WORDS)
            if is_status_field(str(name)) or attributes & _STATUS_ATTRIBUTES:
                for lookup in _blocks(entry, "lookup"):
                    words.extend(lookup_words(lookup))
    for bits in _blocks(driver, "mfct_tpl_status_bits"):
        words.extend(lookup_words(bits))
    return names, words


def _blocks(node: Xmq, key: str) -> list[Xmq]:
    """The blocks under `key` (a value where a block belongs is no definition's: skipped)."""
    return [value for value in values(node, key) if isinstance(value, list)]


def definition_alarms(definition: str) -> frozenset[AlarmKind] | None:
    """The alarms a driver definition can raise (definition_words); None if it is none."""
    found = definition_words(definition)
    return None if found is None else words_alarms(found[1])

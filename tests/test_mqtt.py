"""MQTT receivers against a real broker: Debian's mosquitto started by the test, Home
Assistant's own MQTT integration connected to it (its real client, not the harness's mock),
frames published by a real client as ESP32 gateways publish them, decoded by the real
wmbusmeters (2.0.0 and 3.0.0). Frames: wmbusmeters' multical21 test telegrams (Tap 76348799,
total 6.408 m³; Vadden 44556677, total 20.015 m³)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.wmbusmeters.const import DOMAIN, EVENT_TELEGRAM
from custom_components.wmbusmeters.wmbus import (
    RunnerState,
    listener as listener_module,
    mqtt_frames as mqtt_frames_module,
)
from custom_components.wmbusmeters.wmbus.listener import BURST, RATE
from custom_components.wmbusmeters.wmbus.mqtt_frames import MAX_PAYLOAD

from .common import has_value, meter, setup_receiver, start_receiver_flow, until
from .mqtt_broker import Broker
from .test_network import ListenerClock, value_of

TAP = "2A442D2C998734761B168D2091D37CAC21576C7802FF207100041308190000441308190000615B7F616713"
VADDEN = (
    "2D442D2C776655441B168D2083B48D3A2046887802FF20000004132F4E000092013B3D01A1015B028101E7FF0F03"
)
TOPIC = "wmbus/raw"

#: HA's MQTT client, the broker and the receiver talk over 127.0.0.1.
pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def broker(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[Broker]:
    server = Broker(tmp_path)
    await hass.async_add_executor_job(server.start)
    yield server
    await hass.async_add_executor_job(server.stop)


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, broker: Broker, mock_hass_config: None
) -> AsyncIterator[ConfigEntry]:
    """Home Assistant's MQTT integration, connected to the test's broker."""
    entry = MockConfigEntry(
        domain="mqtt",
        data={"broker": "127.0.0.1", "port": broker.port},
        version=2,
        minor_version=1,
    )
    entry.add_to_hass(hass)
    # Reconnects after a lost broker every 10 s in production: sooner here.
    with patch("homeassistant.components.mqtt.client.RECONNECT_INTERVAL_SECONDS", 0.2):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await until(hass, lambda: mqtt.is_connected(hass), "MQTT to connect to the broker")
        yield entry
        await hass.config_entries.async_unload(entry.entry_id)


def mqtt_receiver(
    command: str, topic: str = TOPIC, payload_format: str = "hex", field: str = "data"
) -> MockConfigEntry:
    """An MQTT receiver as the flow saves it, with the Tap and Vadden meters."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"wmbusmeters MQTT {topic}",
        version=1,
        minor_version=2,
        data={
            "command": command,
            "device": "stdin",
            "device_type": "rtlwmbus" if payload_format == "rtlwmbus" else "hex",
            "link_modes": [],
            "mqtt_topic": topic,
            "payload_format": payload_format,
            "frame_field": field,
        },
        unique_id=f"mqtt:{topic}",
        subentries_data=[meter("Tap", "auto", "76348799"), meter("Vadden", "auto", "44556677")],
    )


def gate_totals(entry: ConfigEntry) -> dict[str, int]:
    return entry.runtime_data.supervisor.mqtt.gate.totals()  # type: ignore[no-any-return]


async def subscribed(hass: HomeAssistant, entry: ConfigEntry, broker: Broker, topic: str) -> None:
    """Until the broker has the receiver's subscription: a retained message (which the
    receiver drops: it would be an old frame) reaches it once it has."""
    before = gate_totals(entry)["retained"]
    await hass.async_add_executor_job(broker.publish, [(topic, "retained probe", True)])
    await until(
        hass, lambda: gate_totals(entry)["retained"] > before, f"the subscription to {topic}"
    )


async def publish(hass: HomeAssistant, broker: Broker, *messages: tuple[str, Any]) -> None:
    await hass.async_add_executor_job(
        broker.publish, [(topic, payload, False) for topic, payload in messages]
    )


async def start(
    hass: HomeAssistant, broker: Broker, entry: MockConfigEntry, probe: str = TOPIC
) -> MockConfigEntry:
    """Set up a receiver: until wmbusmeters runs and the broker has its subscription."""
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    await until(hass, lambda: runner.status.state is RunnerState.RUNNING, "wmbusmeters to run")
    await subscribed(hass, entry, broker, probe)
    return entry


@pytest.fixture
async def receiver(
    hass: HomeAssistant, mqtt_entry: ConfigEntry, broker: Broker, wmbusmeters: str
) -> AsyncIterator[ConfigEntry]:
    """A receiver of hex frames on wmbus/raw."""
    entry = await start(hass, broker, mqtt_receiver(wmbusmeters))
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


def receiver_entity(hass: HomeAssistant, entry: ConfigEntry, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor" if key.startswith("mqtt") else "binary_sensor",
        DOMAIN,
        f"{entry.entry_id}_{key}",
    )
    assert entity_id is not None
    return entity_id


async def test_frames_become_values(
    hass: HomeAssistant, mqtt_entry: ConfigEntry, broker: Broker, wmbusmeters: str
) -> None:
    """Gateways' JSON objects, one without RSSI, one with: both meters' totals appear, the
    RSSI is the telegram's, and the receiver's sensors count the frames per topic."""
    receiver = await start(hass, broker, mqtt_receiver(wmbusmeters, payload_format="json"))
    events = async_capture_events(hass, EVENT_TELEGRAM)
    await publish(
        hass,
        broker,
        (TOPIC, json.dumps({"data": TAP})),
        (TOPIC, json.dumps({"data": VADDEN, "rssi": -67, "gateway": "cellar"})),
    )
    await until(hass, lambda: has_value(hass, "sensor.vadden_total"), "Vadden's total")
    assert hass.states.get("sensor.tap_total").state == "6.408"  # type: ignore[union-attr]
    assert hass.states.get("sensor.vadden_total").state == "20.015"  # type: ignore[union-attr]
    by_meter = {e.data["meter_id"]: e.data["fields"] for e in events}
    assert "rssi_dbm" not in by_meter["76348799"]  # its gateway said nothing of it
    assert by_meter["44556677"]["rssi_dbm"] == -67

    frames = receiver_entity(hass, receiver, "mqtt_frames")
    await until(
        hass,
        lambda: hass.states.get(frames).state == "2",  # type: ignore[union-attr]
        "the frames sensor to count both",
    )
    state = hass.states.get(frames)
    assert state is not None
    assert state.attributes["topics"][TOPIC]["accepted"] == 2
    assert state.attributes["topics"][TOPIC]["retained"] == 1  # the probe: dropped
    heard = hass.states.get(receiver_entity(hass, receiver, "mqtt_last_heard"))
    assert heard is not None
    assert heard.state not in ("unknown", "unavailable")
    running = hass.states.get(receiver_entity(hass, receiver, "running"))
    assert running is not None
    assert running.state == "on"
    await hass.config_entries.async_unload(receiver.entry_id)


async def test_what_is_not_a_frame_is_dropped(
    hass: HomeAssistant, receiver: ConfigEntry, broker: Broker
) -> None:
    """Garbage, a cut frame, two frames in one message, shell text, oversize and binary
    payloads: each counted as dropped, none reaches wmbusmeters (no telegram, no restart);
    the frame after them is decoded."""
    runner = receiver.runtime_data.supervisor.runner
    junk: list[tuple[str, Any]] = [
        (TOPIC, "hello"),
        (TOPIC, TAP[:-1]),
        (TOPIC, f"{TAP}\n{VADDEN}"),
        (TOPIC, f"{TAP}; reboot"),
        (TOPIC, b"\xff\xfe\x00" + TAP.encode()),
        (TOPIC, "A" * (MAX_PAYLOAD + 2)),
        (TOPIC, json.dumps({"data": TAP})),  # JSON, but this receiver reads hex
    ]
    await publish(hass, broker, *junk, (TOPIC, VADDEN))
    await until(hass, lambda: has_value(hass, "sensor.vadden_total"), "Vadden's total")
    totals = gate_totals(receiver)
    assert totals["accepted"] == 1
    assert totals["malformed"] + totals["too_long"] == len(junk)
    assert totals["too_long"] == 1
    assert runner.counters.telegrams == 1
    assert runner.counters.restarts == 0
    assert not has_value(hass, "sensor.tap_total")
    dropped = receiver_entity(hass, receiver, "mqtt_dropped")
    await until(
        hass,
        lambda: hass.states.get(dropped).state == str(len(junk) + 1),  # type: ignore[union-attr]
        "the dropped sensor to count the junk and the retained probe",
    )


async def test_one_frame_from_two_gateways_is_decoded_once(
    hass: HomeAssistant,
    mqtt_entry: ConfigEntry,
    broker: Broker,
    wmbusmeters: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Overlapping coverage: the cellar and the attic gateway forward the same frame, the
    weaker first. It is decoded once (the next frame's telegram is the second one), counted
    as a duplicate, and the meter's RSSI is the attic's."""
    entry = mqtt_receiver(wmbusmeters, topic="wmbus/+/raw", payload_format="json")
    await start(hass, broker, entry, "wmbus/probe/raw")
    # Both copies are published back to back in one connection: they come within
    # milliseconds. The wait is longer here than in production (0.5 s) only so that a busy
    # test machine cannot stretch those milliseconds past it; the window for duplicates
    # (2 s) then still covers both.
    monkeypatch.setattr(mqtt_frames_module, "GATHER", 1.5)
    runner = entry.runtime_data.supervisor.runner
    events = async_capture_events(hass, EVENT_TELEGRAM)

    def frame(hex_frame: str, rssi: int, gateway: str) -> str:
        return json.dumps({"data": hex_frame, "rssi": rssi, "gateway": gateway})

    await publish(
        hass,
        broker,
        ("wmbus/cellar/raw", frame(TAP, -91, "cellar")),
        ("wmbus/attic/raw", frame(TAP, -58, "attic")),
    )
    await until(hass, lambda: len(events) == 1, "Tap's telegram")
    await publish(hass, broker, ("wmbus/cellar/raw", frame(VADDEN, -80, "cellar")))
    await until(hass, lambda: len(events) == 2, "Vadden's telegram")
    assert runner.counters.telegrams == 2  # Tap once, then Vadden
    assert events[0].data["fields"]["rssi_dbm"] == -58
    assert events[0].data["fields"]["total_m3"] == 6.408
    topics = entry.runtime_data.supervisor.mqtt.gate.topics
    assert topics["wmbus/attic/raw"].duplicate == 1
    assert topics["wmbus/cellar/raw"].accepted == 2
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_flood_is_limited(
    hass: HomeAssistant, receiver: ConfigEntry, broker: Broker
) -> None:
    """Thousands of frames on one topic: past its rate they are dropped and counted, each
    message accounted for; wmbusmeters is not restarted, and once the topic's rate has
    refilled (the limiter's clock moved on) a frame is decoded again."""
    runner = receiver.runtime_data.supervisor.runner
    clock = ListenerClock()
    # Distinct frames (another access and session number each): the same one is a duplicate.
    flood = [(TOPIC, TAP[:24] + f"{n:04X}" + TAP[28:]) for n in range(3000)]
    totals: dict[str, int] = {}

    def counted() -> bool:
        totals.update(gate_totals(receiver))
        seen = sum(totals[k] for k in ("accepted", "rate_limited", "duplicate", "undelivered"))
        return seen >= len(flood)

    with patch.object(listener_module, "time", clock):
        await publish(hass, broker, *flood)
        await until(hass, counted, "every flooded message counted")
        assert totals["rate_limited"] > 0
        # The burst, and what the rate refilled while the flood came (generous: 10 s of it).
        assert totals["accepted"] <= BURST + RATE * 10
        clock.ahead += 60
        await publish(hass, broker, (TOPIC, VADDEN))
        assert await value_of(hass, "sensor.vadden_total") == "20.015"
    assert runner.counters.restarts == 0


async def test_the_broker_away_and_back(
    hass: HomeAssistant, receiver: ConfigEntry, broker: Broker
) -> None:
    """The broker stops: the receiver's running sensor goes off, wmbusmeters keeps running
    (no restart, its silence timeout is off meanwhile) and no repair of ours is raised (MQTT
    reports its broker itself). The broker is back: MQTT reconnects and resubscribes, the
    sensor is on again, and frames are decoded again."""
    supervisor = receiver.runtime_data.supervisor
    runner = supervisor.runner
    pid = runner.pid
    running = receiver_entity(hass, receiver, "running")
    await publish(hass, broker, (TOPIC, TAP))
    assert await value_of(hass, "sensor.tap_total") == "6.408"

    await hass.async_add_executor_job(broker.stop)
    await until(hass, lambda: not mqtt.is_connected(hass), "MQTT to lose its broker")
    await until(
        hass,
        lambda: hass.states.get(running).state == "off",  # type: ignore[union-attr]
        "the receiver's running sensor to go off",
    )
    assert runner.silence_timeout is None
    assert runner.status.state is RunnerState.RUNNING
    assert not [i for i in ir.async_get(hass).issues.values() if i.domain == DOMAIN]

    await hass.async_add_executor_job(broker.start)
    await until(hass, lambda: mqtt.is_connected(hass), "MQTT to reconnect")
    await until(
        hass,
        lambda: hass.states.get(running).state == "on",  # type: ignore[union-attr]
        "the receiver's running sensor to come on again",
    )
    assert runner.silence_timeout == 60 * 60
    await subscribed(hass, receiver, broker, TOPIC)
    await publish(hass, broker, (TOPIC, VADDEN))
    assert await value_of(hass, "sensor.vadden_total") == "20.015"
    assert runner.pid == pid
    assert runner.counters.restarts == 0
    assert hass.states.get("sensor.tap_total").state == "6.408"  # type: ignore[union-attr]


async def reconfigure(
    hass: HomeAssistant, form: Any, entry: ConfigEntry, topic: str, payload_format: str
) -> Any:
    return await hass.config_entries.flow.async_configure(
        form["flow_id"],
        {
            "command": entry.data["command"],
            "mqtt_topic": topic,
            "payload_format": payload_format,
            "frame_field": "data",
        },
    )


async def test_reconfigure_resubscribes_without_a_restart(
    hass: HomeAssistant, receiver: ConfigEntry, broker: Broker
) -> None:
    """Another topic filter: the receiver follows it at once, wmbusmeters keeps running (same
    process), the old topic is no longer read. Another payload format that wmbusmeters
    reads otherwise (rtl_wmbus lines) restarts it once, with the new lines decoded."""
    runner = receiver.runtime_data.supervisor.runner
    pid = runner.pid
    result = await receiver.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_mqtt_raw"
    result = await reconfigure(hass, result, receiver, "gateways/+/frame", "hex")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await subscribed(hass, receiver, broker, "gateways/probe/frame")
    await publish(hass, broker, (TOPIC, TAP), ("gateways/cellar/frame", VADDEN))
    assert await value_of(hass, "sensor.vadden_total") == "20.015"
    assert not has_value(hass, "sensor.tap_total")  # the old topic: no longer read
    assert runner.pid == pid
    assert runner.counters.restarts == 0

    result = await receiver.start_reconfigure_flow(hass)
    result = await reconfigure(hass, result, receiver, "gateways/+/frame", "rtlwmbus")
    assert result["reason"] == "reconfigure_successful"
    await until(hass, lambda: runner.pid not in (None, pid), "wmbusmeters to restart")
    await until(hass, lambda: runner.status.state is RunnerState.RUNNING, "wmbusmeters to run")
    await publish(
        hass, broker, ("gateways/attic/frame", f"C1;1;1;2026-12-05 10:00:00.000;-60;;;0x{TAP}")
    )
    assert await value_of(hass, "sensor.tap_total") == "6.408"


async def test_the_flow(
    hass: HomeAssistant, mqtt_entry: ConfigEntry, broker: Broker, wmbusmeters: str
) -> None:
    """Add integration → MQTT: a topic MQTT cannot subscribe to and an unusable field name
    are errors; the receiver is created, runs, and a second one on its topic is refused."""
    menu = await start_receiver_flow(hass, "mqtt_raw")
    assert menu["step_id"] == "mqtt_raw"
    form = {
        "command": wmbusmeters,
        "mqtt_topic": "wmbus/#/raw",
        "payload_format": "json",
        "frame_field": "data; rm",
    }
    result = await hass.config_entries.flow.async_configure(menu["flow_id"], form)
    assert result["errors"] == {
        "mqtt_topic": "invalid_topic",
        "frame_field": "invalid_frame_field",
    }
    form |= {"mqtt_topic": "wmbus/raw", "frame_field": "telegram"}
    result = await hass.config_entries.flow.async_configure(menu["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.data["device"] == "stdin"
    assert entry.data["device_type"] == "hex"
    await until(hass, lambda: entry.state is ConfigEntryState.LOADED, "the receiver to load")
    await subscribed(hass, entry, broker, TOPIC)
    again = await start_receiver_flow(hass, "mqtt_raw")
    result = await hass.config_entries.flow.async_configure(again["flow_id"], form)
    assert result["errors"] == {"mqtt_topic": "topic_in_use"}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_no_mqtt_no_receiver(hass: HomeAssistant, wmbusmeters: str) -> None:
    """MQTT is not set up: the step says to set it up first; a receiver saved before (MQTT
    removed since) waits, saying why, instead of failing."""
    menu = await start_receiver_flow(hass, "mqtt_raw")
    assert menu["type"] is FlowResultType.ABORT
    assert menu["reason"] == "mqtt_missing"
    entry = mqtt_receiver(wmbusmeters)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason == "MQTT is not set up in Home Assistant: the MQTT receiver waits for it"


async def test_mqtt_reloaded_under_a_receiver(
    hass: HomeAssistant, receiver: ConfigEntry, mqtt_entry: ConfigEntry, broker: Broker
) -> None:
    """The MQTT integration is reloaded (a changed broker setting does that): frames come
    again on the same subscription, a new topic afterwards replaces the old one (whose
    subscription Home Assistant carried over and the receiver can no longer end: it is not
    read), and once the receiver is unloaded nothing reaches it."""
    supervisor = receiver.runtime_data.supervisor
    assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
    await until(hass, lambda: mqtt.is_connected(hass), "MQTT to reconnect")
    await subscribed(hass, receiver, broker, TOPIC)
    await publish(hass, broker, (TOPIC, TAP))
    assert await value_of(hass, "sensor.tap_total") == "6.408"

    result = await receiver.start_reconfigure_flow(hass)
    result = await reconfigure(hass, result, receiver, "gateways/+/frame", "hex")
    assert result["reason"] == "reconfigure_successful"
    await subscribed(hass, receiver, broker, "gateways/probe/frame")
    before = gate_totals(receiver)
    await publish(hass, broker, (TOPIC, TAP), ("gateways/cellar/frame", VADDEN))
    assert await value_of(hass, "sensor.vadden_total") == "20.015"
    after = gate_totals(receiver)
    assert after["accepted"] == before["accepted"] + 1  # Vadden; the old topic's Tap not read
    assert after["duplicate"] == before["duplicate"]

    await hass.config_entries.async_unload(receiver.entry_id)
    fed: list[bytes] = []
    markers: list[Any] = []
    # Subscribed once the retained "ready" comes; the "end" after the frames (one publisher,
    # one subscriber connection: in order) says they have passed.
    await hass.async_add_executor_job(broker.publish, [("test/marker", "ready", True)])
    unsub = await mqtt.async_subscribe(hass, "test/marker", markers.append)
    await until(hass, lambda: markers, "the test's own subscription")
    with patch.object(supervisor.runner, "feed", fed.append):
        await publish(
            hass, broker, ("gateways/attic/frame", TAP), (TOPIC, TAP), ("test/marker", "end")
        )
        await until(hass, lambda: markers[-1].payload == "end", "the marker after the frames")
    unsub()
    assert fed == []

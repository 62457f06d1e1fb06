"""Network receivers: remote radios send telegram lines to a port of Home Assistant, the
integration's own listener hands the valid ones to the real wmbusmeters (`stdin:rtlwmbus`,
`stdin:hex`). The clients here are the test's own TCP and UDP sockets, sending a recorded
telegram (wmbusmeters' simulations/simulation_c1.txt) as an ESPHome node or rtl_wmbus would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import os
import signal
import socket
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.wmbusmeters.const import DOMAIN
from custom_components.wmbusmeters.wmbus import RunnerState, listener as listener_module

from .common import has_value, meter, setup_receiver, start_receiver_flow, until, until_sent

#: A Multical 21 C1 telegram (no CRCs), total 6.408 m³; and as rtl_wmbus prints it.
HEX = "2A442D2C998734761B168D2091D37CAC21576C7802FF207100041308190000441308190000615B7F616713"
RTL = f"C1;1;1;2026-11-25 16:31:15.332627;92;98;76348799;0x{HEX.lower()}"
TOTAL = "sensor.tap_total"

#: The listener and the test's clients use real sockets on 127.0.0.1.
pytestmark = pytest.mark.usefixtures("socket_enabled")


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def network_entry(
    command: str, protocol: str, port: int, line_format: str, allowed: list[str] | None = None
) -> MockConfigEntry:
    """A network receiver as the flow saves it, with the Tap meter."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"wmbusmeters {protocol} {port}",
        version=1,
        minor_version=2,
        data={
            "command": command,
            "device": "stdin",
            "device_type": line_format,
            "link_modes": [],
            "listen_host": "127.0.0.1",
            "listen_port": port,
            "listen_protocol": protocol,
            "allowed_sources": allowed or [],
        },
        unique_id=f"{protocol}:{port}",
        subentries_data=[meter("Tap", "auto", "76348799")],
    )


@pytest.fixture
async def tcp_receiver(hass: HomeAssistant, wmbusmeters: str) -> AsyncIterator[ConfigEntry]:
    entry = network_entry(wmbusmeters, "tcp", free_port(), "rtlwmbus")
    await setup_receiver(hass, entry)
    await running(hass, entry)
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)


async def running(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Until wmbusmeters runs (setup may return before it does, on 2026.10)."""
    await until(
        hass,
        lambda: entry.runtime_data.supervisor.runner.status.state is RunnerState.RUNNING,
        "wmbusmeters to run",
    )


async def tcp_send(port: int, data: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def value_of(hass: HomeAssistant, entity_id: str) -> str:
    """The entity's state once it has a value."""
    await until(hass, lambda: has_value(hass, entity_id), f"a value of {entity_id}")
    return hass.states.get(entity_id).state  # type: ignore[union-attr]


class ListenerClock:
    """The listener's clock (its rate limit refills by it), moved on by the test: real time
    plus what the test added. Only ever forward."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead

    @staticmethod
    def time() -> float:
        return time.time()


def totals(entry: ConfigEntry) -> dict[str, int]:
    return entry.runtime_data.supervisor.listener.totals()  # type: ignore[no-any-return]


async def test_tcp_lines_become_values(hass: HomeAssistant, tcp_receiver: ConfigEntry) -> None:
    """A remote rtl_wmbus line over TCP: the meter's total appears, the receiver's network
    sensors count it and say when it was heard, per source."""
    port = tcp_receiver.data["listen_port"]
    await tcp_send(port, RTL.encode() + b"\n")
    assert await value_of(hass, TOTAL) == "6.408"

    def sensor(suffix: str) -> State | None:
        return next(
            (s for s in hass.states.async_all("sensor") if s.entity_id.endswith(suffix)), None
        )

    # The receiver's sensors follow once a second: until they count something.
    await until(
        hass,
        lambda: (
            (lines := sensor("_lines_received")) is not None
            and lines.state not in ("0", "unknown", "unavailable")
        ),
        "the lines-received sensor to count the line",
    )
    lines = sensor("_lines_received")
    assert lines is not None
    assert lines.attributes["sources"]["127.0.0.1"]["accepted"] == 1
    heard = next(s for s in hass.states.async_all("sensor") if "last_heard" in s.entity_id)
    assert heard.state not in ("unknown", "unavailable")


async def test_bad_input_changes_nothing_else(
    hass: HomeAssistant, tcp_receiver: ConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Garbage, a 1 MB line, a flood of 10,000 lines in a second and a client that connects
    and never sends: each is dropped and counted, the meter keeps its value, and a good line
    from another connection still gets through."""
    clock = ListenerClock()
    monkeypatch.setattr(listener_module, "time", clock)
    port = tcp_receiver.data["listen_port"]
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    await tcp_send(port, RTL.encode() + b"\n")
    assert await value_of(hass, TOTAL) == "6.408"
    await tcp_send(port, b"\x00\xff garbage; not a telegram\nC1;1;1;x;y;z;76348799;0xZZ\n")
    await tcp_send(port, b"C1;" + b"A" * 1_000_000 + b"\n")
    # 10,000 lines in about a second, one connection: the source's rate lets 200 + 100/s in.
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(100):
        writer.write((RTL + "\n").encode() * 100)
        await writer.drain()
        await asyncio.sleep(0.01)  # the sender's pace: 10,000 lines in about a second
    writer.close()
    await writer.wait_closed()
    await until(
        hass,
        lambda: totals(tcp_receiver)["rate_limited"] + totals(tcp_receiver)["accepted"] >= 10_001,
        "every line of the flood counted",
    )
    counted = totals(tcp_receiver)
    assert counted["malformed"] == 2
    assert counted["too_long"] == 1
    assert counted["rate_limited"] > 9000
    assert hass.states.get(TOTAL).state == "6.408"
    # The silent client holds its connection and nobody else is kept out.
    listener = tcp_receiver.runtime_data.supervisor.listener
    await until(hass, lambda: listener.connections == 1, "the flood's connection to close")
    clock.ahead += 1.0  # a second of rate refilled (the listener's clock, moved on)
    before = totals(tcp_receiver)["accepted"]
    await tcp_send(port, RTL.encode() + b"\n")
    await until(
        hass, lambda: totals(tcp_receiver)["accepted"] > before, "the good line to be accepted"
    )
    assert tcp_receiver.runtime_data.supervisor.runner.status.state.value == "running"
    idle_writer.close()
    await idle_writer.wait_closed()
    del idle_reader


async def test_connection_limit_and_idle_timeout(
    hass: HomeAssistant, tcp_receiver: ConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the connection limit a new client is closed at once; an idle one is closed after
    the idle time and its slot is free again."""
    monkeypatch.setattr(listener_module, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(listener_module, "IDLE_TIMEOUT", 0.5)
    port = tcp_receiver.data["listen_port"]
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    extra_reader = held[2][0]
    assert await asyncio.wait_for(extra_reader.read(), 5) == b""  # closed by the listener
    assert tcp_receiver.runtime_data.supervisor.listener.refused_connections == 1
    for reader, _ in held[:2]:
        assert await asyncio.wait_for(reader.read(), 5) == b""  # idle: closed
    assert tcp_receiver.runtime_data.supervisor.listener.connections == 0
    for _, writer in held:
        writer.close()


async def test_udp_with_allow_list_and_listener_restart(
    hass: HomeAssistant, wmbusmeters: str
) -> None:
    """UDP datagrams of hex lines. A source outside the allow-list is dropped; allowing it (a
    reconfigure) restarts the listener only, wmbusmeters keeps running with the same pid."""
    port = free_port(socket.SOCK_DGRAM)
    entry = network_entry(wmbusmeters, "udp", port, "hex", allowed=["10.0.0.0/8"])
    await setup_receiver(hass, entry)
    runner = entry.runtime_data.supervisor.runner
    await running(hass, entry)
    pid = runner.pid
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(HEX.encode(), ("127.0.0.1", port))
        await until(hass, lambda: totals(entry)["denied"] > 0, "the datagram to be denied")
        assert hass.states.get(TOTAL) is None  # nothing got through
        # The receiver's "dropped" sensor shows it with no other traffic to carry it.
        dropped = f"sensor.wmbusmeters_udp_{port}_network_lines_dropped"
        await until(
            hass,
            lambda: (state := hass.states.get(dropped)) is not None and state.state == "1",
            "the dropped-lines sensor to count the denied datagram",
            # Within the listener's one-second batch, well before the minute's refresh of
            # every receiver sensor (which would carry it anyway).
            timeout=5.0,
        )
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, "allowed_sources": ["127.0.0.1"]}
        )
        await hass.async_block_till_done()
        await until(
            hass,
            lambda: (
                entry.runtime_data.supervisor.listener is not None
                and entry.runtime_data.supervisor.listener.config.allowed
            ),
            "the listener restarted with the new allow-list",
        )
        await until_sent(
            hass,
            lambda: sock.sendto(HEX.encode() + b"\n", ("127.0.0.1", port)),
            lambda: has_value(hass, TOTAL),
            "the datagrams to give the tap its total",
            every=0.5,
        )
        assert hass.states.get(TOTAL).state == "6.408"
        assert runner.pid == pid
    finally:
        sock.close()
        await hass.config_entries.async_unload(entry.entry_id)


async def test_wmbusmeters_restart_keeps_the_listener(
    hass: HomeAssistant, tcp_receiver: ConfigEntry
) -> None:
    """The restart action starts a new wmbusmeters; the port stays open all along (a client
    connected before is still connected) and lines keep flowing."""
    port = tcp_receiver.data["listen_port"]
    listener = tcp_receiver.runtime_data.supervisor.listener
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    runner = tcp_receiver.runtime_data.supervisor.runner
    old_pid = runner.pid
    await hass.services.async_call(DOMAIN, "restart", {}, blocking=True)
    await until(
        hass,
        lambda: runner.pid not in (None, old_pid) and runner.status.state is RunnerState.RUNNING,
        "a new wmbusmeters to run",
    )
    assert tcp_receiver.runtime_data.supervisor.listener is listener
    assert listener.connections == 1

    async def send() -> None:
        writer.write(RTL.encode() + b"\n")
        await writer.drain()

    await until_sent(
        hass,
        send,
        lambda: (total := hass.states.get(TOTAL)) is not None and total.state == "6.408",
        "the lines to reach the new wmbusmeters",
    )
    writer.close()
    await writer.wait_closed()


async def test_network_flow(hass: HomeAssistant, wmbusmeters: str) -> None:
    """The network form: a bad address, a bad allow-list entry and a port in use are refused
    with their own messages; a free port creates the receiver, listening."""
    result = await start_receiver_flow(hass, "network")
    assert result["step_id"] == "network"
    port = free_port()
    form: dict[str, Any] = {
        "command": wmbusmeters,
        "listen_protocol": "tcp",
        "listen_host": "not-an-address",
        "listen_port": port,
        "line_format": "rtlwmbus",
        "allowed_sources": ["192.168.1.0/24", "everyone"],
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {
        "listen_host": "invalid_listen_host",
        "allowed_sources": "invalid_source",
    }
    form |= {"listen_host": "127.0.0.1", "allowed_sources": ["192.168.1.0/24"]}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert result["errors"] == {"listen_port": "port_in_use"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] | {"command": ""} == {
        "command": "",
        "device": "stdin",
        "device_type": "rtlwmbus",
        "link_modes": [],
        "listen_host": "127.0.0.1",
        "listen_port": port,
        "listen_protocol": "tcp",
        "allowed_sources": ["192.168.1.0/24"],
    }
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.runtime_data.supervisor.listener.listening
    # A second receiver on the same port is refused before it ever binds.
    again = await start_receiver_flow(hass, "network")
    again = await hass.config_entries.flow.async_configure(again["flow_id"], form)
    assert again["errors"] == {"listen_port": "port_in_use"}
    await hass.config_entries.async_unload(entry.entry_id)


async def test_fast_tcp_sender_waits_instead_of_losing_lines(
    hass: HomeAssistant, tcp_receiver: ConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TCP sender faster than wmbusmeters reads (its rate limit lifted, as for a node that
    forwards many meters; wmbusmeters held still with SIGSTOP meanwhile): the listener stops
    reading while wmbusmeters' stdin is full, the lines wait in the connection, and once it goes on
    every line reaches it; none is counted undelivered (without the pause, 1 MiB into the
    pipe the rest would be)."""
    monkeypatch.setattr(listener_module, "RATE", float("inf"))
    monkeypatch.setattr(listener_module, "BURST", float("inf"))
    runner = tcp_receiver.runtime_data.supervisor.runner
    total = 12_000  # 1.5 MB: more than wmbusmeters' pipe may hold (MAX_STDIN_BUFFER)
    lines = b"".join(
        f"C1;1;1;2026-11-25 16:31:{n % 60:02d}.{n:06d};92;98;76348799;0x{HEX.lower()}\n".encode()
        for n in range(total)
    )
    assert runner.pid is not None
    listener = tcp_receiver.runtime_data.supervisor.listener
    os.kill(runner.pid, signal.SIGSTOP)
    try:
        sending = asyncio.create_task(tcp_send(tcp_receiver.data["listen_port"], lines))
        # wmbusmeters' stdin fills up: the listener stops reading the connection.
        await until(
            hass,
            lambda: any(
                conn._transport is not None and not conn._transport.is_reading()
                for conn in listener._tcp
            ),
            "the listener to stop reading the sender while wmbusmeters' stdin is full",
        )
        # Held back (in the connection, unread), not dropped.
        assert totals(tcp_receiver)["accepted"] < total
        assert totals(tcp_receiver)["undelivered"] == 0
    finally:
        os.kill(runner.pid, signal.SIGCONT)
    await asyncio.wait_for(sending, 30)  # its end: every line written
    await until(
        hass, lambda: totals(tcp_receiver)["accepted"] >= total, "every line to be accepted"
    )
    assert totals(tcp_receiver)["undelivered"] == 0


async def test_reconfigure_moves_the_port_without_restarting_wmbusmeters(
    hass: HomeAssistant, tcp_receiver: ConfigEntry
) -> None:
    """Reconfigure shows the saved settings; another port: the listener moves there (the old
    port is free again), wmbusmeters keeps its process, and lines sent to the new port count."""
    result = await tcp_receiver.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_network"
    schema = result["data_schema"].schema
    shown = {str(key): key.description["suggested_value"] for key in schema if key.description}
    assert shown["listen_port"] == tcp_receiver.data["listen_port"]
    assert shown["line_format"] == "rtlwmbus"
    old_port, pid = (
        tcp_receiver.data["listen_port"],
        tcp_receiver.runtime_data.supervisor.runner.pid,
    )
    new_port = free_port()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**shown, "listen_port": new_port}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    await until(
        hass,
        lambda: (
            (moved := tcp_receiver.runtime_data.supervisor.listener) is not None
            and moved.bound_port == new_port
        ),
        f"the listener to move to port {new_port}",
    )
    assert tcp_receiver.runtime_data.supervisor.runner.pid == pid
    with pytest.raises(ConnectionRefusedError):
        await tcp_send(old_port, b"x\n")
    await tcp_send(new_port, RTL.encode() + b"\n")
    assert await value_of(hass, TOTAL) == "6.408"


async def test_address_this_machine_does_not_have_is_refused(
    hass: HomeAssistant, wmbusmeters: str
) -> None:
    """An address that is not this machine's (TEST-NET-1) cannot be listened on: the form says
    so instead of saving a receiver that never starts."""
    result = await start_receiver_flow(hass, "network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "command": wmbusmeters,
            "listen_protocol": "udp",
            "listen_host": "192.0.2.1",
            "listen_port": free_port(socket.SOCK_DGRAM),
            "line_format": "hex",
        },
    )
    assert result["errors"] == {"listen_port": "port_not_allowed"}


async def test_port_taken_at_start_retries_setup(hass: HomeAssistant, wmbusmeters: str) -> None:
    """Another program took the port after the receiver was saved: setup is retried later
    (translated reason), and nothing of the receiver is left running meanwhile."""
    port = free_port()
    entry = network_entry(wmbusmeters, "tcp", port, "hex")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.SETUP_RETRY
        assert entry.reason == f"Port {port} is in use by another program"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_unload_with_a_sender_connected_leaves_nothing_behind(
    hass: HomeAssistant, tcp_receiver: ConfigEntry
) -> None:
    """A sender still connected when the receiver unloads: its connection is closed with the
    port and no refresh of the receiver's sensors is left scheduled (Home Assistant's test
    harness fails on a lingering timer). Before: closing the connection scheduled one."""
    port = tcp_receiver.data["listen_port"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(RTL.encode() + b"\n")
    await writer.drain()
    assert await value_of(hass, TOTAL) == "6.408"
    assert await hass.config_entries.async_unload(tcp_receiver.entry_id)
    assert await reader.read() == b""  # closed by the receiver
    writer.close()

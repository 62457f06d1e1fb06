"""A network port for remote receivers: an ESPHome wM-Bus node or a remote `rtl_wmbus` sends
telegrams over TCP or UDP, one per line, and each whole, valid line is handed on (to
wmbusmeters' stdin, which reads them as `stdin:rtlwmbus` or `stdin:hex`).

No netcat, no shell: an asyncio server of our own, so that what reaches wmbusmeters is
checked first. A line is forwarded whole or not at all: too long, not the chosen format, from a
source outside the allow-list or past a source's rate, it is dropped and counted. Several
sources interleave line by line, never inside one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import errno
import ipaddress
import re
import time
from typing import Any, Literal

from .errors import WmbusError

LineFormat = Literal["rtlwmbus", "hex"]
Protocol = Literal["tcp", "udp"]
LINE_FORMATS: tuple[LineFormat, ...] = ("rtlwmbus", "hex")
PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp")

#: A telegram is at most 256 bytes (L field + 255): 512 hex digits, plus rtl_wmbus' fields.
MAX_LINE = 1024
#: Connections held at once; one more is closed at once.
MAX_CONNECTIONS = 16
#: A connection that sends nothing for this long is closed (its slot is freed).
IDLE_TIMEOUT = 300.0
#: Lines per second a source may send (a burst of twice that); more are dropped. A meter
#: sends every few seconds at most, and a node forwards a few dozen meters.
RATE = 100.0
BURST = 200.0
#: Lines of any kind a source may have looked at: this many times its rate of telegrams. Past
#: it a flood is counted unread (a count per read, not a parse per line), so no source can
#: starve the event loop; below it junk costs no telegram its place.
PARSE_FACTOR = 20
#: How often a paused TCP connection looks whether wmbusmeters has caught up (seconds).
BUSY_RETRY = 0.005
#: Sources counted one by one; more are counted together under "other".
MAX_SOURCES = 64

_HEX = re.compile(rb"[0-9A-Fa-f]{20,600}")
# rtl_wmbus: mode;crc ok;3of6 ok;timestamp;rssi;(empty or numbers);id;0x<telegram>
_RTL_FIELD = re.compile(rb"[0-9A-Za-z .:+\-]{0,40}")
_RTL_MODE = re.compile(rb"[A-Za-z0-9]{1,4}")


class ListenerError(WmbusError, OSError):
    """The port cannot be listened on."""

    translation_key = "listen_failed"


class PortInUseError(ListenerError):
    """Another program (or receiver) has the port."""

    translation_key = "port_in_use"


class PortNotAllowedError(ListenerError):
    """A privileged port (below 1024) or an address this machine does not have."""

    translation_key = "port_not_allowed"


def valid_line(line: bytes, line_format: LineFormat) -> bool:
    """Whether a line (without its newline) is one telegram in the chosen format."""
    if line_format == "hex":
        return bool(_HEX.fullmatch(line)) and len(line) % 2 == 0
    fields = line.split(b";")
    if len(fields) != 8 or not _RTL_MODE.fullmatch(fields[0]):
        return False
    if not all(_RTL_FIELD.fullmatch(f) for f in fields[1:7]):
        return False
    telegram = fields[7]
    return telegram[:2] in (b"0x", b"0X") and valid_line(telegram[2:], "hex")


def parse_allowed(sources: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The allow-list: addresses or networks (`192.168.1.50`, `192.168.1.0/24`); ValueError
    names the first one that is neither."""
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in sources if s.strip())


#: What SourceStats counts per source: accepted lines, then each reason a line was dropped.
COUNTERS = ("accepted", "malformed", "too_long", "rate_limited", "denied", "undelivered")
DROPPED = COUNTERS[1:]


@dataclass(slots=True)
class Bucket:
    """A token bucket: `rate` a second, at most `burst` saved up."""

    rate: float
    burst: float
    tokens: float = -1.0  # full at first
    refill: float = field(default_factory=time.monotonic)

    def take(self, wanted: int) -> int:
        """Up to `wanted` tokens: how many there are."""
        if self.tokens < 0:
            self.tokens = self.burst
        now = time.monotonic()
        if now > self.refill:  # (an unlimited rate times no time would be NaN)
            self.tokens = min(self.burst, self.tokens + (now - self.refill) * self.rate)
            self.refill = now
        granted = wanted if self.tokens >= wanted else int(self.tokens)
        self.tokens -= granted
        return granted

    def give_back(self, tokens: int) -> None:
        self.tokens = min(self.burst, self.tokens + tokens)


@dataclass(slots=True)
class SourceStats:
    """What one source sent."""

    accepted: int = 0
    malformed: int = 0
    too_long: int = 0
    rate_limited: int = 0
    denied: int = 0
    undelivered: int = 0
    last_heard: float | None = None  # time.time() of the last accepted line
    #: Telegrams handed on (RATE a second).
    _telegrams: Bucket = field(default_factory=lambda: Bucket(RATE, BURST))
    #: Lines looked at, valid or not (PARSE_FACTOR times that).
    _lines: Bucket = field(
        default_factory=lambda: Bucket(RATE * PARSE_FACTOR, BURST * PARSE_FACTOR)
    )

    def look(self, lines: int) -> int:
        """How many of `lines` lines may be looked at now (asked once per read)."""
        return self._lines.take(lines)

    def unlooked(self, lines: int) -> None:
        """Give back what a read was granted but did not use (blank lines)."""
        self._lines.give_back(lines)

    def admit(self) -> bool:
        """Whether one more valid telegram is within the source's rate."""
        return self._telegrams.take(1) == 1

    def as_dict(self) -> dict[str, int | float | None]:
        """For diagnostics and the receiver's sensors."""
        return {**{k: getattr(self, k) for k in COUNTERS}, "last_heard": self.last_heard}


def bounded_stats[S: SourceStats](table: dict[str, S], source: str, new: Callable[[], S]) -> S:
    """A source's counters in `table`; past MAX_SOURCES sources, one shared "other": a
    sender that makes up addresses or topics cannot grow it."""
    found = table.get(source)
    if found is None:
        if len(table) >= MAX_SOURCES:
            source = "other"
            found = table.get(source)
        if found is None:
            found = table[source] = new()
    return found


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """Where to listen and what is let through."""

    host: str
    port: int
    protocol: Protocol
    line_format: LineFormat
    allowed: tuple[str, ...] = ()


class TelegramListener:
    """Listens on one TCP or UDP port and hands each valid line to `deliver(line)`, which
    returns whether it was taken (wmbusmeters may be restarting: the line is then counted as
    undelivered, never queued for later)."""

    def __init__(
        self,
        config: ListenerConfig,
        deliver: Callable[[bytes], bool],
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        """Prepare; start() opens the port. While `busy()` (wmbusmeters has not read what it
        was given yet), TCP connections stop reading, so their senders wait instead of losing
        lines; UDP has no such brake: its lines are counted undelivered once `deliver`
        refuses."""
        self.config = config
        self._deliver = deliver
        self.busy = busy
        self._allowed = parse_allowed(list(config.allowed))
        self.sources: dict[str, SourceStats] = {}
        self.connections = 0
        self.refused_connections = 0
        self.last_heard: float | None = None
        self._server: asyncio.Server | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._tcp: set[_TcpLines] = set()
        #: Called after counters change (at most once per batch of lines).
        self.on_change: Callable[[], None] | None = None

    @property
    def listening(self) -> bool:
        """Whether the port is open."""
        return self._server is not None or self._transport is not None

    async def start(self) -> None:
        """Open the port; PortInUseError, PortNotAllowedError or ListenerError if it can't."""
        loop = asyncio.get_running_loop()
        # The address the user chose (all interfaces is "0.0.0.0" or "::", said explicitly).
        host = self.config.host
        try:
            if self.config.protocol == "tcp":
                self._server = await loop.create_server(
                    lambda: _TcpLines(self), host, self.config.port, reuse_address=True
                )
            else:
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpLines(self), local_addr=(host, self.config.port)
                )
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise PortInUseError(str(err)) from err
            if err.errno in (errno.EACCES, errno.EADDRNOTAVAIL):  # a privileged port; not ours
                raise PortNotAllowedError(str(err)) from err
            raise ListenerError(str(err)) from err

    async def stop(self) -> None:
        """Close the port and every connection."""
        if self._server is not None:
            self._server.close()
            for conn in list(self._tcp):
                conn.close()
            await self._server.wait_closed()
            self._server = None
        if self._transport is not None:
            protocol = self._transport.get_protocol()
            self._transport.close()
            self._transport = None
            if isinstance(protocol, _UdpLines):
                # The socket is released a loop turn later: the port is free once it is.
                await protocol.closed

    @property
    def bound_port(self) -> int | None:
        """The port really listened on (port 0 picks a free one: tests)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        if self._transport is not None:
            return int(self._transport.get_extra_info("sockname")[1])
        return None

    def stats(self, source: str) -> SourceStats:
        """The counters of a source (bounded: past MAX_SOURCES they are shared as "other")."""
        return bounded_stats(self.sources, source, SourceStats)

    def allowed(self, source: str) -> bool:
        """Whether a source address may send (no allow-list: everyone)."""
        if not self._allowed:
            return True
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self._allowed)

    def take_lines(self, stats: SourceStats, lines: list[bytes]) -> None:
        """Check and hand on complete lines of one source.

        Lines past what a source may have looked at (PARSE_FACTOR times its rate) are counted
        as rate-limited and dropped unread, whatever they hold: a flood costs a count per
        read, not a parse per line, so it cannot starve the event loop (16
        sources at full speed held the API's p99 over 50 ms when every line was parsed). Of
        the lines looked at, valid ones past the source's telegram rate are dropped too.
        """
        # Blank lines (a CRLF sender's, a datagram's last newline) are nobody's business.
        budget = stats.look(len(lines) - lines.count(b"") - lines.count(b"\r"))
        for index, raw in enumerate(lines):
            line = raw.strip()
            if not line:
                continue
            if budget == 0:
                rest = lines[index:]
                stats.rate_limited += len(rest) - rest.count(b"") - rest.count(b"\r")
                break
            budget -= 1
            if len(line) > MAX_LINE:
                # (Over MAX_LINE inside one read; one that spans reads is counted by the
                # connection, outside this budget: each is counted once either way.)
                stats.too_long += 1
            elif not valid_line(line, self.config.line_format):
                stats.malformed += 1
            elif not stats.admit():
                stats.rate_limited += 1
            elif self._deliver(line + b"\n"):
                stats.accepted += 1
                stats.last_heard = self.last_heard = time.time()
            else:
                stats.undelivered += 1
        if budget:
            stats.unlooked(budget)  # whitespace-only lines: granted, never looked at
        self.changed()

    def changed(self) -> None:
        """Counters or connections changed: tell the integration (it batches the updates)."""
        if self.on_change is not None:
            self.on_change()

    def totals(self) -> dict[str, int]:
        """Counters summed over sources."""
        return {k: sum(getattr(s, k) for s in self.sources.values()) for k in COUNTERS}


class _TcpLines(asyncio.Protocol):
    """One TCP connection: bytes split into lines; a line over MAX_LINE is skipped to its end."""

    def __init__(self, listener: TelegramListener) -> None:
        self._listener = listener
        self._buffer = b""
        self._skipping = False
        self._transport: asyncio.Transport | None = None
        self._stats: SourceStats | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if peer else "?"
        listener = self._listener
        stats = listener.stats(source)
        if not listener.allowed(source):
            stats.denied += 1
            transport.close()
            listener.changed()
            return
        if listener.connections >= MAX_CONNECTIONS:
            listener.refused_connections += 1
            transport.close()
            listener.changed()
            return
        listener.connections += 1
        listener._tcp.add(self)
        self._stats = stats
        self._arm_idle()
        listener.changed()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._stats is None:
            return
        self._arm_idle()
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if self._skipping:
            if lines:
                lines.pop(0)  # the rest of an over-long line, up to its newline
                self._skipping = False
            else:
                self._buffer = b""  # still inside it
        if not self._skipping and len(self._buffer) > MAX_LINE:
            # Counted once; what follows up to the newline is dropped with it.
            self._stats.too_long += 1
            self._buffer = b""
            self._skipping = True
        if lines:
            self._listener.take_lines(self._stats, lines)
        if self._listener.busy() and self._transport is not None:
            self._transport.pause_reading()
            asyncio.get_running_loop().call_later(BUSY_RETRY, self._resume_when_free)

    def _resume_when_free(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if self._listener.busy():
            asyncio.get_running_loop().call_later(BUSY_RETRY, self._resume_when_free)
        else:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._stats is not None:
            self._listener.connections -= 1
            self._listener._tcp.discard(self)
            self._stats = None
            self._listener.changed()
        # An unfinished last line is not a line: dropped.


class _UdpLines(asyncio.DatagramProtocol):
    """Each datagram holds one or more lines (the newline at its end is optional)."""

    def __init__(self, listener: TelegramListener) -> None:
        self._listener = listener
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        listener = self._listener
        source = str(addr[0])
        stats = listener.stats(source)
        if not listener.allowed(source):
            stats.denied += 1
            listener.changed()
            return
        listener.take_lines(stats, data.split(b"\n"))

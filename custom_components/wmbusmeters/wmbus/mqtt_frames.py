"""Raw telegrams from MQTT gateways (ESP32 radios, bridges) as wmbusmeters' stdin lines, and
the same frame heard by several gateways decoded once: what the MQTT receiver runs each
message through (FrameGate); the subscription itself is Home Assistant's (mqtt_receiver.py).

A message is one frame, in the receiver's chosen format:
- `hex`: the frame as hex digits (`2A442D2C...`), whitespace around it ignored;
- `json`: an object with the frame as hex in a named field (`{"data": "2A44...", "rssi": -71,
  "gateway": "cellar"}`; `0x` and spaces inside the hex are taken);
- `rtlwmbus`: one rtl_wmbus line, as the network receiver takes them.
Each is checked as the network receiver checks its lines (listener.valid_line: whole, even
hex, bounded length): a message that is not one frame is dropped whole, never cut or joined,
so that nothing but a checked frame reaches wmbusmeters.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
import json
import re
import time
from typing import Final, Literal, TypeGuard

from .listener import (
    BURST,
    MAX_LINE,
    PARSE_FACTOR,
    RATE,
    Bucket,
    LineFormat,
    SourceStats,
    bounded_stats,
    valid_line,
)

PayloadFormat = Literal["hex", "json", "rtlwmbus"]
PAYLOAD_FORMATS: tuple[PayloadFormat, ...] = ("hex", "json", "rtlwmbus")
#: The JSON field a gateway puts the frame in unless the receiver names another.
DEFAULT_FIELD: Final = "data"
#: The largest message looked at (a JSON object with a 256-byte frame and some metadata).
MAX_PAYLOAD: Final = 4096
#: Seconds within which the same frame from another gateway is a duplicate (gateways
#: forward within milliseconds; a meter sends the same reading again after seconds at most
#: every few seconds, with another access number, so another frame).
DUPLICATE_WINDOW: Final = 2.0
#: Frames remembered for duplicates at once (more: the oldest are forgotten first).
MAX_REMEMBERED: Final = 4096
#: A frame that says how well it was heard waits this long (seconds) for the same frame from
#: other gateways, so that the best one's RSSI is what the meter reports; a frame without an
#: RSSI is handed on at once.
GATHER: Final = 0.5
#: Meters whose next decoded telegram gets a gateway's RSSI, at most (oldest forgotten first);
#: an RSSI older than RSSI_AGE seconds is not given (its frame was never decoded).
MAX_PENDING_RSSI: Final = 1024
RSSI_AGE: Final = 10.0
#: Messages a whole subscription may have looked at, in topics' budgets: one noisy topic
#: under a wildcard uses up its own budget, not every gateway's.
GATE_LOOKS: Final = 4
#: A meter's RSSIs waiting for its telegrams, at most (one per frame handed on, in order).
MAX_RSSI_QUEUE: Final = 8
#: A topic is counted under at most this many characters of its name (MQTT allows 64 KiB).
MAX_TOPIC_KEY: Final = 128
_SEPARATORS = re.compile(r"[\s:]")
_RTL_RSSI = re.compile(rb"-?[0-9]{1,3}")
_RSSI_KEYS: Final = ("rssi", "rssi_dbm", "RSSI")
_GATEWAY_KEYS: Final = ("gateway", "name", "device", "source")


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame: the line for wmbusmeters' stdin (without its newline), and what the
    gateway said of it."""

    line: bytes
    #: The frame's hex, upper case: the same frame from two gateways is the same key.
    key: bytes
    rssi: int | None = None
    gateway: str | None = None


def is_payload_format(value: object) -> TypeGuard[PayloadFormat]:
    """Whether a form's value is one of the payload formats."""
    return value in PAYLOAD_FORMATS


def parse_message(
    payload: bytes, payload_format: PayloadFormat, field: str = DEFAULT_FIELD
) -> Frame | None:
    """The frame a message carries, or None if it is not one frame in this format."""
    if len(payload) > MAX_PAYLOAD:
        return None
    if payload_format == "rtlwmbus":
        line = payload.strip()
        if len(line) > MAX_LINE or not valid_line(line, "rtlwmbus"):
            return None
        rssi_field = line.split(b";")[4]
        rssi = int(rssi_field) if _RTL_RSSI.fullmatch(rssi_field) else None
        return Frame(line, line.rsplit(b";", 1)[1][2:].upper(), rssi)
    if payload_format == "hex":
        return _hex_frame(payload.strip())
    return _json_frame(payload, field)


def _json_frame(payload: bytes, field: str) -> Frame | None:
    """A JSON object's frame (hex in `field`) and its gateway's RSSI and name, if any."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError; a payload
        return None  # nested thousands deep exhausts the parser's stack)
    if not isinstance(data, dict) or not isinstance(value := data.get(field), str):
        return None
    text = _SEPARATORS.sub("", value)
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    frame = _hex_frame(text.encode("ascii", "replace"))
    if frame is None:
        return None
    rssi = next((data[k] for k in _RSSI_KEYS if type(data.get(k)) is int), None)
    gateway = next((data[k] for k in _GATEWAY_KEYS if isinstance(data.get(k), str)), None)
    return Frame(
        frame.line,
        frame.key,
        rssi if rssi is not None and -200 <= rssi <= 50 else None,
        gateway[:64] if gateway is not None and gateway.isprintable() else None,
    )


def _hex_frame(text: bytes) -> Frame | None:
    if len(text) > MAX_LINE or not valid_line(text, "hex"):
        return None
    return Frame(text, text.upper())


class Duplicates:
    """Frames already handed on, for DUPLICATE_WINDOW seconds: the same frame from another
    gateway in that time is dropped (and counted); the best RSSI any gateway heard it with is
    kept for it. Bounded: at most MAX_REMEMBERED frames, the oldest forgotten first."""

    def __init__(self, window: float = DUPLICATE_WINDOW, size: int = MAX_REMEMBERED) -> None:
        self.window = window
        self.size = size
        self.dropped = 0
        #: key -> (when first heard, best RSSI)
        self._seen: OrderedDict[bytes, tuple[float, int | None]] = OrderedDict()

    def first(self, frame: Frame, now: float) -> bool:
        """Whether this frame is to be handed on (not heard within the window)."""
        seen = self._seen
        while seen and next(iter(seen.values()))[0] < now - self.window:
            seen.popitem(last=False)
        if (heard := seen.get(frame.key)) is not None:
            best = heard[1]
            if frame.rssi is not None and (best is None or frame.rssi > best):
                seen[frame.key] = (heard[0], frame.rssi)
            self.dropped += 1
            return False
        if len(seen) >= self.size:
            seen.popitem(last=False)
        seen[frame.key] = (now, frame.rssi)
        return True

    def best_rssi(self, frame: Frame) -> int | None:
        """The best RSSI a gateway heard this frame with (while it is remembered)."""
        heard = self._seen.get(frame.key)
        return heard[1] if heard is not None else frame.rssi


#: A topic filter's length at most (MQTT allows 65535 bytes; a gateway's topic is short).
MAX_TOPIC: Final = 256
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def topic_problem(topic: str) -> str | None:
    """Why a topic filter cannot be subscribed to (MQTT 3.1.1 section 4.7: `+` is a whole
    level, `#` the whole last one; no NUL), as a form error key; None when it can."""
    if not topic or len(topic.encode("utf-8", "replace")) > MAX_TOPIC:
        return "invalid_topic"
    if not topic.isprintable():  # (NUL, newlines: nothing a gateway publishes to)
        return "invalid_topic"
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "+" in level and level != "+":
            return "invalid_topic"
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "invalid_topic"
    if topic.startswith("$"):
        return "invalid_topic"  # the broker's own ($SYS): no gateway's frames
    return None


def valid_field_name(field: str) -> bool:
    """A JSON field name the form takes (a gateway's key: letters, digits, underscores)."""
    return bool(_FIELD_NAME.fullmatch(field))


def meter_ids(frame: Frame) -> tuple[str, ...]:
    """The meter ids wmbusmeters may print for a frame's telegram: the link-layer address
    (bytes 4-7, least significant first) and, after a long transport header (CI 0x72), the
    address in it (bytes 11-14): a repeater's or radio module's frame names the meter there."""
    key = frame.key.decode("ascii")
    ids = [_le_id(key[8:16])]
    if key[20:22] == "72" and len(key) >= 30:
        ids.append(_le_id(key[22:30]))
    return tuple(dict.fromkeys(ids))


def _le_id(octets: str) -> str:
    return (octets[6:8] + octets[4:6] + octets[2:4] + octets[0:2]).lower()


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """What an MQTT receiver subscribes to and how its messages are read."""

    topic: str
    payload_format: PayloadFormat
    field: str = DEFAULT_FIELD

    @property
    def line_format(self) -> LineFormat:
        """What wmbusmeters reads on its stdin: rtl_wmbus lines as they came, else hex."""
        return "rtlwmbus" if self.payload_format == "rtlwmbus" else "hex"


#: What TopicStats counts: accepted frames, then each reason one was dropped (a duplicate
#: is not a fault: overlapping gateways send them by design, so it is counted apart).
COUNTERS: Final = ("accepted", "malformed", "too_long", "rate_limited", "retained", "undelivered")
DROPPED: Final = COUNTERS[1:]


@dataclass(slots=True)
class TopicStats(SourceStats):
    """What one topic sent (the network receiver's per-source counters and rate, plus)."""

    retained: int = 0
    duplicate: int = 0

    def as_dict(self) -> dict[str, int | float | None]:
        """For diagnostics and the receiver's sensors."""
        return {
            **{k: getattr(self, k) for k in (*COUNTERS, "duplicate")},
            "last_heard": self.last_heard,
        }


def _better(rssi: int | None, than: int | None) -> bool:
    return rssi is not None and (than is None or rssi > than)


class FrameGate:
    """Each message of a subscription, checked and handed to wmbusmeters once.

    A message is looked at only within its topic's budget (as the network receiver's lines
    are: a flood is counted unread, so it costs a count, not a parse), must be one frame, not
    a retained one (an old frame would come back as a new reading at every reconnect), and
    not a duplicate of one another gateway sent just before. Everything it keeps is bounded:
    MAX_SOURCES topics, MAX_REMEMBERED frames, MAX_PENDING_RSSI meters.
    """

    def __init__(self, config: MqttConfig, deliver: Callable[[bytes], bool]) -> None:
        """`deliver(line)` hands a line to wmbusmeters and says whether it was taken."""
        self.config = config
        self._deliver = deliver
        self.topics: dict[str, TopicStats] = {}
        #: Every message of the subscription, whatever its topic: a wildcard over many topics
        #: gets GATE_LOOKS topics' looks, no more.
        self._all = Bucket(RATE * PARSE_FACTOR * GATE_LOOKS, BURST * PARSE_FACTOR * GATE_LOOKS)
        self.duplicates = Duplicates()
        #: time.time() of the last frame handed on.
        self.last_heard: float | None = None
        #: Frames waiting GATHER for other gateways' copies: key -> (due, best so far, topic).
        self._held: dict[bytes, tuple[float, Frame, TopicStats]] = {}
        #: meter id -> (when, RSSI or None) of each frame handed on, for its telegrams in turn.
        self._rssi: OrderedDict[str, deque[tuple[float, int | None]]] = OrderedDict()

    def stats(self, topic: str) -> TopicStats:
        """A topic's counters (past MAX_SOURCES topics they are shared as "other")."""
        return bounded_stats(self.topics, topic[:MAX_TOPIC_KEY], TopicStats)

    def take(self, topic: str, payload: bytes, *, retained: bool, now: float) -> bool:
        """Look at one message (`now`: a monotonic clock); True when a frame now waits for
        other gateways (the caller calls flush() GATHER seconds later)."""
        stats = self.stats(topic)
        frame = self._checked(stats, payload, retained=retained)
        if frame is None:
            return False
        # Within the topic's rate first: a copy dropped for its rate must not make the next
        # gateway's copy a duplicate.
        if not stats.admit():
            stats.rate_limited += 1
            return False
        if not self.duplicates.first(frame, now):
            stats.duplicate += 1
            held = self._held.get(frame.key)
            if held is not None and _better(frame.rssi, held[1].rssi):
                self._held[frame.key] = (held[0], frame, held[2])
            return False
        if frame.rssi is None:
            self._hand_on(frame, stats, now)
            return False
        if len(self._held) >= MAX_REMEMBERED:  # (only a flood of distinct frames gets here)
            _due, oldest, oldest_stats = self._held.pop(next(iter(self._held)))
            self._hand_on(oldest, oldest_stats, now)
        self._held[frame.key] = (now + GATHER, frame, stats)
        return True

    def _checked(self, stats: TopicStats, payload: bytes, *, retained: bool) -> Frame | None:
        """The message's frame, or None (counted) when it is dropped unread or not one."""
        if not stats.look(1) or not self._all.take(1):
            stats.rate_limited += 1
        elif retained:
            stats.retained += 1
        elif len(payload) > MAX_PAYLOAD:
            stats.too_long += 1
        elif (
            frame := parse_message(payload, self.config.payload_format, self.config.field)
        ) is None:
            stats.malformed += 1
        else:
            return frame
        return None

    def flush(self, now: float) -> float | None:
        """Hand on the held frames whose wait is over (each as the best gateway heard it);
        return when the next one is due, or None."""
        held = self._held
        while held:
            key = next(iter(held))  # (in the order they came: the oldest is due first)
            due, frame, stats = held[key]
            if due > now:
                return due
            del held[key]
            self._hand_on(frame, stats, now)
        return None

    def _hand_on(self, frame: Frame, stats: TopicStats, now: float) -> None:
        if not self._deliver(frame.line + b"\n"):
            stats.undelivered += 1
            return
        stats.accepted += 1
        stats.last_heard = self.last_heard = time.time()
        if self.config.line_format != "hex":
            return  # an rtl_wmbus line carries its RSSI to wmbusmeters itself
        pending = self._rssi
        for meter in meter_ids(frame):
            # One entry per frame, with or without an RSSI: each telegram takes its own.
            queue = pending.get(meter)
            if queue is None:
                queue = pending[meter] = deque(maxlen=MAX_RSSI_QUEUE)
            queue.append((now, frame.rssi))
            pending.move_to_end(meter)
            if len(pending) > MAX_PENDING_RSSI:
                pending.popitem(last=False)

    def rssi_for(self, meter: str, now: float) -> int | None:
        """The RSSI of the frame a meter's telegram was decoded from, if it had one: the
        oldest frame of the meter's still waiting, within RSSI_AGE seconds (older ones were
        never decoded: a wrong key). `now`: the clock take() was given."""
        queue = self._rssi.get(meter)
        while queue:
            when, rssi = queue.popleft()
            if now - when <= RSSI_AGE:
                return rssi
        return None

    def totals(self) -> dict[str, int]:
        """Counters summed over topics."""
        return {
            k: sum(getattr(s, k) for s in self.topics.values()) for k in (*COUNTERS, "duplicate")
        }

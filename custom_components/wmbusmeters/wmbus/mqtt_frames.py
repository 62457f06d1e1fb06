"""Raw telegrams from MQTT gateways (ESP32 radios, bridges) as wmbusmeters' stdin lines, and
the same frame heard by several gateways decoded once (issue 28, groundwork: what the MQTT
receiver will run each message through; the subscription itself is Home Assistant's).

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

from collections import OrderedDict
from dataclasses import dataclass
import json
import re
from typing import Final, Literal

from .listener import MAX_LINE, valid_line

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
_SEPARATORS = re.compile(r"[\s:]")
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
        return Frame(line, line.rsplit(b";", 1)[1][2:].upper())
    if payload_format == "hex":
        return _hex_frame(payload.strip())
    return _json_frame(payload, field)


def _json_frame(payload: bytes, field: str) -> Frame | None:
    """A JSON object's frame (hex in `field`) and its gateway's RSSI and name, if any."""
    try:
        data = json.loads(payload)
    except ValueError:  # (UnicodeDecodeError is one)
        return None
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

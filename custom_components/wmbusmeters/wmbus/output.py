"""Read wmbusmeters' stdout and stderr into callbacks: telegrams and events, counted, a tail kept.

A stderr flood is read at a bounded pace and only counted; a callback that raises is logged and
counted, never the end of reading.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
import logging

from .events import (
    DeviceNotFound,
    Message,
    RunnerEvent,
    RunnerStatus,
    Telegram,
    ValueLimits,
)
from .parse import parse_stderr, parse_stdout, redact

_LOGGER = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
STDERR_TAIL = 200
_READ_CHUNK = 256 * 1024
#: stderr lines per second that are parsed and passed on; beyond it (a flood) only the lines
#: that matter (a missing device, a key problem) are, the rest are counted.
STDERR_BUDGET = 100
#: Pause after each dropped chunk: at most 100 chunks a second are read of a flood (measured
#: by scripts/faults: without it, reading a flood at pipe speed took a whole core).
FLOOD_PAUSE = 0.01
_STDERR_KEYWORDS = (b"ALARM", b"No wmbus device", b"did not find", b"decrypt", b"encrypted")
#: Longest error line kept (last_error, stderr_tail, a status' reason).
MAX_ERROR = 300
#: Refused field names in a log line are cut to this (a name may be as long as a line).
_LOGGED_NAME = 64


@dataclass(slots=True)
class RunnerCounters:
    """What the runner counted (for the caller's diagnostics)."""

    telegrams: int = 0
    restarts: int = 0
    skipped_lines: int = 0
    stderr_lines: int = 0
    #: stderr lines over STDERR_BUDGET, counted and not looked at.
    flooded_lines: int = 0
    #: Exceptions raised by a callback (caught: they never stop the reader).
    callback_errors: int = 0
    #: Reading values outside the runner's ValueLimits (NaN, 1e300, oversize text).
    refused_values: int = 0


def _describe(item: object) -> str:
    """What a callback was handling, for its error's log line (no values: they may be big)."""
    if isinstance(item, Telegram):
        return f"a telegram of meter {item.meter_id} ({len(item.readings)} fields)"
    if isinstance(item, RunnerStatus):
        return f"the state change to {item.state.value}"
    return f"a {type(item).__name__} line"


async def read_lines(
    stream: asyncio.StreamReader,
    on_oversize: Callable[[], None],
    drop_chunk: Callable[[bytes], bool] | None = None,
) -> AsyncIterator[bytes]:
    """Yield lines (without the newline); a line over MAX_LINE bytes is dropped whole.

    Reads large chunks and splits them: far cheaper than readline() per line at high rates.
    `drop_chunk` may discard a whole chunk unsplit (a flood): the line it ends inside is
    dropped too.
    """
    pending = b""
    skipping = False  # inside an oversized line, dropping bytes until its newline
    while chunk := await stream.read(_READ_CHUNK):
        if drop_chunk is not None and drop_chunk(chunk):
            pending = b""
            skipping = True
            # Read a flood at a bounded pace: the writer waits on the pipe, not our CPU.
            await asyncio.sleep(FLOOD_PAUSE)
            continue
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if skipping:
                skipping = False
            elif len(line) > MAX_LINE:
                on_oversize()
            else:
                yield line
        if len(pending) > MAX_LINE:
            if not skipping:
                on_oversize()
            skipping = True
            pending = b""
    if pending and not skipping:
        yield pending


class OutputReader:
    """Pass on what each wmbusmeters run writes to the given callbacks, and count it.

    One reader serves every run: the counters and stderr_tail carry over, last_error and
    last_telegram start again with each run (begin()).
    """

    def __init__(self, *, clock: Callable[[], float], limits: ValueLimits) -> None:
        """Prepare; nothing is read until read_stdout() and read_stderr() run."""
        self._clock = clock
        self._limits = limits
        self.counters = RunnerCounters()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        #: The last error or warning line of the current or last run.
        self.last_error: str | None = None
        #: clock() at the last telegram (or at the start of the run).
        self.last_telegram = 0.0
        self._configured_ids: frozenset[str] = frozenset()
        self._budget_second = 0
        self._budget_used = 0

    def begin(self, meter_ids: Iterable[str]) -> None:
        """A new run starts, configured with these meters (no error yet, no silence yet)."""
        self._configured_ids = frozenset(meter_ids)
        self.last_error = None
        self.last_telegram = self._clock()

    def call[T](self, callback: Callable[[T], None], item: T) -> None:
        """Run a callback; whatever it raises is logged and counted, and supervision and
        reading go on (one bad value must not stop a receiver for good)."""
        try:
            callback(item)
        except Exception:
            self.counters.callback_errors += 1
            if self.counters.callback_errors <= 10 or self.counters.callback_errors % 1000 == 0:
                _LOGGER.exception(
                    "Error handling %s from wmbusmeters (%d so far)",
                    _describe(item),
                    self.counters.callback_errors,
                )

    def _skip(self) -> None:
        self.counters.skipped_lines += 1

    async def read_stdout(
        self,
        stream: asyncio.StreamReader,
        on_telegram: Callable[[Telegram], None],
        on_event: Callable[[RunnerEvent], None],
    ) -> None:
        """Pass on each telegram and message of stdout, to its end."""
        async for line in read_lines(stream, self._skip):
            try:
                item = parse_stdout(line, self._limits)
            except (ValueError, RecursionError):
                self._skip()
                _LOGGER.debug("skipping unreadable stdout line of %d bytes", len(line))
                continue
            if isinstance(item, Telegram):
                if item.discovered and item.meter_id in self._configured_ids:
                    continue  # belt and braces: the catch-all excludes configured ids
                self.counters.telegrams += 1
                self.last_telegram = self._clock()
                if item.refused:
                    self._note_refused(item)
                self.call(on_telegram, item)
            elif isinstance(item, Message):
                self._note_message(item, on_event)

    def _note_refused(self, telegram: Telegram) -> None:
        self.counters.refused_values += len(telegram.refused)
        refused = self.counters.refused_values
        if refused <= 10 or refused % 1000 == 0:
            _LOGGER.warning(
                "Meter %s: values outside the configured limits, passed on as None: %s (%d so far)",
                telegram.meter_id,
                ", ".join(name[:_LOGGED_NAME] for name in telegram.refused[:10]),
                refused,
            )

    def _within_budget(self) -> bool:
        """Whether this second's stderr budget has room for one more line."""
        second = int(self._clock())
        if second != self._budget_second:
            self._budget_second = second
            self._budget_used = 0
        self._budget_used += 1
        return self._budget_used <= STDERR_BUDGET

    def _drop_flood(self, chunk: bytes) -> bool:
        """A whole chunk read while this second's budget is spent, with nothing that matters
        in it, is counted and dropped unsplit: a flood costs a pipe read, not a line loop."""
        if self._budget_second != int(self._clock()) or self._budget_used < STDERR_BUDGET:
            return False
        if any(keyword in chunk for keyword in _STDERR_KEYWORDS):
            return False
        lines = chunk.count(b"\n")
        self.counters.stderr_lines += lines
        self.counters.flooded_lines += lines
        return True

    async def read_stderr(
        self, stream: asyncio.StreamReader, on_event: Callable[[RunnerEvent], None]
    ) -> None:
        """Pass on each event of stderr (within the flood budget), to its end."""
        async for raw in read_lines(stream, self._skip, self._drop_flood):
            self.counters.stderr_lines += 1
            if not self._within_budget() and not any(k in raw for k in _STDERR_KEYWORDS):
                self.counters.flooded_lines += 1
                continue
            line = redact(raw.decode("utf-8", "replace").rstrip())
            if not line:
                continue
            event = parse_stderr(line)
            if isinstance(event, Message):
                self._note_message(event, on_event)
            else:
                self.stderr_tail.append(line[:MAX_ERROR])
                if isinstance(event, DeviceNotFound):
                    self.last_error = line[:MAX_ERROR]
                self.call(on_event, event)

    def _note_message(self, message: Message, on_event: Callable[[RunnerEvent], None]) -> None:
        line = redact(message.line)[:MAX_ERROR]
        if message.stream == "stderr" or message.level != "info":
            self.stderr_tail.append(line if message.stream == "stderr" else f"[stdout] {line}")
        if message.level != "info":
            self.last_error = line
        self.call(
            on_event,
            message if line == message.line else Message(message.stream, message.level, line),
        )

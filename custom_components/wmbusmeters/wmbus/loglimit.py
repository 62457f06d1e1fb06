"""Rate-limited logging: a program printing the same complaint in a tight loop must not fill
the log, the memory or the CPU of the process that reads it (measured: 100,000 lines/s at debug
level took that process from 255 MB to 1.75 GB before this)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
import re
import time

_DIGITS = re.compile(r"[0-9]+")


@dataclass(slots=True)
class _Window:
    start: float
    level: int
    passed: int = 0
    held: int = 0
    sample: str = ""


class LogLimiter:
    """Let `burst` lines "like this" (same level, same text once digits are ignored) through
    per `window` seconds; count the rest, and say "N more like this in M s" once the window
    has passed (at the next such line, or at flush())."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        window: float = 60.0,
        max_kinds: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Limit what goes to `logger`."""
        self._logger = logger
        self._burst = burst
        self._window = window
        self._max_kinds = max_kinds
        self._clock = clock
        self._windows: dict[tuple[int, str], _Window] = {}

    def log(self, level: int, line: str, prefix: str = "wmbusmeters: ") -> None:
        """Log `prefix + line` at `level`, unless too many like it came lately."""
        if not self._logger.isEnabledFor(level):
            return  # cheapest path first: nothing is formatted or kept
        kind = (level, _DIGITS.sub("#", line[:40]))
        now = self._clock()
        window = self._windows.get(kind)
        if window is not None and now - window.start >= self._window:
            self._summarise(window, now)
            window = None
        if window is None:
            if len(self._windows) >= self._max_kinds:
                self.flush()
                kind = (level, "*")  # too many kinds at once: one shared window
                window = self._windows.get(kind)
            if window is None:
                window = self._windows[kind] = _Window(now, level)
        if window.passed < self._burst:
            window.passed += 1
            self._logger.log(level, "%s%s", prefix, line)
        else:
            window.held += 1
            window.sample = line

    def flush(self) -> None:
        """Summarise and close every window that has passed (call it now and then)."""
        now = self._clock()
        for kind, window in list(self._windows.items()):
            if now - window.start >= self._window or len(self._windows) >= self._max_kinds:
                self._summarise(window, now)
                del self._windows[kind]

    def _summarise(self, window: _Window, now: float) -> None:
        if window.held:
            self._logger.log(
                window.level,
                "wmbusmeters: %d more like this in %d s, the last: %s",
                window.held,
                round(now - window.start),
                window.sample[:300],
            )
            window.held = 0

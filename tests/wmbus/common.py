"""Waiting without Home Assistant: for what a runner reports, never for a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import inspect

#: How long a wait goes on before it calls a test failed. A guard against a hang, not a
#: measure: each wait returns the moment its condition holds.
UNTIL_TIMEOUT = 60.0
#: Conditions nothing reports (a process, a file, a socket) are looked at again this often.
RECHECK = 0.05
#: How often an emulated meter sends again while a test waits for what it sends.
RESEND_EVERY = 0.3

#: Waits until a condition holds, or fails naming what it waited for.
type Wait = Callable[[Callable[[], object], str], Awaitable[None]]


async def wait_woken(
    woken: asyncio.Event, condition: Callable[[], object], what: str, timeout: float
) -> None:
    """`condition()` looked at each time `woken` is set, and every RECHECK; fails with `what`
    if it is not true within `timeout` (the event loop's clock, which no test freezes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        woken.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), min(RECHECK, remaining))


class Changes:
    """Waiting for a runner on its own: the callbacks it hands out (`record`, `note`) wake its
    `until`."""

    def __init__(self) -> None:
        self._woken = asyncio.Event()

    def note(self, *_args: object) -> None:
        """Something changed (usable as any callback)."""
        self._woken.set()

    def record[T](self, into: list[T]) -> Callable[[T], None]:
        """A callback that appends what it gets to `into`, and wakes the waiters."""

        def append(item: T) -> None:
            into.append(item)
            self._woken.set()

        return append

    async def until(
        self, condition: Callable[[], object], what: str, timeout: float = UNTIL_TIMEOUT
    ) -> None:
        """Done when `condition()` holds, failed with `what` after `timeout`."""
        await wait_woken(self._woken, condition, what, timeout)


async def until_sent(
    wait: Changes | Wait,
    send: Callable[[], Awaitable[object] | object],
    condition: Callable[[], object],
    what: str,
    every: float = RESEND_EVERY,
) -> None:
    """Wait (`wait`, or a Changes' until) for `condition` while an emulated meter sends, again
    and again as real ones do (every `every` s: the meter's pace, not a wait; a telegram may
    be missed, e.g. while wmbusmeters opens the port). The wait ends on the condition, never
    on the time."""
    if isinstance(wait, Changes):
        wait = wait.until

    async def keep_sending() -> None:
        while True:
            sent = send()
            if inspect.isawaitable(sent):
                await sent
            await asyncio.sleep(every)  # the meter's pace

    sender = asyncio.create_task(keep_sending())
    try:
        await wait(lambda: sender.done() or condition(), what)
        if sender.done():
            sender.result()  # a send that failed: its error
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender

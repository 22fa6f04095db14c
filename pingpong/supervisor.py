"""Child processes for ``pingpong up``: started, their output prefixed, restarted, stopped.

A child that exits on its own is restarted after a second; one that exits
``MAX_RESTARTS`` times within ``RESTART_WINDOW`` seconds stops everything with a clear
message. Stopping is SIGTERM, then SIGKILL after ``STOP_TIMEOUT``, in the order given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

MAX_RESTARTS: Final = 5
"""Exits of one child within ``RESTART_WINDOW`` after which ``up`` gives up."""

RESTART_WINDOW: Final = 60.0
"""Seconds over which a child's exits are counted."""

STOP_TIMEOUT: Final = 15.0
"""Seconds a child gets to stop after SIGTERM before it is killed."""


PR_SET_PDEATHSIG: Final = 1
"""Linux's prctl option: the signal a process gets when its parent dies."""


def _die_with_parent() -> None:
    """In a child, before it runs: on Linux, SIGTERM it when ``up`` dies, even by
    ``kill -9`` (its own session would otherwise keep it running, orphaned)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_line: str | None = None
    proc: asyncio.subprocess.Process | None = None
    exits: deque[float] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """Starts, prefixes, restarts and stops children."""

    def __init__(
        self, out: TextIO = sys.stdout, max_restarts: int = MAX_RESTARTS, restart_delay: float = 1.0
    ) -> None:
        self.max_restarts = max_restarts
        self.restart_delay = restart_delay
        self.out = out
        self.children: list[Child] = []
        self.stopping = False
        self.failed: str | None = None
        self.failure = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._width = 10

    def say(self, name: str, line: str) -> None:
        print(f"{name:<{self._width}} | {line}", file=self.out, flush=True)

    async def start(self, child: Child) -> None:
        if child not in self.children:
            self.children.append(child)
            self._width = max(self._width, len(child.name))
        child.ready.clear()
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env=child.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            preexec_fn=_die_with_parent,
        )
        self.say("up", f"started {child.name} (pid {child.proc.pid})")
        if child.ready_line is None:
            child.ready.set()
        self._spawn(self._pump(child, child.proc))
        self._spawn(self._watch(child, child.proc))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.say(child.name, line)
            if child.ready_line and child.ready_line in line:
                child.ready.set()

    async def _watch(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.stopping:
            return
        now = time.monotonic()
        child.exits.append(now)
        while child.exits and child.exits[0] < now - RESTART_WINDOW:
            child.exits.popleft()
        if len(child.exits) >= self.max_restarts:
            self.failed = (
                f"{child.name} exited {len(child.exits)} times within "
                f"{RESTART_WINDOW:g}s (last status {code}); stopping everything"
            )
            self.say("up", self.failed)
            self.failure.set()
            return
        self.say(
            "up",
            f"{child.name} exited with status {code}; restarting it in {self.restart_delay:g}s",
        )
        await asyncio.sleep(self.restart_delay)
        if not self.stopping:
            await self.start(child)

    async def stop(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            self.say("up", f"{child.name} did not stop within {STOP_TIMEOUT:g}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def stop_all(self, order: list[list[Child]]) -> None:
        self.stopping = True
        for group in order:
            await asyncio.gather(*(self.stop(c) for c in group))
        for task in list(self._tasks):  # the pumps end with their pipes
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, 2)

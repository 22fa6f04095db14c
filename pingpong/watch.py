"""``pingpong watch``: print rallies live, one readable line per event."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TextIO

from nats.aio.msg import Msg

from pingpong import bus, subjects
from pingpong.errors import BadMessageError
from pingpong.messages import (
    RallyAborted,
    RallyEvent,
    RallyFinished,
    RallyStarted,
    RallySwing,
    decode_event,
)
from pingpong.settings import Settings

log = logging.getLogger(__name__)


def describe(event: RallyEvent) -> str:
    """Lines for a person: game id, then what happened (a line a stroke: side, instance,
    result)."""
    match event:
        case RallyStarted():
            return (
                f"{event.game_id} started   by {event.manager} "
                f"(draw after {event.max_rounds} rounds)"
            )
        case RallySwing(strokes=strokes):
            return "\n".join(
                f"{event.game_id} #{s.stroke:<3} {s.side.upper()} --> {s.result:<4} "
                f"{s.instance} {s.latency_ms:.2f}ms"
                + (f" ({s.attempts} tries)" if s.attempts > 1 else "")
                for s in strokes
            )
        case RallyFinished(game=g):
            result = "DRAW" if g.winner is None else f"winner {g.winner.upper()}"
            return (
                f"{g.game_id} finished  {result} after {len(g.strokes)} strokes "
                f"in {g.duration_ms:.1f}ms by {g.manager}"
            )
        case RallyAborted():
            return f"{event.game_id} ABORTED   after {event.strokes} strokes: {event.reason}"
    raise AssertionError(event)  # pragma: no cover


async def watch(
    settings: Settings,
    stop: asyncio.Event,
    *,
    results_only: bool = False,
    out: TextIO = sys.stdout,
    ready: asyncio.Event | None = None,
) -> None:
    """Subscribe to ``rally.>`` (or only results) and print until ``stop``; ``ready`` once on."""
    nc = await bus.connect(settings, settings.instance("watch"))

    async def show(msg: Msg) -> None:
        try:
            line = describe(decode_event(msg.data))
        except BadMessageError as e:
            line = f"? {msg.subject}: {e}"
        print(line, file=out, flush=True)

    subject = subjects.RALLY_FINISHED_ALL if results_only else subjects.RALLY_ALL
    await nc.subscribe(subject, cb=show)
    if results_only:
        await nc.subscribe(subjects.RALLY_ABORTED_ALL, cb=show)
    await bus.sync(nc)
    log.info("watching %s (Ctrl-C to stop)", subject)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await bus.wait_closed(nc)

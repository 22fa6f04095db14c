"""The scoreboard service: the results in the event log folded into the scores.

Two readers (:mod:`scoreboard.reader`), one a kind of result, fold what they read
into the tally (:mod:`scoreboard.logic`), which :class:`~scoreboard.board.Scoreboard`
keeps in memory and in the KV bucket ``SCORES`` with the last stream sequence folded
in. Serves ``scores.get`` (queue group ``scoreboard``).
"""

from __future__ import annotations

import asyncio
import logging

import nats.js.errors
from nats.aio.client import Client

from pingpong import bus, subjects
from pingpong.eventlog import log_configs, wait_for_log
from pingpong.handlers import responder
from pingpong.settings import Settings
from scoreboard.board import Scoreboard, open_bucket
from scoreboard.logic import RESULT_KINDS
from scoreboard.reader import RETRY_WAIT, TRANSIENT, Reader, sleep_or_stop

log = logging.getLogger(__name__)


async def _open(nc: Client, settings: Settings, stop: asyncio.Event) -> Scoreboard | None:
    """Stream, bucket and tally, retrying while JetStream is not there yet."""
    js = nc.jetstream(timeout=2.0)
    configs = log_configs(settings)
    while await wait_for_log(js, configs, stop, update=False):
        try:
            board = Scoreboard(nc, js, await open_bucket(js, settings.stream_replicas), configs)
            await board.load()
            await board.check_log()
        except (*TRANSIENT, nats.js.errors.APIError) as e:
            log.warning("scores bucket not ready (%s); retrying", e)
            await sleep_or_stop(stop, RETRY_WAIT)
        else:
            return board
    return None


async def serve(
    settings: Settings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Keep the scores and serve ``scores.get`` until ``stop``; ``ready`` once serving."""
    instance = settings.instance("scoreboard")
    nc = await bus.connect(settings, instance)
    try:
        board = await _open(nc, settings, stop)
        if board is None:
            return
        await nc.subscribe(
            subjects.SCORES_GET, queue=subjects.SCOREBOARD_QUEUE, cb=responder(board.scores)
        )
        await bus.sync(nc)
        log.info("serving %s, folding %s", subjects.SCORES_GET, " ".join(subjects.RESULTS))
        if ready is not None:
            ready.set()
        await asyncio.gather(*(Reader(board, kind).consume(stop) for kind in RESULT_KINDS))
    finally:
        await bus.wait_closed(nc)
    log.info("stopped")

"""One durable consumer on ``RALLY`` a kind of result, folding what it reads into the scores.

Two readers, one a kind of result: ``finished`` events (consumer ``scoreboard``) and
``aborted`` ones (``scoreboard-aborted``). Each consumer has a single subject filter:
nats-server finds the next message of a consumer with several filters by walking
every matching subject of the stream's block, and with a subject per game that costs
more than the game itself (docs/BENCHMARKS.md).

The tally's sequences are the truth: at start, and whenever a delivery went missing
(a NATS server died with it on the way: the consumer's delivery sequence skips, or
the server delivered more than arrived) or the consumer is gone (its store came back
without it), the consumer is made again from the first stream sequence not yet
counted. An ack of a later event would otherwise ack the missing one too
(``AckPolicy.ALL``), and that game would never be counted. A log that is gone is made
again; a log that went back is read on from its end (:meth:`Scoreboard.rewind`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pingpong import subjects
from pingpong.consumer import Puller, delivered_sequences
from pingpong.eventlog import ensure_log
from scoreboard.board import Scoreboard
from scoreboard.logic import ResultKind, missed

log = logging.getLogger(__name__)

BATCH: Final = 256
"""Events fetched, folded and stored in one write at most."""

GATHER: Final = 0.1
"""Seconds to let events gather once caught up: one KV write per batch, not per game."""

RETRY_WAIT: Final = 1.0
"""Seconds before trying again when JetStream is unavailable."""

TRANSIENT: Final = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
    nats.js.errors.NoStreamResponseError,  # a stream leader lost mid-publish (NATS cluster)
)
"""Errors that pass: NATS or JetStream away for a moment."""


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Reader:
    """One durable consumer on ``RALLY`` with one filter: the results of one kind."""

    def __init__(self, board: Scoreboard, kind: ResultKind) -> None:
        self.board = board
        self.kind = kind
        self.consumer = subjects.scoreboard_consumer(kind)

    async def subscribe(self) -> Puller:
        """The durable consumer, made afresh from the first stream sequence not yet counted
        (the log made again if it is gone, read on from its end if it went back)."""
        js = self.board.js
        try:
            info = await js.stream_info(subjects.STREAM)
        except nats.js.errors.NotFoundError:
            log.warning("the event log %s is gone; making it again", subjects.STREAM)
            problem = await ensure_log(js, self.board.log, update=False)
            if problem is not None:
                raise nats.js.errors.ServiceUnavailableError(description=problem) from None
            info = await js.stream_info(subjects.STREAM)
        self.board.read_log(info.state.last_seq, info.created, self.kind)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(subjects.STREAM, self.consumer)
        config = ConsumerConfig(
            durable_name=self.consumer,
            filter_subject=subjects.rally_results(self.kind),
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.board.tally.cursor(self.kind) + 1,
            ack_wait=30,
            max_ack_pending=10 * BATCH,
        )
        await js.add_consumer(subjects.STREAM, config)
        puller = Puller(self.board.inbox, self.consumer)
        await puller.start()
        return puller

    async def consume(self, stop: asyncio.Event) -> None:
        """Fetch, fold, store, ack until ``stop``; ride out NATS outages."""
        sub: Puller | None = None
        delivered = 0  # the consumer's delivery sequence of the last event that arrived
        try:
            while not stop.is_set():
                try:
                    if sub is None:
                        sub = await self.subscribe()
                        delivered = 0
                    msgs = await sub.fetch(batch=BATCH, timeout=1)  # never empty
                except TimeoutError:  # nothing new within the fetch's timeout
                    lost = await self._lost(delivered) if sub is not None else None
                    if sub is not None and lost is not None:
                        await self._drop(sub, lost)
                        sub = None
                    continue
                except TRANSIENT as e:
                    log.debug("%s fetch failed: %s", self.kind, e)
                    await sleep_or_stop(stop, RETRY_WAIT)
                    continue
                except Exception:  # never let a library surprise end the scoreboard
                    log.exception("%s fetch failed unexpectedly; retrying", self.kind)
                    await sleep_or_stop(stop, RETRY_WAIT)
                    continue
                sequences = [delivered_sequences(m)[1] for m in msgs]
                gap = missed(delivered, sequences)
                if gap is not None:
                    await self._drop(sub, f"delivery {gap} of {self.consumer} never arrived")
                    sub = None
                    continue
                delivered = sequences[-1]
                await self._store(msgs, stop)
                if len(msgs) < BATCH:  # caught up: let the next batch gather
                    await sleep_or_stop(stop, GATHER)
        finally:
            if sub is not None:  # a pull subscription would hold up the drain
                await sub.stop()

    async def _store(self, msgs: list[Msg], stop: asyncio.Event) -> None:
        """Fold and store a batch, then ack it; the same batch until it is stored: a newer
        batch's ack (``AckPolicy.ALL``) would also ack this one, and its games would never
        be counted."""
        tries = 0
        while not stop.is_set():
            try:
                await self.board.store(msgs, self.kind)
                await msgs[-1].ack()  # AckPolicy.ALL: acks the whole batch
                return
            except (*TRANSIENT, nats.js.errors.APIError, RuntimeError) as e:
                tries += 1
                if tries == 1:
                    log.warning(
                        "could not store %d %s events yet (%s); retrying", len(msgs), self.kind, e
                    )
                await sleep_or_stop(stop, RETRY_WAIT)

    async def _drop(self, sub: Puller, why: str) -> None:
        """Say why and unsubscribe; the loop makes the consumer again from the tally's sequence."""
        log.warning(
            "%s; reading %s events again from stream sequence %d",
            why,
            self.kind,
            self.board.tally.cursor(self.kind) + 1,
        )
        await sub.stop()

    async def _lost(self, delivered: int) -> str | None:
        """Why the consumer must be made again, checked when idle: it is gone, or it says it
        delivered past ``delivered``; None if neither."""
        try:
            info = await self.board.js.consumer_info(subjects.STREAM, self.consumer)
        except nats.js.errors.NotFoundError:
            return f"consumer {self.consumer} is gone (its store came back without it?)"
        except (*TRANSIENT, nats.js.errors.APIError):
            return None
        if info.delivered is not None and (info.delivered.consumer_seq or 0) > delivered:
            return "the server delivered events that never arrived (a NATS server went away?)"
        return None

"""The scoreboard service: durable consumers on ``RALLY`` folding results into scores.

Two readers, one a kind of result: ``finished`` events (consumer ``scoreboard``)
and ``aborted`` ones (``scoreboard-aborted``). Each consumer has a single subject
filter: nats-server finds the next message of a consumer with several filters by
walking every matching subject of the stream's block, and with a subject per game
that costs more than the game itself (docs/BENCHMARKS.md).

After each batch a reader writes the tally, with the last stream sequence it
folded in, to the KV bucket ``SCORES`` with compare-and-set, and only then acks
the batch. The tally's sequences are the truth: at start, and whenever a delivery
went missing (a NATS server died with it on the way: the consumer's delivery
sequence skips, or the server delivered more than arrived), the consumer is made
again from the first stream sequence not yet counted. An ack of a later event
would otherwise ack the missing one too (``AckPolicy.ALL``), and that game would
never be counted. Serves ``scores.get`` (queue group ``scoreboard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType
from nats.js.kv import KeyValue

from pingpong import bus, subjects
from pingpong.errors import BadMessageError
from pingpong.eventlog import Puller, delivered_sequences, stream_config, wait_for_stream
from pingpong.handlers import responder
from pingpong.inbox import Inbox
from pingpong.messages import RallyEvent, decode_event, encode
from pingpong.settings import Settings
from scoreboard.logic import RESULT_KINDS, ResultKind, Tally, fold_all, missed

log = logging.getLogger(__name__)

BATCH: Final = 256
"""Events fetched, folded and stored in one write at most."""

GATHER: Final = 0.1
"""Seconds to let events gather once caught up: one KV write per batch, not per game."""

RETRY_WAIT: Final = 1.0
"""Seconds before trying again when JetStream is unavailable."""

_TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
    nats.js.errors.NoStreamResponseError,  # a stream leader lost mid-publish (NATS cluster)
)


class Scoreboard:
    """Keeps the tally in memory and in KV; answers ``scores.get``."""

    def __init__(self, nc: Client, js: JetStreamContext, kv: KeyValue) -> None:
        self.nc = nc
        self.inbox = Inbox(nc)
        self.js = js
        self.kv = kv
        self.tally = Tally()
        self.revision = 0
        self._encoded = encode(self.tally.scores)
        self._writing = asyncio.Lock()  # the readers fold and write one at a time

    async def load(self) -> None:
        """The stored tally, or a fresh one."""
        try:
            entry = await self.kv.get(subjects.SCORES_KEY)
        except nats.js.errors.KeyNotFoundError:
            self.tally, self.revision = Tally(), 0
        else:
            self.tally = Tally.model_validate_json(entry.value or b"{}")
            self.revision = entry.revision or 0
        self._encoded = encode(self.tally.scores)
        s = self.tally.scores
        log.info(
            "scores loaded: %d games, %d aborted, up to stream sequence %d",
            s.games,
            s.aborted,
            s.last_seq,
        )

    async def check_log(self) -> None:
        """Say once if the log dropped events newer than the newest result counted.

        Per kind the cursor of the readers cannot tell (a kind with no recent results
        lags behind), but the newest result counted can: every result after it is one
        the scoreboard never read.
        """
        newest = self.tally.scores.last_seq
        first = (await self.js.stream_info(subjects.STREAM)).state.first_seq
        if first > newest + 1:
            log.warning(
                "the event log dropped stream sequences %d to %d before the scoreboard "
                "read them (past STREAM_MAX_AGE or STREAM_MAX_BYTES, or purged): results "
                "among them are not in the scores",
                newest + 1,
                first - 1,
            )

    def scores(self) -> bytes:
        """``scores.get``: the current :class:`~pingpong.messages.Scores`, encoded once a change."""
        return self._encoded

    def folded(self, tally: Tally, msgs: list[Msg], kind: ResultKind) -> Tally:
        """``tally`` with a batch of ``kind`` events folded in; a malformed event is logged
        and skipped."""
        events: list[tuple[RallyEvent | None, int]] = []
        for msg in msgs:
            seq = delivered_sequences(msg)[0]
            try:
                events.append((decode_event(msg.data), seq))
            except BadMessageError as e:
                log.warning("skipped stream sequence %d (%s): %s", seq, msg.subject, e)
                events.append((None, seq))
        return fold_all(tally, events, kind)

    async def store(self, msgs: list[Msg], kind: ResultKind) -> None:
        """Fold a batch and write it with compare-and-set; reload and refold on a conflict."""
        async with self._writing:
            for _ in range(5):
                new = self.folded(self.tally, msgs, kind)
                if new == self.tally:
                    return
                try:
                    self.revision = await self.kv.update(
                        subjects.SCORES_KEY, encode(new), last=self.revision
                    )
                except nats.js.errors.KeyWrongLastSequenceError:
                    log.warning("scores were written elsewhere; reloading")
                    await self.load()
                    continue
                self.tally = new
                self._encoded = encode(new.scores)
                return
            raise RuntimeError("scores kept changing under us; giving up this batch")

    async def consume(self, stop: asyncio.Event) -> None:
        """Both readers until ``stop``."""
        await asyncio.gather(*(Reader(self, kind).consume(stop) for kind in RESULT_KINDS))


class Reader:
    """One durable consumer on ``RALLY`` with one filter: the results of one kind."""

    def __init__(self, board: Scoreboard, kind: ResultKind) -> None:
        self.board = board
        self.kind = kind
        self.consumer = subjects.scoreboard_consumer(kind)

    async def subscribe(self) -> Puller:
        """The durable consumer, made afresh from the first stream sequence not yet counted."""
        js = self.board.js
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
                    if sub is not None and await self._lost_tail(delivered):
                        await self._drop(sub, "the server delivered events that never arrived")
                        sub = None
                    continue
                except _TRANSIENT as e:
                    log.debug("%s fetch failed: %s", self.kind, e)
                    await _sleep_or_stop(stop, RETRY_WAIT)
                    continue
                except Exception:  # never let a library surprise end the scoreboard
                    log.exception("%s fetch failed unexpectedly; retrying", self.kind)
                    await _sleep_or_stop(stop, RETRY_WAIT)
                    continue
                sequences = [delivered_sequences(m)[1] for m in msgs]
                gap = missed(delivered, sequences)
                if gap is not None:
                    await self._drop(sub, f"delivery {gap} of {self.consumer} never arrived")
                    sub = None
                    continue
                delivered = sequences[-1]
                # The same batch until it is stored: a newer batch's ack (AckPolicy.ALL)
                # would also ack this one, and its games would never be counted.
                tries = 0
                while not stop.is_set():
                    try:
                        await self.board.store(msgs, self.kind)
                        await msgs[-1].ack()  # AckPolicy.ALL: acks the whole batch
                        break
                    except (*_TRANSIENT, nats.js.errors.APIError, RuntimeError) as e:
                        tries += 1
                        if tries == 1:
                            log.warning(
                                "could not store %d %s events yet (%s); retrying",
                                len(msgs),
                                self.kind,
                                e,
                            )
                        await _sleep_or_stop(stop, RETRY_WAIT)
                if len(msgs) < BATCH:  # caught up: let the next batch gather
                    await _sleep_or_stop(stop, GATHER)
        finally:
            if sub is not None:  # a pull subscription would hold up the drain
                await sub.stop()

    async def _drop(self, sub: Puller, why: str) -> None:
        """Say why and unsubscribe; the loop makes the consumer again from the tally's sequence."""
        log.warning(
            "%s (a NATS server went away mid-delivery?); reading %s events again "
            "from stream sequence %d",
            why,
            self.kind,
            self.board.tally.cursor(self.kind) + 1,
        )
        await sub.stop()

    async def _lost_tail(self, delivered: int) -> bool:
        """True when the consumer says it delivered past ``delivered`` (checked when idle)."""
        try:
            info = await self.board.js.consumer_info(subjects.STREAM, self.consumer)
        except (*_TRANSIENT, nats.js.errors.APIError):
            return False
        return info.delivered is not None and (info.delivered.consumer_seq or 0) > delivered


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def open_bucket(js: JetStreamContext, replicas: int) -> KeyValue:
    """The ``SCORES`` bucket, created if missing."""
    try:
        return await js.key_value(subjects.SCORES_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            bucket=subjects.SCORES_BUCKET,
            history=1,
            storage=StorageType.FILE,
            replicas=replicas,
            description="pingpong scores with the last RALLY sequence",
        )


async def _open(nc: Client, settings: Settings, stop: asyncio.Event) -> Scoreboard | None:
    """Stream, bucket and tally, retrying while JetStream is not there yet."""
    js = nc.jetstream(timeout=2.0)
    while await wait_for_stream(js, stream_config(settings), stop, update=False):
        try:
            board = Scoreboard(nc, js, await open_bucket(js, settings.stream_replicas))
            await board.load()
            await board.check_log()
        except (*_TRANSIENT, nats.js.errors.APIError) as e:
            log.warning("scores bucket not ready (%s); retrying", e)
            await _sleep_or_stop(stop, RETRY_WAIT)
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
        await board.consume(stop)
    finally:
        await bus.wait_closed(nc)
    log.info("stopped")

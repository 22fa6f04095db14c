"""The scores in memory and in the KV bucket ``SCORES``; ``scores.get``.

After each batch a reader writes the tally, with the last stream sequence it folded
in, to the bucket with compare-and-set, and only then acks the batch: a restart of
the scoreboard or of NATS neither loses nor double-counts a game.

When the store comes back without the bucket (a lost disk, a fresh volume, a power
cut before its first sync), the bucket is made again and the scores kept in memory
are written to it: they are the newest there are. When the store comes back without
the tail of the log (its last sequence is behind the tally's), see :meth:`rewind`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.kv import KeyValue

from pingpong import subjects
from pingpong.consumer import delivered_sequences
from pingpong.errors import BadMessageError
from pingpong.inbox import Inbox
from pingpong.messages import RallyEvent, decode_event, encode
from scoreboard.logic import ResultKind, Tally, fold_all

log = logging.getLogger(__name__)

WRITE_TRIES: Final = 5
"""Compare-and-set writes of one batch before it is given up (and retried by its reader)."""


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


class Scoreboard:
    """Keeps the tally in memory and in KV; answers ``scores.get``."""

    def __init__(
        self, nc: Client, js: JetStreamContext, kv: KeyValue, log: Sequence[StreamConfig]
    ) -> None:
        self.nc = nc
        self.inbox = Inbox(nc)
        self.js = js
        self.kv = kv
        self.log = log
        """The event log's streams, to make them again if they are gone."""
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

    def read_log(self, last_seq: int, made: datetime | None, kind: ResultKind) -> None:
        """Before reading ``kind`` from the log (made at ``made``, ending at ``last_seq``):
        read on from its end if it went back or was made again (:meth:`rewind`)."""
        tally = self.tally
        if tally.stream is not None and made is not None and made != tally.stream:
            self.rewind(0, made, "was made again (its store came back empty)")
        elif tally.cursor(kind) > last_seq:
            self.rewind(last_seq, made, f"went back to end at stream sequence {last_seq}")
        elif made != tally.stream:
            self.tally = tally.model_copy(update={"stream": made})

    def rewind(self, last_seq: int, made: datetime | None, why: str) -> None:
        """The log went back: it ends at ``last_seq``, before what the tally has read.

        The scores keep every game they counted (each was played and answered), and
        every cursor moves back to the log's end, so the results it stores from now on
        are counted, once each (a game id counted already still counts once). Had the
        log won instead, the scores would forget games that were answered; had the
        cursors stayed, the next results would be skipped as read until the log caught
        up with them.
        """
        log.warning(
            "the event log %s %s; the scores had read up to stream sequence %d: they keep "
            "the games they counted and read on from sequence %d",
            subjects.STREAM,
            why,
            self.tally.scores.last_seq,
            last_seq + 1,
        )
        self.tally = self.tally.rewound(last_seq, made)

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
        """Fold a batch and write it with compare-and-set; reload and refold on a conflict,
        make the bucket again if it is gone."""
        async with self._writing:
            for _ in range(WRITE_TRIES):
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
                except nats.js.errors.NoStreamResponseError:  # no bucket takes the write
                    await self._bucket_again()
                    continue
                self.tally = new
                self._encoded = encode(new.scores)
                return
            raise RuntimeError("scores kept changing under us; giving up this batch")

    async def _bucket_again(self) -> None:
        """The bucket did not take a write: make it again if it is gone (a leader election
        in a cluster answers the same way; then it is there and this changes nothing)."""
        try:
            await self.js.key_value(subjects.SCORES_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            log.warning(
                "the scores bucket %s is gone (its store came back empty?); making it again "
                "with the scores kept here",
                subjects.SCORES_BUCKET,
            )
            self.kv = await open_bucket(self.js, self.log[0].num_replicas or 1)
            self.revision = 0
        else:
            raise nats.js.errors.NoStreamResponseError

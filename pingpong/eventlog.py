"""The event log: two JetStream streams over ``rally.>``.

- ``RALLY``, the results (``rally.*.finished``, ``rally.*.aborted``): every game answered
  is in it. With nats-server's ``sync_interval: always`` (pingpong's default) each is on
  disk before the stream acks it, so a power cut loses none.
- ``STROKES``, the play (``rally.*.started``, ``rally.*.swing``), written to disk in the
  background (``persist_mode: async``): a power cut may lose its last seconds, and the
  stream itself if it was made since. A game's result carries its strokes anyway.

Their configs (:func:`log_configs`), making sure they are there (:func:`ensure_log`,
:func:`wait_for_log`) and again when they are gone (:class:`Keeper`), and reading the
stream's ack of a stored message (:func:`stored_sequence`). Reading the log back is
:mod:`pingpong.consumer`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Final

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PersistMode, StorageType, StreamConfig

from pingpong import subjects
from pingpong.inbox import is_no_responders
from pingpong.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "Keeper",
    "ensure_log",
    "ensure_stream",
    "log_configs",
    "stored_sequence",
    "stream_config",
    "wait_for_log",
]


def stream_config(settings: Settings) -> StreamConfig:
    """``RALLY``, the results, as ``settings`` ask for it."""
    return _log_stream(
        settings,
        subjects.STREAM,
        "pingpong event log: the result of every game, synced before each ack",
        subjects.RESULTS,
        duplicate_window=settings.duplicate_window,
    )


def strokes_config(settings: Settings) -> StreamConfig:
    """``STROKES``, the play, as ``settings`` ask for it (written to disk in the background
    where the server has ``persist_mode``, 2.12 on; synced like the results before)."""
    return _log_stream(
        settings,
        subjects.STROKES_STREAM,
        "pingpong event log: every started and swing event, kept in the background",
        subjects.RALLY_PLAY,
        persist_mode=PersistMode.ASYNC if settings.stream_replicas == 1 else None,
    )


def _log_stream(
    settings: Settings,
    name: str,
    description: str,
    over: Sequence[str],
    **config: object,
) -> StreamConfig:
    return StreamConfig(
        name=name,
        description=description,
        subjects=list(over),
        storage=StorageType.FILE,
        max_age=settings.stream_max_age,
        max_bytes=settings.stream_max_bytes,
        num_replicas=settings.stream_replicas,
        **config,  # type: ignore[arg-type]
    )


def log_configs(settings: Settings) -> tuple[StreamConfig, StreamConfig]:
    """Both streams of the log, in the order they are made: ``RALLY`` first (a ``RALLY``
    of before, over all of ``rally.>``, gives up the play's subjects to ``STROKES``)."""
    return stream_config(settings), strokes_config(settings)


async def ensure_stream(
    js: JetStreamContext, config: StreamConfig, *, update: bool = True
) -> str | None:
    """Create a stream of the log; one that is there with another config is updated to
    ``config`` if ``update``, else taken as it is.

    Only its writer (the manager) updates it, so readers with other settings do not
    undo the writer's limits and duplicate window. None when it is there, else why
    not, in one line: no JetStream, not ready yet (a cluster that is still electing
    its leader answers with a timeout, one still forming may answer "stream not
    found"), or a setting the server cannot meet.
    """
    name = config.name or subjects.STREAM
    try:
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError as refused:  # there with another config?
            try:
                if update:
                    await js.update_stream(config)
                else:
                    await js.stream_info(name)
            except nats.js.errors.NotFoundError:  # it is not there: why the add failed is the news
                raise refused from None
    except (
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
        nats.js.errors.ServiceUnavailableError,
    ) as e:
        return f"JetStream is not available ({type(e).__name__})"
    except nats.js.errors.APIError as e:  # a cluster still forming, or a setting it cannot meet
        return f"JetStream refused stream {name}: {e.description} (error {e.err_code})"
    return None


async def ensure_log(
    js: JetStreamContext, configs: Sequence[StreamConfig], *, update: bool = True
) -> str | None:
    """:func:`ensure_stream` for every stream of the log, in order; the first problem."""
    for config in configs:
        problem = await ensure_stream(js, config, update=update)
        if problem is not None:
            return problem
    return None


STREAM_RETRY: Final = 2.0
"""Seconds between attempts to ensure the log while JetStream is not there."""


async def wait_for_log(
    js: JetStreamContext,
    configs: Sequence[StreamConfig],
    stop: asyncio.Event,
    *,
    update: bool = True,
) -> bool:
    """Ensure the streams of the log (:func:`ensure_log`), retrying until it works (True)
    or ``stop`` (False).

    Says once in the log while it waits: a cluster electing its leader, or a
    server without JetStream.
    """
    waiting = False
    while not stop.is_set():
        problem = await ensure_log(js, configs, update=update)
        if problem is None:
            if waiting:
                log.info("JetStream is back: the event log is ready")
            return True
        if not waiting:
            log.warning("%s: rally events are not stored until it is; retrying", problem)
            waiting = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STREAM_RETRY)
    return False


KEEP_EVERY: Final = 5.0
"""Seconds between two checks that the log's streams are there."""


class Keeper:
    """Makes the streams of the log again when they are gone.

    A store that comes back empty (a lost disk, a fresh volume, a power cut before a
    stream's first sync; ``STROKES`` is never synced on its own) has no streams: without
    this, their writers would write into nothing until a restart. :meth:`check` when a
    stored write met no stream (a cluster electing a stream leader answers the same way;
    then the stream is there, and this does nothing), and every few seconds (:meth:`run`):
    the play is published without an ack, so nothing else would notice.
    """

    def __init__(self, js: JetStreamContext, configs: Sequence[StreamConfig]) -> None:
        self.js = js
        self.configs = configs
        self._again: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """:meth:`check` every :data:`KEEP_EVERY` seconds until ``stop`` (a store that came
        back empty after a restart of the server, with the play's writes unacked)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), KEEP_EVERY)
            if not stop.is_set():
                self.check()

    def check(self) -> None:
        """Make the log's streams again if they are gone (once at a time, in a task)."""
        if self._again is None or self._again.done():
            self._again = asyncio.create_task(self._make_again())

    async def _make_again(self) -> None:
        for config in self.configs:
            name = config.name or subjects.STREAM
            try:
                await self.js.stream_info(name)
                continue  # there: a leader election, or a moment without JetStream
            except nats.js.errors.NotFoundError:
                pass
            except (nats.errors.Error, nats.js.errors.APIError):
                return
            log.warning(
                "the event log's stream %s is gone (its store came back empty?); making it again",
                name,
            )
            problem = await ensure_log(self.js, self.configs)
            if problem is not None:
                log.warning("%s; trying again at the next write", problem)
            return


def stored_sequence(msg: Msg) -> int:
    """The sequence a stream's ack gives a stored message.

    Raises as nats-py's ``JetStreamContext.publish`` does: ``NoStreamResponseError`` for
    the no-responders status (no stream takes the subject), ``APIError`` when the stream
    refuses the message (or the ack is not one).
    """
    if is_no_responders(msg):
        raise nats.js.errors.NoStreamResponseError
    try:
        ack = json.loads(msg.data)
        if "error" in ack:
            raise nats.js.errors.APIError.from_error(ack["error"])
        return int(ack["seq"])
    except (ValueError, TypeError, KeyError):
        raise nats.js.errors.APIError(description=f"not a stream ack: {msg.data[:80]!r}") from None

"""The bits of the event log that need no server."""

from __future__ import annotations

import nats.errors
import pytest
from nats.aio.msg import Msg
from nats.js.api import PersistMode

from pingpong import consumer, eventlog, subjects
from pingpong.settings import DUPLICATE_SPARE, Settings

REPLIES = [
    "$JS.ACK.RALLY.scoreboard.1.4711.42.1764680000000000000.7",  # no domain
    "$JS.ACK.hub.ACCHASH.RALLY.scoreboard.2.4711.42.1764680000000000000.7.rnd",  # domain
    "$JS.ACK._.ACCHASH.RALLY.scoreboard.1.4711.42.1764680000000000000.0",  # 11 tokens
]


@pytest.mark.parametrize("reply", REPLIES)
def test_the_sequences_of_a_delivery_are_the_ones_nats_py_reads(reply: str) -> None:
    msg = Msg(None, subject="rally.g.finished", reply=reply)  # type: ignore[arg-type]
    meta = msg.metadata.sequence
    assert consumer.delivered_sequences(msg) == (meta.stream, meta.consumer) == (4711, 42)


@pytest.mark.parametrize("reply", ["", "_INBOX.abc.1", "$JS.ACK.too.few", "$JS.API.X.a.b.c.d.e.f"])
def test_a_message_that_is_not_a_delivery_has_no_sequences(reply: str) -> None:
    msg = Msg(None, subject="x", reply=reply)  # type: ignore[arg-type]
    with pytest.raises(nats.errors.NotJSMessageError):
        consumer.delivered_sequences(msg)


def test_the_log_keeps_what_the_settings_say_the_results_apart_from_the_play() -> None:
    settings = Settings(stream_max_bytes="64MiB", stream_max_age="12h", stream_replicas=3)
    results, play = eventlog.log_configs(settings)
    assert (results.name, results.subjects) == (subjects.STREAM, list(subjects.RESULTS))
    assert (play.name, play.subjects) == (subjects.STROKES_STREAM, list(subjects.RALLY_PLAY))
    for config in (results, play):
        assert (config.max_bytes, config.max_age, config.num_replicas) == (64 << 20, 43200, 3)
    assert results.persist_mode is None  # synced before each ack (sync_interval: always)
    assert play.persist_mode is None  # async is for one replica only
    assert eventlog.strokes_config(Settings()).persist_mode == PersistMode.ASYNC


def test_the_duplicate_window_covers_the_retries_of_a_store_and_no_more() -> None:
    # a manager retries storing a result for STORE_TIMEOUT: a retry of a stored result
    # must still be dropped, and nats-server keeps every id of the window in memory
    assert (
        eventlog.stream_config(Settings(store_timeout=20)).duplicate_window == 20 + DUPLICATE_SPARE
    )
    assert (
        eventlog.stream_config(Settings(store_timeout=300)).duplicate_window
        == 300 + DUPLICATE_SPARE
    )

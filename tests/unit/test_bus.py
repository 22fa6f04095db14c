"""The bits of NATS plumbing that need no server."""

from __future__ import annotations

import nats.errors
import pytest
from nats.aio.msg import Msg

from pingpong import bus

REPLIES = [
    "$JS.ACK.RALLY.scoreboard.1.4711.42.1764680000000000000.7",  # no domain
    "$JS.ACK.hub.ACCHASH.RALLY.scoreboard.2.4711.42.1764680000000000000.7.rnd",  # domain
    "$JS.ACK._.ACCHASH.RALLY.scoreboard.1.4711.42.1764680000000000000.0",  # 11 tokens
]


@pytest.mark.parametrize("reply", REPLIES)
def test_the_sequences_of_a_delivery_are_the_ones_nats_py_reads(reply: str) -> None:
    msg = Msg(None, subject="rally.g.finished", reply=reply)  # type: ignore[arg-type]
    meta = msg.metadata.sequence
    assert bus.delivered_sequences(msg) == (meta.stream, meta.consumer) == (4711, 42)


@pytest.mark.parametrize("reply", ["", "_INBOX.abc.1", "$JS.ACK.too.few", "$JS.API.X.a.b.c.d.e.f"])
def test_a_message_that_is_not_a_delivery_has_no_sequences(reply: str) -> None:
    msg = Msg(None, subject="x", reply=reply)  # type: ignore[arg-type]
    with pytest.raises(nats.errors.NotJSMessageError):
        bus.delivered_sequences(msg)

"""The early answer's protocol: the shapes both sides rely on."""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from pingpong import early
from pingpong.inbox import Inbox


@pytest.mark.parametrize("reply", ["_INBOX.a.b", "_INBOX.9SxAS1f.42"])
def test_a_reply_subject_of_the_inbox_shape_takes_an_early_answer(reply: str) -> None:
    assert early.takes_early(reply)


@pytest.mark.parametrize("reply", [None, "_INBOX.a", "_INBOX.a.b.c", "reply.a.b", "_INBOXa.b.c"])
def test_a_reply_subject_of_another_shape_gets_no_early_answer(reply: str | None) -> None:
    assert not early.takes_early(reply)


def test_every_reply_subject_the_inbox_makes_takes_an_early_answer() -> None:
    inbox = Inbox(Client())
    replies = [inbox.reply_subject() for _ in range(3)] + [inbox.listen(_ignore) for _ in range(3)]
    assert all(early.takes_early(reply) for reply in replies), replies


def test_the_stored_ack_of_a_reply_is_below_it_and_marked_as_one() -> None:
    reply = Inbox(Client()).reply_subject()
    ack = early.stored_subject(reply, "m1")
    assert ack.startswith(reply + ".")
    assert early.is_stored_ack(ack[len(reply) + 1 :])
    assert not early.is_stored_ack("")


async def _ignore(*_: object) -> None:
    return None

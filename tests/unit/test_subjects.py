"""Subjects that are built from others."""

from __future__ import annotations

import pytest

from pingpong import subjects


@pytest.mark.parametrize("reply", ["_INBOX.a.b", "_INBOX.9SxAS1f.42"])
def test_a_reply_subject_of_the_inbox_shape_takes_an_early_answer(reply: str) -> None:
    assert subjects.early_reply(reply)


@pytest.mark.parametrize("reply", [None, "_INBOX.a", "_INBOX.a.b.c", "reply.a.b", "_INBOXa.b.c"])
def test_a_reply_subject_of_another_shape_gets_no_early_answer(reply: str | None) -> None:
    assert not subjects.early_reply(reply)

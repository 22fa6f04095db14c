"""The end of a game, driven by hand: no event loop, no NATS."""

from __future__ import annotations

from manager.ending import Answer, Ending, Forget, Phase, RetryStore, Store

GAME = b'{"game":1}'


def phase(ending: Ending) -> Phase:
    """The phase as the machine says it now (read anew after each step)."""
    return ending.phase


def test_a_finished_game_is_stored_then_answered_with_the_game() -> None:
    ending = Ending(store_timeout=20)
    assert ending.playing
    assert ending.finish(GAME, now=0.0) == Store(early=False)
    assert phase(ending) is Phase.STORING
    assert ending.stored() == Answer(GAME, (503, ""))
    assert phase(ending) is Phase.ANSWERED


def test_an_early_answer_is_given_with_the_first_store_and_its_ack_ends_the_game() -> None:
    ending = Ending(early=True)
    assert ending.finish(GAME, now=0.0) == Store(early=True)
    assert phase(ending) is Phase.ANSWERED_EARLY  # before either is sent: an ack that
    # comes back before the early answer has left is still read as its ack
    assert ending.stored() == Forget()  # the requester heard this ack: nothing more to send
    assert phase(ending) is Phase.ANSWERED


def test_an_early_answer_the_log_did_not_store_is_answered_again_once_a_retry_stores_it() -> None:
    ending = Ending(early=True, store_timeout=20, retry=0.25)
    ending.finish(GAME, now=0.0)
    assert ending.not_stored(1.0, "no stream") == RetryStore(0.25)
    assert phase(ending) is Phase.STORING
    assert ending.retry_due() == Store(early=False)
    assert ending.tries == 2
    assert ending.stored() == Answer(GAME, (503, ""))


def test_an_early_answer_that_could_not_be_sent_is_answered_once_stored() -> None:
    ending = Ending(early=True)
    assert ending.finish(GAME, now=0.0) == Store(early=True)
    ending.early_not_sent()
    assert phase(ending) is Phase.STORING
    assert ending.stored() == Answer(GAME, (503, ""))


def test_no_early_answer_without_the_log_to_ack_it() -> None:
    ending = Ending(early=True)
    assert ending.finish(GAME, now=0.0, logged=False) == Store(early=False)


def test_a_result_not_stored_within_the_store_timeout_is_answered_503_with_why() -> None:
    ending = Ending(store_timeout=20)
    ending.finish(GAME, now=100.0)
    assert ending.not_stored(110.0, "timeout") == RetryStore(ending.retry)
    ending.retry_due()
    assert ending.not_stored(120.0, "no stream, 2 tries") == Answer(
        None, (503, "no stream, 2 tries")
    )
    assert phase(ending) is Phase.ANSWERED


def test_an_aborted_game_is_stored_then_answered_with_its_own_code_and_reason() -> None:
    ending = Ending(early=True)
    assert ending.abort(504, "took longer than 10s", now=0.0) == Store(early=False)
    assert ending.stored() == Answer(None, (504, "took longer than 10s"))


def test_an_aborted_game_keeps_its_reason_when_it_cannot_be_stored() -> None:
    ending = Ending(store_timeout=1)
    ending.abort(503, "no ping player answered stroke 1", now=0.0)
    assert ending.not_stored(5.0, "could not be stored") == Answer(
        None, (503, "no ping player answered stroke 1")
    )


def test_a_game_ends_once_whatever_comes_after() -> None:
    ending = Ending()
    ending.finish(GAME, now=0.0)
    assert ending.finish(GAME, now=1.0) is None  # a late answer of the rally
    assert ending.abort(504, "timed out", now=1.0) is None  # its timer, already past
    ending.stored()
    assert ending.stored() is None
    assert ending.not_stored(2.0, "late ack") is None
    assert ending.retry_due() is None
    assert ending.fail(500, "bug") is None


def test_a_failure_answers_at_once_in_any_phase_but_answered() -> None:
    for prepare in (
        lambda e: None,
        lambda e: e.abort(503, "no player", now=0.0),
        lambda e: e.finish(GAME, now=0.0),  # answered early
    ):
        ending = Ending(early=True)
        prepare(ending)
        assert ending.fail(500, "internal error") == Answer(None, (500, "internal error"))
        assert phase(ending) is Phase.ANSWERED

"""A viewer's pace, driven by hand: no event loop, no sockets."""

from __future__ import annotations

import pytest

from proxy.pace import GAME_BACKLOG, HEARTBEAT, STUCK_FOR, Pace, PacePhase, Verdict


def pace_phase(pace: Pace) -> PacePhase:
    """The phase as the machine says it now (read anew after each step)."""
    return pace.phase


def test_a_viewer_with_nothing_waiting_is_sent_every_batch() -> None:
    pace = Pace(now=0.0)
    assert [pace.offer(0, t) for t in (0.25, 0.5)] == [Verdict.SEND, Verdict.SEND]
    assert pace_phase(pace) is PacePhase.KEEPING


def test_a_viewer_behind_skips_batches_and_keeps_up_again_once_its_backlog_is_gone() -> None:
    pace = Pace(now=0.0)
    assert pace.offer(500, 1.0) is Verdict.SKIP
    assert pace_phase(pace) is PacePhase.BEHIND
    assert pace.offer(500, 1.0 + STUCK_FOR - 0.1) is Verdict.SKIP
    assert pace.offer(0, 1.0 + STUCK_FOR) is Verdict.SEND
    assert pace_phase(pace) is PacePhase.KEEPING


def test_a_viewer_behind_for_stuck_for_seconds_is_let_go() -> None:
    pace = Pace(now=0.0)
    assert pace.offer(500, 1.0) is Verdict.SKIP
    assert pace.offer(500, 1.0 + STUCK_FOR) is Verdict.DROP
    assert pace_phase(pace) is PacePhase.DROPPED
    assert pace.offer(0, 100.0) is Verdict.DROP  # gone for good


def test_a_viewer_of_one_game_is_sent_every_event_until_its_backlog_passes_the_bound() -> None:
    pace = Pace(now=0.0, complete=True)
    assert pace.offer(0, 0.1) is Verdict.SEND
    assert pace.offer(GAME_BACKLOG, 0.2) is Verdict.SEND  # a long game's burst
    assert pace_phase(pace) is PacePhase.BEHIND
    assert pace.offer(GAME_BACKLOG + 1, 0.3) is Verdict.DROP  # never skipped: let go


def test_a_viewer_of_one_game_with_bytes_waiting_for_stuck_for_seconds_is_let_go() -> None:
    pace = Pace(now=0.0, complete=True)
    assert pace.offer(100, 1.0) is Verdict.SEND
    assert pace.idle(100, 1.0 + STUCK_FOR) is Verdict.DROP


@pytest.mark.parametrize(
    ("quiet", "verdict"), [(HEARTBEAT - 0.1, Verdict.SKIP), (HEARTBEAT, Verdict.SEND)]
)
def test_a_quiet_viewer_is_sent_a_keep_alive_after_the_heartbeat(
    quiet: float, verdict: Verdict
) -> None:
    pace = Pace(now=0.0)
    pace.offer(0, 1.0)
    assert pace.idle(0, 1.0 + quiet) is verdict


def test_a_viewer_stuck_behind_is_let_go_even_when_nothing_more_is_sent_to_it() -> None:
    pace = Pace(now=0.0)
    assert pace.offer(500, 1.0) is Verdict.SKIP
    assert pace.idle(500, 1.0 + STUCK_FOR - 0.1) is Verdict.SKIP
    assert pace.idle(500, 1.0 + STUCK_FOR) is Verdict.DROP
    assert pace_phase(pace) is PacePhase.DROPPED


def test_a_viewer_whose_backlog_went_while_nothing_was_sent_keeps_up_again() -> None:
    pace = Pace(now=0.0)
    assert pace.offer(500, 1.0) is Verdict.SKIP
    assert pace.idle(0, 2.0) is Verdict.SKIP  # nothing to send, but no longer behind
    assert pace_phase(pace) is PacePhase.KEEPING
    assert pace.idle(500, 1.0 + STUCK_FOR) is Verdict.SKIP  # a new backlog: not stuck yet

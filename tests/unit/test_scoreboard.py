from __future__ import annotations

from pingpong.messages import (
    Game,
    RallyAborted,
    RallyFinished,
    RallyStarted,
    Result,
    Stroke,
    now,
)
from pingpong.subjects import Side
from scoreboard import Tally, fold, fold_all
from scoreboard.logic import LAST_GAMES, missed


def finished(game_id: str, strokes: int, winner: Side | None) -> RallyFinished:
    sides: list[Side] = ["ping", "pong"]
    played = tuple(
        Stroke(
            stroke=n,
            side=sides[(n - 1) % 2],
            instance=f"{sides[(n - 1) % 2]}-1",
            result=Result.MISS if (n == strokes and winner) else Result.HIT,
            latency_ms=0.1,
        )
        for n in range(1, strokes + 1)
    )
    return RallyFinished(
        game=Game(
            game_id=game_id,
            strokes=played,
            winner=winner,
            winner_instance=played[-2].instance if winner and strokes > 1 else None,
            manager="m-1",
            duration_ms=1,
            started_at=now(),
        )
    )


def aborted(game_id: str) -> RallyAborted:
    return RallyAborted(game_id=game_id, manager="m-1", reason="gone", strokes=3, at=now())


def test_finished_games_add_up_wins_draws_and_rally_lengths() -> None:
    t = Tally()
    t = fold(t, finished("a", 3, "pong"), 1)
    t = fold(t, finished("b", 6, "ping"), 2)
    t = fold(t, finished("c", 99, None), 3)
    s = t.scores
    assert (s.games, s.wins, s.draws, s.aborted) == (3, {"ping": 1, "pong": 1}, 1, 0)
    assert s.longest_rally == 99
    assert s.average_rally == 36.0
    assert s.wins_by_instance == {"pong-1": 1, "ping-1": 1}
    assert [g.game_id for g in s.last_games] == ["c", "b", "a"]
    assert s.last_seq == 3


def test_an_aborted_game_counts_apart_from_the_games_played() -> None:
    s = fold(Tally(), aborted("x"), 1).scores
    assert (s.games, s.aborted) == (0, 1)
    assert s.last_games[0].outcome == "aborted"


def test_an_event_at_or_below_the_last_sequence_is_not_counted_again() -> None:
    t = fold(Tally(), finished("a", 3, "pong"), 5)
    assert fold(t, finished("b", 3, "pong"), 5) == t
    assert fold(t, finished("b", 3, "pong"), 4) == t


def test_the_same_game_id_counts_once_even_at_a_new_sequence() -> None:
    t = fold(Tally(), finished("a", 3, "pong"), 1)
    again = fold(t, finished("a", 3, "pong"), 2)
    assert again.scores.games == 1
    assert again.scores.last_seq == 2


def test_events_that_are_not_results_only_move_the_sequence() -> None:
    started = RallyStarted(game_id="a", manager="m", max_rounds=99, at=now())
    s = fold(Tally(), started, 7).scores
    assert (s.games, s.last_seq) == (0, 7)


def test_only_the_last_twenty_games_are_listed() -> None:
    t = Tally()
    for n in range(1, 31):
        t = fold(t, finished(f"g{n}", 2, "ping"), n)
    assert len(t.scores.last_games) == LAST_GAMES
    assert t.scores.last_games[0].game_id == "g30"


def test_a_batch_folds_to_the_same_tally_as_its_events_one_by_one() -> None:
    events = [
        (finished("a", 3, "pong"), 4),
        (None, 5),  # unreadable: only its sequence counts
        (aborted("b"), 6),
        (finished("a", 3, "pong"), 7),  # the same game again
        (finished("c", 99, None), 3),  # already folded in
        *((finished(f"g{n}", n % 9 + 1, "ping"), 10 + n) for n in range(30)),
    ]
    one_by_one = Tally()
    for event, seq in events:
        one_by_one = fold(one_by_one, event, seq)
    batched = fold_all(Tally(), events)
    assert batched == one_by_one
    assert (batched.scores.games, batched.scores.aborted, batched.scores.last_seq) == (31, 1, 39)
    assert fold_all(batched, events) is batched  # nothing new


def test_a_batch_that_follows_on_from_the_last_delivery_misses_nothing() -> None:
    assert missed(0, [1, 2, 3]) is None
    assert missed(7, [8]) is None
    assert missed(7, []) is None


def test_a_skipped_delivery_sequence_is_the_first_one_missed() -> None:
    assert missed(7, [9, 10]) == 8
    assert missed(0, [1, 2, 4]) == 3
    assert missed(5, [5, 6]) == 6


def test_each_kind_of_result_has_its_own_cursor_so_neither_reader_skips_the_others_events() -> None:
    t = fold(Tally(), finished("a", 3, "pong"), 10, "finished")
    t = fold(t, aborted("b"), 4, "aborted")  # read later, stored earlier
    assert (t.scores.games, t.scores.aborted) == (1, 1)
    assert (t.cursor("finished"), t.cursor("aborted")) == (10, 4)
    assert t.scores.last_seq == 10
    assert fold(t, aborted("c"), 4, "aborted") == t  # each reader skips what it has read


def test_a_tally_from_before_the_readers_split_reads_both_kinds_on_from_its_last_sequence() -> None:
    old = Tally.model_validate_json(b'{"v":1,"scores":{"games":2,"last_seq":50},"recent":["a"]}')
    assert (old.cursor("finished"), old.cursor("aborted")) == (50, 50)
    assert fold(old, aborted("x"), 50, "aborted") == old
    assert fold(old, aborted("x"), 51, "aborted").scores.aborted == 1


def test_a_log_that_went_back_is_read_on_from_its_end_and_the_scores_keep_their_games() -> None:
    counted = fold_all(Tally(), [(finished("a", 3, "pong"), 40), (finished("b", 5, "ping"), 50)])
    counted = fold(counted, aborted("c"), 45, "aborted")
    rewound = counted.rewound(2)  # the log came back ending at sequence 2
    assert (rewound.scores.games, rewound.scores.aborted) == (2, 1)
    cursors = (rewound.cursor("finished"), rewound.cursor("aborted"), rewound.scores.last_seq)
    assert cursors == (2, 2, 2)
    # the log's next results are new games and count; a game counted before counts once
    after = fold_all(rewound, [(finished("d", 3, "pong"), 3), (finished("a", 3, "pong"), 4)])
    assert after.scores.games == 3
    assert after.cursor("finished") == 4
    assert counted.rewound(60) == counted  # a log that did not go back changes nothing

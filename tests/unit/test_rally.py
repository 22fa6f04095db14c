"""The rally state machine, driven by hand: no event loop, no NATS."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from manager import Limits, Rally
from manager.rally import Ask, Play
from pingpong.errors import GameAbortedError, UnansweredError
from pingpong.messages import LARGEST_MAX_ROUNDS, Result, encode, now
from pingpong.subjects import Side

HIT, MISS = Result.HIT, Result.MISS


def honest(miss_at: int | None = None) -> Callable[[Ask], tuple[Result, ...]]:
    """Players that hit every stroke but ``miss_at``, stopping at their first miss."""

    def answer(ask: Ask) -> tuple[Result, ...]:
        results: list[Result] = []
        for k in range(ask.first, ask.first + 2 * ask.count, 2):
            results.append(MISS if k == miss_at else HIT)
            if k == miss_at:
                break
        return tuple(results)

    return answer


class Table:
    """Plays a rally round by round: every ask answered at once, in the order asked."""

    def __init__(self, limits: Limits, game_id: str = "g") -> None:
        self.rally = Rally(game_id, limits)
        self.asked: list[tuple[Side, int, int]] = []
        self.clock = 100.0

    def play(self, answer: Callable[[Ask], tuple[Result, ...]]) -> list[Play]:
        played: list[Play] = []
        while asks := self.rally.next_asks(self.clock):
            for ask in asks:
                self.asked.append((ask.side, ask.first, ask.count))
                if self.rally.waits_for(ask):
                    self.clock += 0.001
                    instance = f"{ask.side}-{len(self.asked)}"
                    played += self.rally.answer(ask, instance, answer(ask), self.clock)
        return played


def transcript(table: Table) -> list[str]:
    return table.rally.played("m", 1.0, now()).model().transcript().splitlines()


def test_ping_serves_and_the_sides_alternate_until_a_miss() -> None:
    table = Table(Limits(ahead=1))
    table.play(honest(miss_at=3))
    assert table.asked == [("ping", 1, 1), ("pong", 2, 1), ("ping", 3, 1)]
    assert table.rally.over
    assert table.rally.winner == "pong"
    assert table.rally.winner_instance == "pong-2"
    assert transcript(table) == [
        "PING --> HIT",
        "PONG --> HIT",
        "PING --> MISS",
        "The winner is PONG",
    ]


def test_strokes_ahead_are_asked_of_both_sides_at_once_and_the_game_ends_at_the_miss() -> None:
    table = Table(Limits(ahead=16))
    played = table.play(honest(miss_at=6))
    assert table.asked == [("ping", 1, 8), ("pong", 2, 8)]
    assert [(s.stroke, s.side, s.result) for s in played] == [
        (1, "ping", HIT),
        (2, "pong", HIT),
        (3, "ping", HIT),
        (4, "pong", HIT),
        (5, "ping", HIT),
        (6, "pong", MISS),
    ]
    assert table.rally.winner == "ping"
    assert table.rally.winner_instance == "ping-1"


def test_a_rally_longer_than_the_strokes_ahead_asks_again_from_the_next_stroke() -> None:
    table = Table(Limits(ahead=4))
    played = table.play(honest(miss_at=7))
    assert table.asked == [("ping", 1, 2), ("pong", 2, 2), ("ping", 5, 2), ("pong", 6, 2)]
    assert [s.stroke for s in played] == list(range(1, 8))
    assert table.rally.winner == "pong"


def test_a_missed_serve_gives_the_game_to_pong_without_a_winning_stroke() -> None:
    table = Table(Limits())
    played = table.play(honest(miss_at=1))
    assert table.rally.winner == "pong"
    assert table.rally.winner_instance is None
    assert len(played) == 1


def test_the_game_ends_at_a_miss_without_waiting_for_the_other_sides_answer() -> None:
    rally = Rally("g", Limits())
    ping, pong = rally.next_asks(0.0)
    assert rally.answer(ping, "ping-1", (MISS,), 0.001)[0].result is MISS
    assert rally.over
    assert not rally.waits_for(pong)  # its answer, when it comes, is dropped
    assert rally.next_asks(0.002) == []


@pytest.mark.parametrize("ahead", [1, 2, 3, 16, 32, 200])
@pytest.mark.parametrize("rounds", [1, 2, 99, LARGEST_MAX_ROUNDS])
def test_the_cap_without_a_miss_is_a_draw_after_its_rounds_with_every_stroke_asked_once(
    ahead: int, rounds: int
) -> None:
    table = Table(Limits(max_rounds=rounds, ahead=ahead))
    played = table.play(honest())
    strokes = 2 * rounds  # a round is a PING stroke and a PONG stroke, as in the original
    assert [s.stroke for s in played] == list(range(1, strokes + 1))
    assert [s.side for s in played[-2:]] == ["ping", "pong"]
    assert table.rally.over
    assert table.rally.winner is None
    assert transcript(table)[-2:] == ["PONG --> HIT", "DRAW"]
    asked = sorted(first + 2 * i for _, first, count in table.asked for i in range(count))
    assert asked == list(range(1, strokes + 1))


def test_strokes_come_out_in_order_whichever_side_answers_first() -> None:
    rally = Rally("g", Limits(ahead=4))
    ping, pong = rally.next_asks(0.0)
    assert rally.answer(pong, "pong-1", (HIT, MISS), 0.001) == []  # stroke 1 is ping's
    played = rally.answer(ping, "ping-1", (HIT, HIT), 0.002)
    assert [(s.stroke, s.side, s.result) for s in played] == [
        (1, "ping", HIT),
        (2, "pong", HIT),
        (3, "ping", HIT),
        (4, "pong", MISS),
    ]
    assert rally.winner == "ping"


TIMEOUT = UnansweredError("timeout after 0.5s", timed_out=True)
NOBODY = UnansweredError("no responders")


def test_a_swing_that_fails_at_once_is_asked_again_after_a_growing_backoff() -> None:
    rally = Rally("g", Limits(empty_retries=3, backoff=0.01, ahead=1))
    (ping,) = rally.next_asks(0.0)
    rally.answer(ping, "ping-1", (HIT,), 0.001)
    (pong,) = rally.next_asks(0.001)
    assert rally.failed(pong, NOBODY) == 0.01
    assert rally.failed(pong, NOBODY) == 0.02
    assert rally.waits_for(pong)
    (stroke,) = rally.answer(pong, "pong-1", (HIT,), 0.05)
    assert stroke.attempts == 3
    (ping,) = rally.next_asks(0.05)
    rally.answer(ping, "ping-1", (MISS,), 0.06)
    assert rally.winner == "pong"


def test_the_backoff_stops_growing_at_its_maximum() -> None:
    rally = Rally("g", Limits(empty_retries=10, backoff=0.1, max_backoff=0.3))
    ping, _ = rally.next_asks(0.0)
    assert [rally.failed(ping, NOBODY) for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]


def test_a_swing_that_timed_out_is_asked_again_at_once_and_its_first_answer_counts() -> None:
    rally = Rally("g", Limits(retries=15, ahead=1))
    (ping,) = rally.next_asks(0.0)
    assert [rally.failed(ping, TIMEOUT) for _ in range(3)] == [0.0, 0.0, 0.0]
    (stroke,) = rally.answer(ping, "ping-1", (MISS,), 2.0)  # whichever request it answered
    assert stroke.attempts == 4
    assert rally.winner == "pong"


def test_a_side_no_player_serves_is_given_up_after_its_few_retries() -> None:
    rally = Rally("g", Limits(retries=15, empty_retries=2))
    _, pong = rally.next_asks(0.0)
    rally.failed(pong, NOBODY)
    rally.failed(pong, NOBODY)
    with pytest.raises(GameAbortedError, match=r"no pong player answered stroke 2 \(3 tries"):
        rally.failed(pong, NOBODY)


def test_a_side_that_takes_swings_and_never_answers_is_given_up_after_its_retries() -> None:
    rally = Rally("g", Limits(retries=15))
    ping, _ = rally.next_asks(0.0)
    for _ in range(15):
        assert rally.failed(ping, TIMEOUT) == 0.0
    message = r"no ping player answered stroke 1 \(16 tries, last: timeout after 0.5s\)"
    with pytest.raises(GameAbortedError, match=message):
        rally.failed(ping, TIMEOUT)


@pytest.mark.parametrize(
    "results",
    [(HIT,) * 3, (HIT,)],
    ids=["more results than swings asked", "fewer results that do not end in a miss"],
)
def test_an_answer_that_does_not_fit_the_request_is_refused_and_asked_again(
    results: tuple[Result, ...],
) -> None:
    rally = Rally("g", Limits(ahead=4))
    ping, pong = rally.next_asks(0.0)
    with pytest.raises(UnansweredError, match="a ping player answered"):
        rally.answer(ping, "ping-1", results, 0.001)
    assert rally.waits_for(ping)
    rally.failed(ping, UnansweredError("did not fit"))
    rally.answer(pong, "pong-1", (MISS,), 0.002)
    first, second = rally.answer(ping, "ping-2", (HIT, HIT), 0.003)
    assert (first.attempts, first.instance) == (2, "ping-2")
    assert second.result is MISS
    assert rally.winner == "ping"


def test_each_sides_latency_runs_from_its_request_to_its_own_answer() -> None:
    rally = Rally("g", Limits(ahead=2))
    ping, pong = rally.next_asks(10.0)
    rally.answer(pong, "pong-1", (MISS,), 10.001)  # pong answers first, after 1 ms
    played = rally.answer(ping, "ping-1", (HIT,), 10.005)  # ping after 5 ms
    assert [(s.side, s.latency_ms) for s in played] == [("ping", 5.0), ("pong", 1.0)]
    game = rally.played("m", 6.0, now())
    assert game.json() == encode(game.model())

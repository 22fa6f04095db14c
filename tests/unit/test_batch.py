"""The manager's swing batcher, against a fake sender."""

from __future__ import annotations

import asyncio
import time

import pytest

from manager.batch import Batcher
from pingpong.errors import UnansweredError
from pingpong.messages import Result, Swing, SwingBatch, SwingBatchReply

HIT, MISS = Result.HIT, Result.MISS


class FakePlayer:
    """Answers each swing of a batch with ``count`` HITs, or fails as told."""

    def __init__(
        self,
        fail: Exception | None = None,
        drop_last: bool = False,
        hold_first: asyncio.Event | None = None,
    ) -> None:
        self.batches: list[SwingBatch] = []
        self.fail = fail
        self.drop_last = drop_last
        self.hold_first = hold_first  # the first batch is answered only once this is set

    async def send(self, batch: SwingBatch) -> SwingBatchReply:
        self.batches.append(batch)
        if self.hold_first is not None and len(self.batches) == 1:
            await self.hold_first.wait()
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        results = [(HIT,) * s.count for s in batch.swings]
        if self.drop_last:
            results = results[:-1] or [(MISS,)]
        return SwingBatchReply(side="ping", instance="ping-1@t", results=tuple(results))


def swing(game: str, count: int = 1) -> Swing:
    return Swing(game_id=game, stroke=1, count=count)


async def test_swings_asked_in_one_turn_leave_as_one_batch_and_each_game_gets_its_own_reply() -> (
    None
):
    player = FakePlayer()
    batcher = Batcher("ping", player.send, max_games=64)
    futures = [batcher.swing(swing(f"g{n}", count=n)) for n in range(1, 6)]
    before = time.perf_counter()
    answers = await asyncio.gather(*futures)
    assert [[s.game_id for s in b.swings] for b in player.batches] == [
        ["g1", "g2", "g3", "g4", "g5"]
    ]
    assert [len(r.results) for r, _ in answers] == [1, 2, 3, 4, 5]
    assert {r.instance for r, _ in answers} == {"ping-1@t"}
    assert len({at for _, at in answers}) == 1  # answered together, at one time
    assert before < answers[0][1] < time.perf_counter()


async def test_a_full_batch_leaves_at_once_and_the_rest_follows_in_the_next() -> None:
    player = FakePlayer()
    batcher = Batcher("ping", player.send, max_games=2)
    futures = [batcher.swing(swing(f"g{n}")) for n in range(5)]
    await asyncio.gather(*futures)
    assert sorted(len(b.swings) for b in player.batches) == [1, 2, 2]


async def test_swings_asked_in_later_turns_go_in_later_batches() -> None:
    player = FakePlayer()
    batcher = Batcher("ping", player.send, max_games=64)
    first = batcher.swing(swing("a"))
    await asyncio.sleep(0)
    second = batcher.swing(swing("b"))
    await asyncio.gather(first, second)
    assert [[s.game_id for s in b.swings] for b in player.batches] == [["a"], ["b"]]


def games(player: FakePlayer) -> list[list[str]]:
    """The game ids of each batch the player got."""
    return [[s.game_id for s in b.swings] for b in player.batches]


class HeldBatch:
    """A batcher whose first batch, game "a", is out and unanswered until :meth:`answer`."""

    def __init__(self, in_flight: int, stall: float) -> None:
        self._answer = asyncio.Event()
        self.player = FakePlayer(hold_first=self._answer)
        self.batcher = Batcher("ping", self.player.send, 64, in_flight=in_flight, stall=stall)
        self.first = self.batcher.swing(swing("a"))

    async def out(self) -> HeldBatch:
        await asyncio.sleep(0.01)
        assert games(self.player) == [["a"]]
        return self

    async def answer(self) -> None:
        self._answer.set()
        await self.first


async def test_while_a_batch_is_out_later_swings_wait_and_leave_together_once_it_is_answered() -> (
    None
):
    held = await HeldBatch(in_flight=1, stall=60).out()
    later = [held.batcher.swing(swing(g)) for g in "bc"]
    await asyncio.sleep(0.01)
    later.append(held.batcher.swing(swing("d")))
    await asyncio.sleep(0.01)
    assert games(held.player) == [["a"]]
    await held.answer()
    await asyncio.gather(*later)
    assert games(held.player) == [["a"], ["b", "c", "d"]]


async def test_two_batches_may_be_out_at_once_when_allowed() -> None:
    held = await HeldBatch(in_flight=2, stall=60).out()
    await asyncio.wait_for(held.batcher.swing(swing("b")), 1)
    assert games(held.player) == [["a"], ["b"]]
    await held.answer()


async def test_swings_behind_a_batch_a_player_hangs_on_to_leave_after_the_stall() -> None:
    held = await HeldBatch(in_flight=1, stall=0.05).out()
    stuck = [held.batcher.swing(swing(g)) for g in "bc"]
    await asyncio.wait_for(asyncio.gather(*stuck), 1)
    assert not held.first.done()
    assert games(held.player) == [["a"], ["b", "c"]]
    await held.answer()


async def outcomes(player: FakePlayer, games: int) -> list[object]:
    """What each of ``games`` swings, asked in one turn, came to."""
    batcher = Batcher("ping", player.send, max_games=64)
    futures = [batcher.swing(swing(f"g{n}")) for n in range(games)]
    return await asyncio.gather(*futures, return_exceptions=True)


async def test_an_unanswered_batch_fails_every_swing_in_it() -> None:
    results = await outcomes(FakePlayer(fail=UnansweredError("timeout after 0.5s")), 3)
    assert all(isinstance(r, UnansweredError) for r in results)
    assert {str(r) for r in results} == {"timeout after 0.5s"}


async def test_an_unexpected_error_while_sending_fails_every_swing_as_unanswered() -> None:
    results = await outcomes(FakePlayer(fail=ConnectionResetError("connection lost")), 2)
    assert all(isinstance(r, UnansweredError) for r in results)
    assert str(results[0]) == "ConnectionResetError: connection lost"


async def test_a_reply_with_too_few_results_fails_every_swing_instead_of_misplacing_them() -> None:
    results = await outcomes(FakePlayer(drop_last=True), 3)
    assert all(isinstance(r, UnansweredError) for r in results)
    assert "answered 2 of 3" in str(results[0])


async def test_a_swing_whose_game_gave_up_before_the_batch_left_is_not_sent() -> None:
    player = FakePlayer()
    batcher = Batcher("ping", player.send, max_games=64)
    gone = batcher.swing(swing("gone"))
    kept = batcher.swing(swing("kept"))
    gone.cancel()
    await kept
    assert [[s.game_id for s in b.swings] for b in player.batches] == [["kept"]]
    with pytest.raises(asyncio.CancelledError):
        await gone

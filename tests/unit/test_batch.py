"""The manager's swing batcher, against a fake side."""

from __future__ import annotations

import asyncio

from manager.batch import Batcher
from pingpong.errors import UnansweredError


class FakeSide:
    """Takes batches of item names; answers each at once, or fails, or holds the first."""

    def __init__(self, fail: Exception | None = None, hold_first: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.answered: list[str] = []
        self.failed: dict[str, str] = {}
        self.fail = fail
        self.release = asyncio.Event()
        if not hold_first:
            self.release.set()

    async def send(self, items: list[str]) -> None:
        self.batches.append(items)
        if len(self.batches) == 1:
            await self.release.wait()
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        self.answered += items

    def on_failure(self, items: list[str], why: UnansweredError) -> None:
        self.failed.update(dict.fromkeys(items, why.reason))

    def batcher(self, max_items: int = 64, in_flight: int = 1, stall: float = 0.02) -> Batcher[str]:
        return Batcher(self.send, self.on_failure, max_items, in_flight=in_flight, stall=stall)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def first_batch_held(in_flight: int, stall: float) -> tuple[FakeSide, Batcher[str]]:
    """A batcher whose first batch, ["a"], is out and held until ``side.release`` is set."""
    side = FakeSide(hold_first=True)
    batcher = side.batcher(in_flight=in_flight, stall=stall)
    batcher.add("a")
    await asyncio.sleep(0.01)
    return side, batcher


async def test_items_asked_in_one_turn_leave_as_one_batch() -> None:
    side = FakeSide()
    batcher = side.batcher()
    for n in range(5):
        batcher.add(f"g{n}")
    await settle()
    assert side.batches == [["g0", "g1", "g2", "g3", "g4"]]
    assert side.answered == ["g0", "g1", "g2", "g3", "g4"]


async def test_a_full_batch_leaves_at_once_and_the_rest_follows_in_the_next() -> None:
    side = FakeSide()
    batcher = side.batcher(max_items=2, in_flight=3)
    for n in range(5):
        batcher.add(f"g{n}")
    await settle()
    assert sorted(len(b) for b in side.batches) == [1, 2, 2]
    assert sorted(side.answered) == [f"g{n}" for n in range(5)]


async def test_items_asked_in_later_turns_go_in_later_batches() -> None:
    side = FakeSide()
    batcher = side.batcher()
    batcher.add("a")
    await asyncio.sleep(0)
    batcher.add("b")
    await settle()
    assert side.batches == [["a"], ["b"]]


async def test_while_a_batch_is_out_later_items_wait_and_leave_together_once_it_is_answered() -> (
    None
):
    side, batcher = await first_batch_held(in_flight=1, stall=60)
    batcher.add("b")
    batcher.add("c")
    await asyncio.sleep(0.01)
    batcher.add("d")
    await asyncio.sleep(0.01)
    assert side.batches == [["a"]]
    side.release.set()
    await settle()
    assert side.batches == [["a"], ["b", "c", "d"]]
    assert side.answered == ["a", "b", "c", "d"]


async def test_two_batches_may_be_out_at_once_when_allowed() -> None:
    side, batcher = await first_batch_held(in_flight=2, stall=60)
    batcher.add("b")
    await asyncio.sleep(0.01)
    assert side.batches == [["a"], ["b"]]
    assert side.answered == ["b"]
    side.release.set()
    await settle()


async def test_items_behind_a_batch_a_player_hangs_on_to_leave_after_the_stall() -> None:
    side, batcher = await first_batch_held(in_flight=1, stall=0.05)
    batcher.add("b")
    batcher.add("c")
    await asyncio.sleep(0.02)
    assert side.batches == [["a"]]  # not yet: the stall has not passed
    await asyncio.sleep(0.1)
    assert side.batches == [["a"], ["b", "c"]]
    assert side.answered == ["b", "c"]  # "a" is still held
    side.release.set()
    await settle()


async def test_an_unanswered_batch_fails_every_item_in_it_with_the_reason() -> None:
    side = FakeSide(fail=UnansweredError("timeout after 0.5s"))
    batcher = side.batcher()
    for n in range(3):
        batcher.add(f"g{n}")
    await settle()
    assert side.failed == dict.fromkeys(["g0", "g1", "g2"], "timeout after 0.5s")


async def test_an_unexpected_error_while_sending_fails_every_item_with_its_type() -> None:
    side = FakeSide(fail=ConnectionResetError("connection lost"))
    batcher = side.batcher()
    batcher.add("g0")
    batcher.add("g1")
    await settle()
    assert side.failed == dict.fromkeys(["g0", "g1"], "ConnectionResetError: connection lost")


async def test_an_item_no_longer_live_when_its_batch_leaves_is_not_sent() -> None:
    side = FakeSide()
    gone: set[str] = set()
    batcher = Batcher(side.send, side.on_failure, 64, live=lambda item: item not in gone)
    batcher.add("gone")
    batcher.add("kept")
    gone.add("gone")
    await settle()
    assert side.batches == [["kept"]]


async def test_a_turn_whose_items_are_all_gone_sends_nothing() -> None:
    side = FakeSide()
    batcher = Batcher(side.send, side.on_failure, 64, live=lambda item: False)
    batcher.add("gone")
    await settle()
    assert side.batches == []

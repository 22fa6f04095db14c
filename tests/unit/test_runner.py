"""The runner: how every service process runs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from pingpong.runner import GC_THRESHOLDS, run


@pytest.fixture
def default_gc() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_service_asked_to_collect_less_runs_with_the_thresholds_and_exits_0(
    default_gc: None,
) -> None:
    seen: list[tuple[int, ...]] = []

    async def service(stop: asyncio.Event) -> None:
        seen.append(gc.get_threshold())

    assert run(service) == 0
    assert run(service, few_collections=True) == 0
    assert seen == [(700, 10, 10), GC_THRESHOLDS]

"""A player as a NATS micro service on ``<side>.swing`` (queue group = side).

``nats micro ls``, ``nats micro stats ping`` and ``$SRV.PING`` discovery work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random

from nats import micro

from pingpong import __version__, bus, subjects
from pingpong.handlers import endpoint
from pingpong.messages import (
    SCHEMA_VERSION,
    Result,
    Swing,
    SwingBatch,
    SwingReply,
    encode,
)
from pingpong.settings import Settings
from players.logic import decide_swings

log = logging.getLogger(__name__)


class Player:
    """Answers swings for one side; each distinct reply is encoded once and kept."""

    def __init__(
        self, side: subjects.Side, instance: str, hit_chance: int, rng: random.Random | None = None
    ) -> None:
        self.side = side
        self.instance = instance
        self.hit_chance = hit_chance
        self.rng = rng or random.Random()
        self._replies: dict[tuple[int, bool], bytes] = {}  # (hits, then a miss) -> reply
        self._results: dict[tuple[int, bool], bytes] = {}  # (hits, then a miss) -> its JSON list
        self._batch_head = b'{"v":%d,"side":"%s","instance":%s,"results":[' % (
            SCHEMA_VERSION,
            side.encode(),
            json.dumps(instance).encode(),
        )

    def reply(self, hits: int, missed: bool) -> bytes:
        """The encoded reply: ``hits`` HITs, then a MISS if ``missed``."""
        key = (hits, missed)
        data = self._replies.get(key)
        if data is None:
            results = (Result.HIT,) * hits + ((Result.MISS,) if missed else ())
            data = encode(SwingReply(side=self.side, instance=self.instance, results=results))
            self._replies[key] = data
        return data

    def results(self, hits: int, missed: bool) -> bytes:
        """The JSON list of results: ``hits`` HITs, then a MISS if ``missed``."""
        key = (hits, missed)
        data = self._results.get(key)
        if data is None:
            results = [Result.HIT.value] * hits + ([Result.MISS.value] if missed else [])
            data = json.dumps(results, separators=(",", ":")).encode()
            self._results[key] = data
        return data

    def batch_reply(self, batch: SwingBatch) -> bytes:
        """The encoded :class:`SwingBatchReply`: every swing of the batch decided, in order."""
        parts = []
        for swing in batch.swings:
            hits = decide_swings(self.hit_chance, swing.count, self.rng)
            parts.append(self.results(hits, hits < swing.count))
        return self._batch_head + b",".join(parts) + b"]}"

    async def swing(self, swing: Swing) -> bytes:
        """``<side>.swing``: a :class:`Swing` in, its :class:`SwingReply` out (:meth:`reply`)."""
        hits = decide_swings(self.hit_chance, swing.count, self.rng)
        return self.reply(hits, hits < swing.count)

    async def swings(self, batch: SwingBatch) -> bytes:
        """``<side>.swings``: a :class:`SwingBatch` in, its :class:`SwingBatchReply` out
        (:meth:`batch_reply`)."""
        return self.batch_reply(batch)


async def serve(
    settings: Settings, side: subjects.Side, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Serve ``<side>.swing`` until ``stop`` is set, then drain; ``ready`` is set once serving."""
    instance = settings.instance(side)
    player = Player(side, instance, settings.hit_chance)
    nc = await bus.connect(settings, instance)
    try:
        service = await micro.add_service(
            nc,
            name=side,
            version=__version__,
            description=f"pingpong {side} player: answers swings with HIT or MISS",
            metadata={"instance": instance, "hit_chance": str(settings.hit_chance)},
            queue_group=subjects.swing_queue(side),
        )
        await service.add_endpoint(
            name="swing",
            subject=subjects.swing_subject(side),
            handler=endpoint(Swing, player.swing),
            queue_group=subjects.swing_queue(side),
        )
        await service.add_endpoint(
            name="swings",
            subject=subjects.swings_subject(side),
            handler=endpoint(SwingBatch, player.swings),
            queue_group=subjects.swing_queue(side),
        )
        log.info(
            "serving %s and %s (hit chance %d%%)",
            subjects.swing_subject(side),
            subjects.swings_subject(side),
            settings.hit_chance,
        )
        await bus.sync(nc)  # the server has our subscription
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        # nats-py's Service.stop() cancels running handlers; drain lets them finish.
        await bus.wait_closed(nc)
    log.info("stopped")

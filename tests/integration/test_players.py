"""Players as NATS micro services, against a real nats-server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nats.aio.client import Client

from pingpong import subjects
from pingpong.messages import (
    Result,
    Swing,
    SwingBatch,
    SwingBatchReply,
    SwingReply,
    decode,
    encode,
)
from tests.conftest import Services, wait_for


async def test_a_player_answers_a_swing_with_its_side_and_instance(
    services: Services, nc: Client
) -> None:
    await services.player("pong", 1)
    msg = await nc.request(
        subjects.swing_subject("pong"), encode(Swing(game_id="g", stroke=2)), timeout=2
    )
    reply = decode(SwingReply, msg.data)
    assert reply.side == "pong"
    assert reply.instance == "pong-1@test"


async def test_a_player_answers_a_batch_of_swings_one_result_list_per_swing_in_order(
    services: Services, nc: Client
) -> None:
    await services.player("ping", 1, hit_chance=100)
    batch = SwingBatch(swings=tuple(Swing(game_id=f"g{n}", stroke=1, count=n) for n in (1, 5, 3)))
    msg = await nc.request(subjects.swings_subject("ping"), encode(batch), timeout=2)
    reply = decode(SwingBatchReply, msg.data)
    assert (reply.side, reply.instance) == ("ping", "ping-1@test")
    assert reply.results == ((Result.HIT,), (Result.HIT,) * 5, (Result.HIT,) * 3)


MALFORMED = {
    "ping.swing": (b"garbage", b'{"game_id": "g"}', b'{"game_id":"g","stroke":1,"evil":true}'),
    "ping.swings": (b"[]", b'{"swings": []}', b'{"swings": [{"game_id": "g", "stroke": 0}]}'),
}
WELL_FORMED = {
    "ping.swing": (Swing(game_id="g", stroke=1), "Swing"),
    "ping.swings": (SwingBatch(swings=(Swing(game_id="g", stroke=2),)), "SwingBatch"),
}


@pytest.mark.parametrize("subject", ["ping.swing", "ping.swings"])
async def test_a_malformed_request_gets_an_error_reply_and_the_player_keeps_serving(
    services: Services, nc: Client, subject: str
) -> None:
    await services.player("ping", 1)
    good, model = WELL_FORMED[subject]
    for bad in MALFORMED[subject]:
        msg = await nc.request(subject, bad, timeout=2)
        assert msg.headers is not None
        assert msg.headers["Nats-Service-Error-Code"] == "400"
        assert msg.headers["Nats-Service-Error"].startswith(f"bad {model}: ")
    msg = await nc.request(subject, encode(good), timeout=2)
    assert not msg.headers
    assert b'"side":"ping"' in msg.data


async def test_players_are_discoverable_as_micro_services(services: Services, nc: Client) -> None:
    await services.player("ping", 1)
    msg = await nc.request("$SRV.INFO.ping", b"", timeout=2)
    info = json.loads(msg.data)
    assert info["name"] == "ping"
    assert info["metadata"]["instance"] == "ping-1@test"
    endpoints = {e["subject"]: e["queue_group"] for e in info["endpoints"]}
    assert endpoints == {"ping.swing": "ping", "ping.swings": "ping"}


async def test_a_connected_service_keeps_its_health_file_fresh(
    services: Services, tmp_path: Path
) -> None:
    health = tmp_path / "health"
    await services.player("ping", 1, health_file=health)

    async def touched() -> bool:
        return health.exists()

    await wait_for(touched)

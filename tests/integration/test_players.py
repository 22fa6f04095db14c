"""Players as NATS micro services, against a real nats-server."""

from __future__ import annotations

import json
from pathlib import Path

from nats.aio.client import Client

from pingpong import subjects
from pingpong.messages import Swing, SwingReply, decode, encode
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


async def test_a_malformed_swing_gets_an_error_reply_and_the_player_keeps_serving(
    services: Services, nc: Client
) -> None:
    await services.player("ping", 1)
    subject = subjects.swing_subject("ping")
    for bad in (b"garbage", b'{"game_id": "g"}', b'{"game_id":"g","stroke":1,"evil":true}'):
        msg = await nc.request(subject, bad, timeout=2)
        assert msg.headers is not None
        assert msg.headers["Nats-Service-Error-Code"] == "400"
        assert msg.headers["Nats-Service-Error"].startswith("bad Swing: ")
    msg = await nc.request(subject, encode(Swing(game_id="g", stroke=1)), timeout=2)
    assert decode(SwingReply, msg.data).side == "ping"


async def test_players_are_discoverable_as_micro_services(services: Services, nc: Client) -> None:
    await services.player("ping", 1)
    msg = await nc.request("$SRV.INFO.ping", b"", timeout=2)
    info = json.loads(msg.data)
    assert info["name"] == "ping"
    assert info["metadata"]["instance"] == "ping-1@test"
    assert info["endpoints"][0]["subject"] == "ping.swing"
    assert info["endpoints"][0]["queue_group"] == "ping"


async def test_a_connected_service_keeps_its_health_file_fresh(
    services: Services, tmp_path: Path
) -> None:
    health = tmp_path / "health"
    await services.player("ping", 1, health_file=health)

    async def touched() -> bool:
        return health.exists()

    await wait_for(touched)

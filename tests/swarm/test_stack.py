"""stack.yml on a real Swarm: games, replicas, scaling, kills and rolling updates."""

from __future__ import annotations

import re
import time

import pytest

from tests.swarm.conftest import (
    Deployed,
    Load,
    game_json,
    http_get,
    instances,
    scores,
    settled_games,
    sh,
    wait_until,
)

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(900)]

LINE = re.compile(r"^(PING|PONG) --> (HIT|MISS)$")


def test_curl_plays_a_game_in_the_original_format(stack: Deployed) -> None:
    status, body = http_get("/")
    assert status == 200
    lines = body.splitlines()
    assert all(LINE.match(line) for line in lines[:-1]), body
    assert re.fullmatch(r"The winner is (PING|PONG)|DRAW", lines[-1]), body


def test_games_show_both_replicas_of_each_side(stack: Deployed) -> None:
    seen: set[str] = set()
    for _ in range(200):
        seen |= instances(game_json())
        if len(seen) >= 4:
            break
    node = r"@[^@]+$"
    assert {re.sub(node, "", i) for i in seen} >= {
        f"{stack.stack}_ping.1",
        f"{stack.stack}_ping.2",
        f"{stack.stack}_pong.1",
        f"{stack.stack}_pong.2",
    }, seen


def test_a_third_ping_replica_takes_swings_after_scaling(stack: Deployed) -> None:
    sh("docker", "service", "scale", "--detach", f"{stack.service('ping')}=3")
    third = f"{stack.stack}_ping.3@"

    def third_swings() -> bool:
        return any(i.startswith(third) for _ in range(20) for i in instances(game_json()))

    wait_until("ping.3 in a game", third_swings, timeout=90)


def test_kills_and_rolling_updates_under_load_lose_no_game(stack: Deployed) -> None:
    before = settled_games()
    aborted_before = scores().aborted
    with Load() as load:
        time.sleep(3)
        victim = sh(
            "docker",
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.swarm.service.name={stack.service('pong')}",
        ).split()[0]
        sh("docker", "kill", victim)
        time.sleep(3)
        for svc in ("manager", "ping", "pong"):
            sh(
                "docker",
                "service",
                "update",
                "--force",
                "--detach=false",
                "--quiet",
                stack.service(svc),
                timeout=300,
            )
        ok_then = load.ok
        wait_until("games still playing after the updates", lambda: load.ok > ok_then, 10, 0.2)
    print(f"under kills and rolling updates: {load.ok} games, {len(load.failed)} failed")
    assert load.ok > 50, "the load hardly ran"
    assert load.failed == [], f"{len(load.failed)} failed games, first: {load.failed[:5]}"
    after = settled_games()
    assert after - before == load.ok
    assert scores().aborted == aborted_before


def test_anonymous_only_watches_and_players_cannot_forge_results(stack: Deployed) -> None:
    """In the stack every role is its own NATS user (Docker secrets), as in pingpong up, and
    a connection without credentials is the read-only watcher."""
    nats = sh(
        "docker",
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.swarm.service.name={stack.service('nats')}",
    ).split()[0]
    log = sh("docker", "logs", nats, check=False)
    player = sh(
        "docker",
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.swarm.service.name={stack.service('ping')}",
    ).split()[0]
    script = (
        "import asyncio, nats\n"
        "async def main():\n"
        "    errors = []\n"
        "    async def cb(e): errors.append(str(e))\n"
        "    anon = await nats.connect('nats://nats:4222', error_cb=cb)\n"
        "    sub = await anon.subscribe('rally.>')\n"
        "    event = await sub.next_msg(timeout=10)\n"
        "    print('anonymous sees:', event.subject.rsplit('.', 1)[-1])\n"
        "    await anon.publish('game.play', b'')\n"
        "    await anon.flush(); await asyncio.sleep(0.5)\n"
        "    print('anonymous plays:', errors)\n"
        "    await anon.close(); errors.clear()\n"
        "    pw = open('/run/secrets/nats_password').read().strip()\n"
        "    nc = await nats.connect('nats://nats:4222', user='ping', password=pw, error_cb=cb)\n"
        "    await nc.publish('rally.forged.finished', b'{}')\n"
        "    await nc.flush(); await asyncio.sleep(0.5)\n"
        "    print('forge:', errors)\n"
        "    await nc.close()\n"
        "asyncio.run(main())\n"
    )
    with Load(threads=1, max_seconds=30):  # events for the anonymous watcher to see
        out = sh("docker", "exec", player, "python3", "-c", script)
    assert "anonymous sees: " in out, out + log
    assert 'permissions violation for publish to "game.play"' in out, out
    assert 'permissions violation for publish to "rally.forged.finished"' in out, out

"""stack.yml with nats/cluster.yml: three NATS servers in one dnsrr service."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.swarm.conftest import Deployed, Load, http_get, scores, sh, wait_until

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(600)]

THREADS = 2
"""Games played at once while a server is killed."""


def nats_containers(stack: Deployed) -> list[str]:
    return sh(
        "docker",
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.swarm.service.name={stack.service('nats')}",
    ).split()


def monitor(container: str, path: str) -> dict[str, Any]:
    """A nats-server monitoring endpoint, read inside its container."""
    body = sh("docker", "exec", container, "wget", "-q", "-O", "-", f"http://127.0.0.1:8222/{path}")
    data: dict[str, Any] = json.loads(body)
    return data


def test_three_servers_with_stable_names_form_one_jetstream_cluster(
    cluster_stack: Deployed,
) -> None:
    def formed() -> bool:
        containers = nats_containers(cluster_stack)
        if len(containers) != 3:
            return False
        names = {monitor(c, "varz")["server_name"] for c in containers}
        meta = monitor(containers[0], "jsz").get("meta_cluster", {})
        return names == {"nats-1", "nats-2", "nats-3"} and meta.get("cluster_size") == 3

    wait_until("3 servers nats-1..3 in one meta cluster", formed, timeout=60)
    jsz = monitor(nats_containers(cluster_stack)[0], "jsz?streams=true&config=true")
    streams = {
        s["name"]: s["config"]["num_replicas"]
        for account in jsz["account_details"]
        for s in account.get("stream_detail", [])
    }
    assert streams.get("RALLY") == 3, streams  # STREAM_REPLICAS=3 from nats/cluster.yml


def test_games_go_on_when_one_nats_server_is_killed(cluster_stack: Deployed) -> None:
    before = scores()
    with Load(threads=THREADS, max_seconds=120) as load:
        time.sleep(2)
        sh("docker", "kill", nats_containers(cluster_stack)[0])
        time.sleep(8)
        ok_after_kill = load.ok
        wait_until("games after the kill", lambda: load.ok > ok_after_kill + 20, timeout=60)
    assert http_get("/")[0] == 200

    played = load.ok + 1
    print(f"one NATS server killed: {load.ok} games, {len(load.failed)} failed {load.failed[:3]}")
    assert load.failed == [], f"{len(load.failed)} failed games, first: {load.failed[:3]}"

    seen = [0]

    def counted() -> bool:
        # every game answered 200 was stored (R3: the log survives a server)
        seen[0] = scores().games - before.games
        return seen[0] >= played

    try:
        wait_until(f"the scores to count all {played} games played", counted, timeout=60)
    finally:
        print(f"the scores counted {seen[0]} of the {played} games played")
    # A game in flight when the proxy's server died is played again (docs/RELIABILITY.md):
    # at most one per load thread is stored beyond the answers, never more.
    assert scores().games - before.games <= played + len(load.failed) + THREADS

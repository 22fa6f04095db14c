"""stack.yml on a real 3-node Swarm (../shared/tools/swarm-nodes): pi1..pi3, each a dockerd in
network namespaces of its own at 10.77.0.2-4. Under continuous games from two nodes'
proxies: the third node cut off and back, a node drained and made active again, and the
3-server NATS cluster (nats/cluster.yml) losing a node. No game may fail, and the scores
must equal the games answered. Each scenario prints its figures (docs/RELIABILITY.md)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from tests.swarm.conftest import (
    ROOT,
    TOOLS,
    Load,
    http_get,
    scores,
    settled_games,
    sh,
    wait_until,
)

pytestmark = [pytest.mark.swarm, pytest.mark.timeout(1800)]

SWARM_NODES = str(TOOLS / "swarm-nodes")
NODES = ("pi1", "pi2", "pi3")
ADDRESS = {"pi1": "10.77.0.2", "pi2": "10.77.0.3", "pi3": "10.77.0.4"}
SERVICES = ("nats", "ping", "pong", "manager", "scoreboard", "proxy")

CUT_FOR = 30.0
"""Seconds a node stays cut off: past Swarm marking it Down (11 to 14 s) and starting its
tasks elsewhere (about 20 s)."""


def base(node: str) -> str:
    return f"http://{ADDRESS[node]}:3000"


def on(node: str) -> dict[str, str]:
    """The environment that points ``docker`` at ``node``'s daemon."""
    return {"DOCKER_HOST": f"unix:///run/swarm-nodes/{node}/docker.sock"}


@dataclass(frozen=True)
class Spread:
    """Where a stack's tasks run: node -> services."""

    stack: str
    tasks: dict[str, list[str]]

    def nodes_of(self, service: str) -> set[str]:
        return {n for n, services in self.tasks.items() if service in services}

    def busiest_but(self, *avoid: str) -> str:
        """The node with the most tasks among those not avoided (its loss costs most)."""
        return max((n for n in NODES if n not in avoid), key=lambda n: len(self.tasks[n]))


def spread(stack: str) -> Spread:
    """The running tasks of ``stack``, by node (read on the manager, pi1)."""
    tasks: dict[str, list[str]] = {n: [] for n in NODES}
    out = sh(
        "docker", "stack", "ps", stack, "--filter", "desired-state=running",
        "--format", "{{.Name}} {{.Node}} {{.CurrentState}}", env=on("pi1"), check=False,
    )  # fmt: skip
    for line in out.splitlines():
        name, node, state = [*line.split(" ", 2), "", ""][:3]
        service = name.removeprefix(f"{stack}_").split(".")[0]
        # "Starting" until the image's healthcheck first passes, though it serves already
        if state.startswith(("Running", "Starting")) and node in tasks and service in SERVICES:
            tasks[node].append(service)
    return Spread(stack, tasks)


@pytest.fixture(scope="module")
def swarm_nodes(image: str) -> Iterator[None]:
    """Three nodes with the image and the NATS image loaded; taken down at the end."""
    sh(SWARM_NODES, "up", "3", timeout=300)
    try:
        sh(SWARM_NODES, "load", image, os.environ.get("NATS_IMAGE", "local/nats:2"), timeout=900)
        yield
    finally:
        sh(SWARM_NODES, "down", timeout=300, check=False)


@contextlib.contextmanager
def deployed_on_nodes(
    stack: str, image: str, files: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Spread]:
    """``files`` deployed on the three nodes until every node's :3000 plays a game; removed
    (with its volumes) afterwards, pass or fail."""
    _remove(stack)
    sh(sys.executable, "-m", "pingpong", "auth-secrets", str(ROOT / "secrets"))
    compose = [arg for f in files for arg in ("-c", str(ROOT / f))]
    deploy_env = {
        **on("pi1"),
        "IMAGE": image,
        "NATS_IMAGE": os.environ.get("NATS_IMAGE", "local/nats:2"),
        **(env or {}),
    }
    t0 = time.monotonic()
    try:
        sh("docker", "stack", "deploy", "--resolve-image", "never", *compose, stack, env=deploy_env)
        for node in NODES:
            wait_until(
                f"a game on {node}:3000", lambda n=node: http_get("/", base=base(n))[0] == 200, 180
            )
        wait_until(
            "the scoreboard", lambda: http_get("/scores.json", base=base("pi1"))[0] == 200, 120
        )
        print(f"\n[{stack}] every node's :3000 plays {time.monotonic() - t0:.1f} s after deploy")
        yield spread(stack)
    finally:
        for service in SERVICES:
            logs = sh(
                "docker", "service", "logs", "--tail", "25", f"{stack}_{service}",
                env=on("pi1"), check=False,
            )  # fmt: skip
            print(f"--- {stack}_{service} (last lines)\n{logs}")
        _remove(stack)


def _remove(stack: str) -> None:
    sh(SWARM_NODES, "rm", stack, timeout=180, check=False)
    for node in NODES:  # a fresh event log next time
        volumes = sh(
            "docker", "volume", "ls", "-q", "--filter", f"name={stack}", env=on(node), check=False
        ).split()
        if volumes:
            sh("docker", "volume", "rm", "-f", *volumes, env=on(node), check=False)


def settle(stack: str) -> None:
    """Wait until the swarm is at rest after the last scenario: every task Running (a node
    that came back gets a new proxy task, whose port refuses for a few seconds) and every
    node's :3000 playing five times in a row."""

    def at_rest() -> bool:
        out = sh(
            "docker", "stack", "ps", stack, "--filter", "desired-state=running",
            "--format", "{{.CurrentState}}", env=on("pi1"), check=False,
        )  # fmt: skip
        states = out.split("\n")
        return bool(out.strip()) and all(s.startswith("Running") for s in states if s)

    wait_until(f"every task of {stack} running", at_rest, timeout=180, interval=2)
    streak = [0]

    def playing() -> bool:
        ok = all(http_get("/", base=base(n))[0] == 200 for n in NODES)
        streak[0] = streak[0] + 1 if ok else 0
        return streak[0] >= 5

    wait_until("every node's :3000 playing", playing, timeout=90, interval=1)


@contextlib.contextmanager
def link_down(node: str) -> Iterator[None]:
    """``node`` cut off from the others (its veth down), then back."""
    sh("ip", "link", "set", f"swn-{node}", "down")
    try:
        yield
    finally:
        sh("ip", "link", "set", f"swn-{node}", "up")


def report(name: str, load: Load, seconds: float, **figures: object) -> None:
    errors = Counter(re.sub(r"^\S+ ", "", f) for f in load.failed).most_common(3)
    print(
        f"\n[{name}] games={load.ok + len(load.failed)} ok={load.ok} failed={len(load.failed)} "
        f"games_per_s={load.ok / seconds:.0f} slowest_s={load.slowest:.2f} "
        + " ".join(f"{k}={v}" for k, v in figures.items())
        + (f" errors={errors}" if errors else ""),
        flush=True,
    )


def assert_no_game_lost(load: Load, before: int, scores_base: str) -> None:
    assert load.ok > 100, "the load hardly ran"
    assert load.failed == [], f"{len(load.failed)} failed games, first: {load.failed[:5]}"
    counted = [0]

    def all_counted() -> bool:
        counted[0] = scores(scores_base).games - before
        return counted[0] >= load.ok

    try:
        wait_until("the scores to count every game answered", all_counted, 120, 1)
    finally:
        print(f"scores: {counted[0]} games counted for {load.ok} answered (then settling)")
    after = settled_games(scores_base)
    print(f"scores: {after - before} games counted for {load.ok} answered")
    assert after - before == load.ok


MEMORY = re.compile(r"^(\S+) ([\d.]+)([KMG]i?B) / ([\d.]+)([KMG]i?B)$")


def memory_under_load(stack: str) -> dict[str, tuple[float, float]]:
    """``docker stats`` of every task on every node: service -> (most MiB used, limit MiB)."""
    unit = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "kB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
    seen: dict[str, tuple[float, float]] = {}
    for node in NODES:
        out = sh(
            "docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
            env=on(node), check=False,
        )  # fmt: skip
        for line in out.splitlines():
            m = MEMORY.match(line)
            if m is None or not m[1].startswith(f"{stack}_"):
                continue
            service = m[1][len(stack) + 1 :].split(".")[0]
            used, limit = float(m[2]) * unit[m[3]], float(m[4]) * unit[m[5]]
            seen[service] = (max(used, seen.get(service, (0.0, 0.0))[0]), limit)
    return seen


@pytest.fixture(scope="module")
def nodes_stack(swarm_nodes: None, image: str) -> Iterator[Spread]:
    with deployed_on_nodes("ppnodes", image, ["stack.yml"]) as s:
        yield s


def test_the_stack_spreads_over_three_nodes_and_every_nodes_port_plays(
    nodes_stack: Spread,
) -> None:
    for node in NODES:
        status, body = http_get("/", base=base(node))
        assert status == 200, body
        assert body.splitlines()[-1].startswith(("The winner is", "DRAW"))
    print(f"tasks by node: {nodes_stack.tasks}")
    assert all(nodes_stack.tasks[n] for n in NODES), nodes_stack.tasks
    assert nodes_stack.nodes_of("proxy") == set(NODES)  # one proxy a node
    players = nodes_stack.nodes_of("ping") | nodes_stack.nodes_of("pong")
    assert len(players) >= 2, nodes_stack.tasks


def games_while_cut_off(spread: Spread, victim: str, label: str) -> dict[str, tuple[float, float]]:
    """Games from the other two nodes' proxies while ``victim`` is cut off for
    :data:`CUT_FOR` seconds and back: reports them and asserts that none failed and the
    scores count every one. Returns each service's most MiB used while the node was cut
    off, and its limit."""
    players = [n for n in NODES if n != victim]
    before = settled_games(base(players[0]))
    t0 = time.monotonic()
    with Load(threads=3, max_seconds=180, bases=tuple(base(n) for n in players)) as load:
        time.sleep(5)
        with link_down(victim):
            time.sleep(CUT_FOR)
            memory = memory_under_load(spread.stack)
        ok_then = load.ok
        wait_until("games after the node is back", lambda: load.ok > ok_then + 50, 60, 0.2)
        time.sleep(5)
    report(
        label,
        load,
        time.monotonic() - t0,
        victim=victim,
        its_tasks=",".join(spread.tasks[victim]),
        cut_s=CUT_FOR,
    )
    assert_no_game_lost(load, before, base(players[0]))
    return memory


def test_a_node_cut_off_and_back_costs_no_game(nodes_stack: Spread) -> None:
    settle(nodes_stack.stack)
    victim = nodes_stack.busiest_but(*nodes_stack.nodes_of("nats"))
    memory = games_while_cut_off(nodes_stack, victim, "node cut off")
    for service, (used, limit) in sorted(memory.items()):
        print(f"  memory under load: {service:<11} {used:6.1f} MiB of {limit:.0f} MiB")
    for service, (used, limit) in memory.items():
        assert used < limit, f"{service} uses {used:.0f} of its {limit:.0f} MiB"


def test_a_node_drained_and_made_active_again_costs_no_game(nodes_stack: Spread) -> None:
    settle(nodes_stack.stack)
    now = spread(nodes_stack.stack)  # tasks moved when a node was cut off
    victim = now.busiest_but(*now.nodes_of("nats"), "pi1")
    players = [n for n in NODES if n != victim]
    before = settled_games(base(players[0]))
    t0 = time.monotonic()
    with Load(threads=3, max_seconds=180, bases=tuple(base(n) for n in players)) as load:
        time.sleep(5)
        sh("docker", "node", "update", "--availability", "drain", victim, env=on("pi1"))
        time.sleep(20)
        moved = spread(nodes_stack.stack)
        sh("docker", "node", "update", "--availability", "active", victim, env=on("pi1"))
        time.sleep(10)
    report(
        "node drained",
        load,
        time.monotonic() - t0,
        victim=victim,
        its_tasks=",".join(now.tasks[victim]),
        while_drained=",".join(moved.tasks[victim]) or "none",
    )
    assert moved.tasks[victim] == [], moved.tasks  # drained: nothing runs there
    assert_no_game_lost(load, before, base(players[0]))


@pytest.fixture(scope="module")
def nodes_cluster(swarm_nodes: None, image: str, nodes_stack: Spread) -> Iterator[Spread]:
    """The 3-server NATS cluster on the nodes (after the single server's stack is gone)."""
    _remove(nodes_stack.stack)
    with deployed_on_nodes(
        "ppnodesc",
        image,
        ["stack.yml", "nats/cluster.yml"],
        env={"NATS_PLACEMENT": "node.platform.os == linux"},
    ) as s:
        yield s


def test_the_nats_cluster_losing_a_node_costs_no_game(nodes_cluster: Spread) -> None:
    assert nodes_cluster.nodes_of("nats") == set(NODES), nodes_cluster.tasks  # one a node
    settle(nodes_cluster.stack)
    victim = nodes_cluster.busiest_but("pi1")  # pi1 is the swarm's only manager
    games_while_cut_off(nodes_cluster, victim, "NATS cluster losing a node")

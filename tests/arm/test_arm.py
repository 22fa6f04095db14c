"""The Raspberry Pi images (linux/arm64, linux/arm/v7) playing one game under qemu.

``make arm-images`` builds ``pingpong:arm64`` and ``pingpong:armv7`` from this
checkout with no registry (../shared/tools/arm-images gives the ARM base images and
the target-arch wheelhouses); here they run side by side on a bridge network with the
project's own NATS config (users, anonymous watcher, JetStream synced before each ack) on
an arm64 nats-server, and play games through an armv7 proxy. (armv7's local nats image is
Debian's 2.9, older than the config's ``sync_interval`` (2.10): the stack's default,
``nats:2.12-alpine``, is the same version on every arch, armv7 included.)
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from bench.process import free_port
from pingpong import auth
from pingpong.messages import Game, Result, Scores
from tests.swarm.conftest import ROOT, TOOLS, docker_ready, logs, sh, wait_until

pytestmark = [pytest.mark.arm, pytest.mark.timeout(2400)]

NET = "pparm-net"
PREFIX = "pparm-"

SERVICES = {  # container: (image, role, the machine uname -m must print)
    "ping": ("pingpong:arm64", ["player", "ping", "--hit-chance", "85"], "aarch64"),
    "pong": ("pingpong:armv7", ["player", "pong", "--hit-chance", "85"], "armv7l"),
    "manager": ("pingpong:arm64", ["manager"], "aarch64"),
    "scoreboard": ("pingpong:armv7", ["scoreboard"], "armv7l"),
    "proxy": ("pingpong:armv7", ["proxy"], "armv7l"),
}
NATS_IMAGE = "local/nats:2-arm64"


def _remove() -> None:
    names = sh("docker", "ps", "-aq", "--filter", f"name={PREFIX}", check=False).split()
    if names:
        sh("docker", "rm", "-f", *names, check=False)
    sh("docker", "network", "rm", NET, check=False)


def get(url: str, timeout: float = 30) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


@pytest.fixture(scope="module")
def arm_game(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ARM images built with ``make arm-images`` and a game running on them; the
    proxy's URL."""
    docker_ready()
    t0 = time.monotonic()
    sh("make", "-C", str(ROOT), f"ARM_IMAGES={TOOLS / 'arm-images'}", "arm-images", timeout=2400)
    print(f"make arm-images: {time.monotonic() - t0:.0f}s")
    conf = tmp_path_factory.mktemp("nats")
    auth.generate(conf)  # auth.conf, anonymous.conf, passwords.conf, a password a role
    for name in ("nats.conf",):
        (conf / name).write_text((ROOT / "nats" / name).read_text())
    conf.chmod(0o755)
    for f in conf.iterdir():
        f.chmod(0o644)  # the services run as uid 10001 in the image
    _remove()
    port = free_port()
    try:
        sh("docker", "network", "create", NET)
        sh(
            "docker", "run", "-d", "--name", f"{PREFIX}nats", "--network", NET,
            "--network-alias", "nats", "--platform", "linux/arm64",
            "-v", f"{conf}:/etc/nats/pingpong:ro", "--tmpfs", "/data",
            "-e", "NATS_SYNC_INTERVAL=always",
            NATS_IMAGE, "--config", "/etc/nats/pingpong/nats.conf",
        )  # fmt: skip
        for name, (image, args, _) in SERVICES.items():
            role = args[1] if args[0] == "player" else args[0]
            publish = ["-p", f"127.0.0.1:{port}:3000"] if name == "proxy" else []
            platform = "linux/arm64" if image.endswith("arm64") else "linux/arm/v7"
            sh(
                "docker", "run", "-d", "--name", f"{PREFIX}{name}", "--network", NET,
                "--platform", platform, *publish,
                "-v", f"{conf}/{role}.password:/run/secrets/nats_password:ro",
                "-e", "NATS_URL=nats://nats:4222", "-e", f"NATS_USER={role}",
                "-e", "NATS_PASSWORD_FILE=/run/secrets/nats_password",
                "-e", f"INSTANCE_ID={name}@{image.split(':')[1]}",
                image, *args,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until("a game on the ARM proxy", lambda: get(url + "/")[0] == 200, timeout=300)
        yield url
    finally:
        for name in ("nats", *SERVICES):
            tail = logs(f"{PREFIX}{name}").splitlines()[-15:]
            print(f"--- {name}\n" + "\n".join(tail))
        _remove()


def test_each_service_runs_on_the_arch_of_its_image(arm_game: str) -> None:
    for name, (image, _, machine) in SERVICES.items():
        assert sh("docker", "exec", f"{PREFIX}{name}", "uname", "-m").strip() == machine, image
    assert sh("docker", "exec", f"{PREFIX}nats", "uname", "-m").strip() == "aarch64"
    version = sh("docker", "exec", f"{PREFIX}nats", "nats-server", "--version").strip()
    print(f"the arm64 nats-server on the project's config: {version}")


def test_games_across_arm64_and_armv7_services_are_valid_and_counted(arm_game: str) -> None:
    games = []
    for _ in range(40):
        status, body = get(arm_game + "/?format=json")
        assert status == 200, body
        games.append(Game.model_validate_json(body))
    for game in games:
        sides = [s.side for s in game.strokes]
        assert sides == ["ping" if n % 2 == 0 else "pong" for n in range(len(sides))]
        results = [s.result for s in game.strokes]
        assert all(r is Result.HIT for r in results[:-1])
        if game.winner is not None:
            assert results[-1] is Result.MISS
            assert game.winner != game.strokes[-1].side
        assert game.manager == "manager@arm64"
    instances = {s.instance for g in games for s in g.strokes}
    assert instances == {"ping@arm64", "pong@armv7"}
    status, text = get(arm_game + "/")
    assert status == 200
    assert text.splitlines()[-1].startswith(("The winner is", "DRAW"))

    def counted() -> bool:
        status, body = get(arm_game + "/scores.json")
        return status == 200 and Scores.model_validate_json(body).games >= len(games) + 1

    wait_until("the armv7 scoreboard to count the games", counted, timeout=60)
    print(json.dumps({"arm_games": len(games) + 1}))

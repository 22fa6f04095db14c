"""A real single-node Docker Swarm running stack.yml (../shared/tools/swarm-up provides it)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pingpong.messages import Scores

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT.parent / "shared" / "tools"
STACK = "pptest"
BASE = "http://127.0.0.1:3000"


def logs(container: str) -> str:
    """A container's output, both streams (nats-server logs to stderr)."""
    done = subprocess.run(
        ["docker", "logs", container], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout + done.stderr


def sh(
    *args: str, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> str:
    """Run a command; its stdout. Fails the test with stderr on a non-zero exit."""
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def http_get(path: str, timeout: float = 15, base: str = BASE) -> tuple[int, str]:
    """GET ``base`` (127.0.0.1:3000) + path: status and body (status 0 if nothing answers)."""
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


def game_json() -> dict[str, object]:
    status, body = http_get("/?format=json")
    assert status == 200, body
    game: dict[str, object] = json.loads(body)
    return game


def instances(game: dict[str, object]) -> set[str]:
    return {str(s["instance"]) for s in game["strokes"]}  # type: ignore[attr-defined]


def wait_until(what: str, check: object, timeout: float, interval: float = 1.0) -> None:
    """Poll ``check()`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


@dataclass(frozen=True)
class Deployed:
    stack: str
    image: str

    def service(self, name: str) -> str:
        return f"{self.stack}_{name}"


def docker_ready() -> None:
    """Fail (in CI) or skip (elsewhere) when no Docker engine answers."""
    if (
        shutil.which("docker") is None
        or subprocess.run(
            ["docker", "info"], capture_output=True, timeout=30, check=False
        ).returncode
    ):
        message = "no Docker engine: run ../shared/tools/swarm-up first"
        if os.environ.get("CI"):
            pytest.fail(message)  # never skip in CI
        pytest.skip(message)


@pytest.fixture(scope="session")
def image() -> str:
    """pingpong's image built from a local wheelhouse on the local base image."""
    docker_ready()
    tag = f"pingpong:test-{int(time.time())}"
    base = os.environ.get("PYTHON_IMAGE", "local/python:3.11-slim")
    if base.endswith(":3.11-slim") and sys.version_info[:2] != (3, 11):
        pytest.fail(f"{base} needs cp311 wheels: run the swarm tests with Python 3.11")
    sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--wheel-dir",
        str(ROOT / "wheelhouse"),
        str(ROOT),
        timeout=600,
    )
    sh(
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--dest",
        str(ROOT / "wheelhouse"),
        "--only-binary=:all:",
        "setuptools>=77",
        timeout=600,
    )
    sh(
        "docker",
        "build",
        "-q",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "-t",
        tag,
        str(ROOT),
        timeout=900,
    )
    return tag


@contextlib.contextmanager
def deployed(
    stack: str, image: str, files: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Deployed]:
    """``files`` deployed as ``stack`` until a game plays; swarm-down afterwards, pass or fail."""
    down = str(TOOLS / "swarm-down")
    sh(down, stack, timeout=180)
    volumes = sh("docker", "volume", "ls", "-q", "--filter", f"name={stack}_").split()
    if volumes:  # a fresh event log
        sh("docker", "volume", "rm", "-f", *volumes)
    env = {
        "IMAGE": image,
        "NATS_IMAGE": os.environ.get("NATS_IMAGE", "local/nats:2"),
        **(env or {}),
    }
    compose = [arg for f in files for arg in ("-c", str(ROOT / f))]
    # fresh NATS passwords for every role: the files stack.yml makes Docker secrets of
    sh(sys.executable, "-m", "pingpong", "auth-secrets", str(ROOT / "secrets"))
    try:
        sh("docker", "stack", "deploy", "--resolve-image", "never", *compose, stack, env=env)
        wait_until("a game on 127.0.0.1:3000", lambda: http_get("/")[0] == 200, timeout=180)
        wait_until("the scoreboard", lambda: http_get("/scores.json")[0] == 200, timeout=90)
        yield Deployed(stack, image)
    finally:
        for svc in ("manager", "ping", "pong", "scoreboard", "proxy", "nats"):
            logs = subprocess.run(
                ["docker", "service", "logs", "--tail", "40", f"{stack}_{svc}"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            print(f"--- {svc} (last lines)\n{logs.stdout}{logs.stderr}")
        sh(down, stack, timeout=180, check=False)


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[Deployed]:
    """stack.yml deployed as ``pptest``; removed with swarm-down afterwards, pass or fail."""
    with deployed(STACK, image, ["stack.yml"]) as d:
        yield d


@pytest.fixture(scope="module")
def cluster_stack(image: str) -> Iterator[Deployed]:
    """stack.yml with the 3-server NATS cluster (nats/cluster.yml) as ``ppcluster``."""
    with deployed(
        "ppcluster",
        image,
        ["stack.yml", "nats/cluster.yml"],
        env={"NATS_PLACEMENT": "node.platform.os == linux", "NATS_PER_NODE": "3"},  # one node
    ) as d:
        yield d


class Load:
    """Games played continuously from ``threads`` threads a base URL until stopped (bounded
    in time and count)."""

    def __init__(
        self,
        threads: int = 4,
        max_games: int = 200_000,
        max_seconds: float = 300,
        bases: tuple[str, ...] = (BASE,),
    ):
        self.ok = 0
        self.failed: list[str] = []
        self.deadline = time.monotonic() + max_seconds
        self.max_games = max_games
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.slowest = 0.0
        self.threads = [
            threading.Thread(target=self.run, args=(base,), daemon=True)
            for base in bases
            for _ in range(threads)
        ]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def run(self, base: str) -> None:
        while (
            not self.stop.is_set()
            and time.monotonic() < self.deadline
            and self.ok + len(self.failed) < self.max_games
        ):
            t0 = time.monotonic()
            status, body = http_get("/", timeout=30, base=base)
            with self.lock:
                self.slowest = max(self.slowest, time.monotonic() - t0)
                if status == 200:
                    self.ok += 1
                else:
                    self.failed.append(f"{base} {status} {body.strip()[:200]}")
            if status != 200:
                time.sleep(0.2)  # a broken stack must not turn this into a busy loop


def scores(base: str = BASE) -> Scores:
    status, body = http_get("/scores.json", base=base)
    assert status == 200, body
    return Scores.model_validate_json(body)


def settled_games(base: str = BASE, quiet: float = 5.0) -> int:
    """The scoreboard's count once it has not moved for ``quiet`` seconds (one storing into
    a stream whose leader is being elected stalls for a few)."""
    last, since = -1, time.monotonic()
    deadline = since + 120
    while time.monotonic() < deadline:
        now = scores(base).games
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.5)
    pytest.fail("the scores kept moving")

"""The Go original, side by side: ``bench/go-original`` built with the Go toolchain and
run as three processes (the table, a ping player and a pong player) on 127.0.0.1.

It is the original as its README and source describe it (HTTP per swing with Go's
default client), rebuilt here because no image can be pulled; its one change is that
the bench turns its two log lines a game off (they would go through the bench's own
pipe, and the services log no line a game either).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Final

from bench.process import free_port, output
from pingpong.supervisor import Child

SOURCE: Final = Path(__file__).parent / "go-original"
"""The Go module of the original."""

BUILD_TIMEOUT: Final = 300.0
"""Seconds ``go build`` may take (a cold build cache compiles net/http)."""


async def build(dest: str) -> str | None:
    """Compile the original into ``dest``; its path, or None when there is no ``go``.

    Raises :class:`RuntimeError` (one line) if ``go build`` fails.
    """
    go = shutil.which("go")
    if go is None:
        return None
    binary = os.path.join(dest, "pingpong-original")
    await output(
        go,
        "build",
        "-o",
        binary,
        ".",
        timeout=BUILD_TIMEOUT,
        what=f"go build of {SOURCE}",
        cwd=SOURCE,
        env={**os.environ, "CGO_ENABLED": "0"},
        stderr=asyncio.subprocess.STDOUT,
    )
    return binary


def children(binary: str, hit_chance: int) -> tuple[list[Child], str]:
    """The players and the table, in start order, and the table's URL."""
    ping, pong, at = (f"127.0.0.1:{free_port()}" for _ in range(3))
    players = [
        Child(name, [binary, "--hit-chance", str(hit_chance), "--listen", addr], {})
        for name, addr in (("go-ping", ping), ("go-pong", pong))
    ]
    endpoints = ["--ping-endpoint", f"http://{ping}/", "--pong-endpoint", f"http://{pong}/"]
    table = Child(
        "go-table",
        [binary, "--mode", "server", "--listen", at, "--log-games=false", *endpoints],
        {},
    )
    for child in (*players, table):
        child.ready_line = "listening on"
    return [*players, table], f"http://{at}/"

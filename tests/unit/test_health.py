from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pingpong.health import check


def test_a_fresh_health_file_is_healthy(tmp_path: Path) -> None:
    f = tmp_path / "h"
    f.touch()
    assert check(f) is None


def test_a_stale_health_file_says_how_long_it_has_been(tmp_path: Path) -> None:
    f = tmp_path / "h"
    f.touch()
    problem = check(f, max_age=15, now=f.stat().st_mtime + 40)
    assert problem is not None
    assert problem.startswith("not connected to NATS for 40s")


def test_a_missing_health_file_is_unhealthy(tmp_path: Path) -> None:
    assert "does not exist" in (check(tmp_path / "nope") or "")


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pingpong", "healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_healthcheck_command_exits_1_with_one_line_when_unhealthy(tmp_path: Path) -> None:
    env = {**os.environ, "HEALTH_FILE": str(tmp_path / "nope")}
    done = healthcheck(env)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    (tmp_path / "nope").touch()
    assert healthcheck(env).returncode == 0

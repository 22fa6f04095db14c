"""Every pytest marker has its own make target, which CI runs, and `make test` leaves
it out: the README's test command needs nothing from ../shared/tools."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def markers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {m.split(":")[0] for m in config["tool"]["pytest"]["ini_options"]["markers"]}


def recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert found, f"no make target {target}"
    return found.group(1)


def test_make_test_leaves_out_every_marked_suite() -> None:
    selection = re.search(r'-m "([^"]*)"', recipe("test"))
    assert selection
    assert {f"not {m}" for m in markers()} == set(selection.group(1).split(" and "))


def test_each_marked_suite_has_a_make_target_that_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for marker in markers():
        assert f"-m {marker}" in recipe(f"test-{marker}")
        assert f"make test-{marker}" in ci

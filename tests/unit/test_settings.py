from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pingpong.errors import SettingsError
from pingpong.settings import Settings


def test_defaults_match_the_original_game() -> None:
    s = Settings.from_env({})
    assert s.hit_chance == 85
    assert s.max_rounds == 99


def test_settings_come_from_environment_variables() -> None:
    s = Settings.from_env(
        {"HIT_CHANCE": "40", "NATS_URL": "nats://a:1,nats://b:2", "LOG_FORMAT": "JSON"}
    )
    assert s.hit_chance == 40
    assert s.servers == ["nats://a:1", "nats://b:2"]
    assert s.log_format == "json"


@pytest.mark.parametrize(
    ("age", "seconds"),
    [("7d", 604800.0), ("7D", 604800.0), ("12h", 43200.0), ("90m", 5400.0), ("3600", 3600.0)],
)
def test_the_event_log_age_is_a_duration_with_a_unit_or_seconds(age: str, seconds: float) -> None:
    assert Settings.from_env({"STREAM_MAX_AGE": age}).stream_max_age == seconds


def test_the_event_log_size_takes_units() -> None:
    assert Settings.from_env({"STREAM_MAX_BYTES": "64MiB"}).stream_max_bytes == 64 * 1024 * 1024
    assert Settings.from_env({"STREAM_MAX_BYTES": "1GB"}).stream_max_bytes == 10**9


def test_the_viewers_cap_and_the_feed_rate_come_from_the_environment() -> None:
    s = Settings.from_env({"MAX_VIEWERS": "50", "FEED_RATE": "12.5"})
    assert (s.max_viewers, s.feed_rate) == (50, 12.5)


def test_a_flag_overrides_the_environment() -> None:
    assert Settings.from_env({"HIT_CHANCE": "40"}, hit_chance="60").hit_chance == 60


def test_a_secret_is_read_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = Settings.from_env({"NATS_PASSWORD_FILE": str(secret)})
    assert s.nats_password is not None
    assert s.nats_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HIT_CHANCE": "150"}, "HIT_CHANCE: Input should be less than or equal to 100"),
        ({"HIT_CHANCE": "lots"}, "HIT_CHANCE: Input should be a valid integer"),
        ({"NATS_URL": "localhost"}, "NATS_URL: Value error, 'localhost' is not a URL"),
        ({"SWING_TIMEOUT": "-1"}, "SWING_TIMEOUT: Input should be greater than 0"),
        ({"NATS_PASSWORD_FILE": "/nonexistent"}, "NATS_PASSWORD_FILE: cannot read /nonexistent"),
        ({"STREAM_MAX_BYTES": "lots"}, "STREAM_MAX_BYTES: could not parse value and unit"),
        ({"STREAM_MAX_BYTES": "1KB"}, "STREAM_MAX_BYTES: Input should be greater than or equal"),
        ({"STREAM_MAX_AGE": "1 week"}, "STREAM_MAX_AGE: Value error, '1 week' is not a duration"),
        ({"STREAM_MAX_AGE": "10s"}, "STREAM_MAX_AGE: Input should be greater than or equal to 60"),
        ({"STREAM_MAX_AGE": "999999d"}, "STREAM_MAX_AGE: Input should be less than or equal"),
        ({"STREAM_MAX_BYTES": "100EiB"}, "STREAM_MAX_BYTES: Input should be less than or equal"),
        ({"MAX_VIEWERS": "0"}, "MAX_VIEWERS: Input should be greater than or equal to 1"),
        ({"MAX_VIEWERS": "many"}, "MAX_VIEWERS: Input should be a valid integer"),
        ({"FEED_RATE": "0.5"}, "FEED_RATE: Input should be greater than or equal to 1"),
        ({"FEED_RATE": "fast"}, "FEED_RATE: Input should be a valid number"),
        (
            {"STREAM_MAX_AGE": "2m", "STORE_TIMEOUT": "300"},
            "STREAM_MAX_AGE: Value error, must be at least STORE_TIMEOUT + 10 s (310 s)",
        ),
    ],
)
def test_a_bad_value_raises_one_line_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_the_original_hit_chance_flag_exits_2_with_one_line_on_a_bad_value() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pingpong", "player", "ping", "--hit-chance", "101"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "pingpong: HIT_CHANCE: Input should be less than or equal to 100 (got '101')"
    ]

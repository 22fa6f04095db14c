"""One settings model for every service, read from environment variables.

Every field ``foo_bar`` is read from ``FOO_BAR``; ``FOO_BAR_FILE`` names a file
to read it from instead (Docker secrets). A bad value raises
:class:`~pingpong.errors.SettingsError` with one line naming the variable; the
CLI turns that into exit status 2.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pingpong.errors import SettingsError
from pingpong.messages import (
    DEFAULT_BATCH_GAMES,
    DEFAULT_MAX_ROUNDS,
    DEFAULT_SWINGS_AHEAD,
    LARGEST_MAX_ROUNDS,
    MAX_BATCH_GAMES,
    MAX_SWING_BATCH,
)

DEFAULT_STREAM_MAX_BYTES: Final = 256 * 1024 * 1024
"""Bytes each of the event log's two streams may hold before its oldest events go (512 MiB
in all, inside nats/nats.conf's 1 GB ``max_file_store``)."""

DEFAULT_STREAM_MAX_AGE: Final = 7 * 24 * 3600.0
"""Seconds an event stays in the event log."""

DUPLICATE_SPARE: Final = 10.0
"""Seconds past ``STORE_TIMEOUT`` that the event log still drops a second publish of a
result (same ``Nats-Msg-Id``). A manager retries a store for ``STORE_TIMEOUT``, so the
window must outlast that (a fixed 2 minutes let a retry after a longer ``STORE_TIMEOUT``
be stored twice); nats-server keeps every id of the window in memory, so it need not
outlast it by much."""

DEFAULT_MAX_VIEWERS: Final = 1000
"""``/events`` clients a proxy serves at once by default. Each costs the proxy about
14 KB (71 MB with 1,000 at 64 games in flight, 85 MB with 2,000), and one that stops
reading holds up to 32 KiB of kernel memory until it is let go: 1,000 keep the proxy
well inside the 128 MB its Swarm service may use."""

DEFAULT_FEED_RATE: Final = 30.0
"""Events a second of the live feed by default: a few games a second, in whole rallies."""

_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION: Final = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*", re.IGNORECASE)


def seconds(value: str) -> float:
    """Seconds in a duration such as ``7d``, ``12h``, ``90m``, ``30s`` or ``45`` (seconds).

    Raises ``ValueError`` with the forms it takes.
    """
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration such as 7d, 12h, 90m, 30s or 45")
    return float(match[1]) * _UNIT_SECONDS[match[2].lower()]


class Settings(BaseModel):
    """Settings of every pingpong service (each uses the fields it needs)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL(s), comma-separated for a cluster.",
    )
    nats_user: str | None = Field(default=None, description="NATS user name.")
    nats_password: SecretStr | None = Field(default=None, description="NATS password.")
    nats_token: SecretStr | None = Field(default=None, description="NATS token.")
    nats_creds: Path | None = Field(default=None, description="NATS .creds file (JWT + nkey).")
    nats_sync_interval: str = Field(
        default="always",
        description="How often nats-server syncs the JetStream store to disk (`pingpong up`; "
        "the stack passes NATS_SYNC_INTERVAL to its server): `always`, before each stored "
        "result is acked, so a power cut loses no answered game; or seconds such as `120s` "
        "(nats-server's own default), faster, and a power cut loses what came since.",
    )
    nats_anonymous: bool = Field(
        default=True,
        description="A NATS connection without credentials is the read-only watcher "
        "(`pingpong up`; `off`: refused).",
    )
    instance_id: str | None = Field(
        default=None,
        max_length=200,
        description="Who this process is, in every reply, event and log line.",
    )
    hit_chance: int = Field(default=85, ge=0, le=100, description="Percent of swings that HIT.")
    max_rounds: int = Field(
        default=DEFAULT_MAX_ROUNDS,
        ge=1,
        le=LARGEST_MAX_ROUNDS,
        description="Rounds (a PING and a PONG stroke each) before a draw.",
    )
    swing_timeout: float = Field(default=0.5, gt=0, le=60, description="Seconds per swing request.")
    swing_retries: int = Field(
        default=15,
        ge=0,
        le=100,
        description="More requests of a swing a player took and did not answer within "
        "SWING_TIMEOUT (each earlier request's answer still counts), before the game is "
        "aborted; a side no player serves is given up after about 4 s.",
    )
    swings_ahead: int = Field(
        default=DEFAULT_SWINGS_AHEAD,
        ge=1,
        le=2 * MAX_SWING_BATCH,
        description="Strokes the manager asks for at once, half of them of each side "
        "(1: one swing request at a time, as the original).",
    )
    batch_games: int = Field(
        default=DEFAULT_BATCH_GAMES,
        ge=1,
        le=MAX_BATCH_GAMES,
        description="Games whose swings the manager sends to a side in one request on "
        "`<side>.swings`, gathered in one turn of its event loop "
        "(a lone game's, and all with 1: a request per game on `<side>.swing`).",
    )
    game_timeout: float = Field(default=10.0, gt=0, le=600, description="Seconds a game may last.")
    store_timeout: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="Seconds the manager keeps trying to store a game's result in the event log "
        "(a NATS cluster electing a new stream leader takes up to ~10 s); "
        "a game is answered only once its result is stored.",
    )
    max_games: int = Field(
        default=512, ge=1, le=100_000, description="Games in flight per manager."
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Replicas of the event log's streams and the scores (3 on a NATS cluster).",
    )
    stream_max_bytes: ByteSize = Field(
        default=ByteSize(DEFAULT_STREAM_MAX_BYTES),
        ge=1024 * 1024,
        le=1 << 50,
        description="Bytes each stream of the event log (RALLY, STROKES) keeps before its "
        "oldest events go (256MiB, 1GB, or bytes).",
    )
    stream_max_age: float = Field(
        default=DEFAULT_STREAM_MAX_AGE,
        ge=60,
        le=100 * 365 * 86400,
        description="How long an event stays in the RALLY event log (7d, 12h, 90m, or seconds).",
    )
    max_inflight: int = Field(
        default=1024,
        ge=1,
        le=100_000,
        description="Games one proxy plays at once; beyond it: 503 with Retry-After.",
    )
    max_viewers: int = Field(
        default=DEFAULT_MAX_VIEWERS,
        ge=1,
        le=100_000,
        description="`/events` clients (the scores page's live feed) one proxy serves at "
        "once; beyond it: 503 with Retry-After.",
    )
    feed_rate: float = Field(
        default=DEFAULT_FEED_RATE,
        ge=1,
        le=100_000,
        description="Events a second an `/events` client gets at most from the live feed of "
        "every game: whole games are sampled to keep within it (`/events?game=ID` is "
        "never sampled).",
    )
    http_host: str = Field(default="0.0.0.0", description="Address the proxy listens on.")
    http_port: int = Field(default=3000, ge=0, le=65535, description="Port the proxy listens on.")
    health_file: Path | None = Field(
        default=None,
        description="File touched every few seconds while connected to NATS "
        "(for `pingpong healthcheck`, a container HEALTHCHECK).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_format: Literal["text", "json"] = Field(default="text")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str):
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator("stream_max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return seconds(value) if isinstance(value, str) else value

    @field_validator("stream_max_age")
    @classmethod
    def _outlasts_retries(cls, value: float, info: ValidationInfo) -> float:
        store_timeout = info.data.get("store_timeout")
        if store_timeout is not None and value < store_timeout + DUPLICATE_SPARE:
            raise ValueError(
                f"must be at least STORE_TIMEOUT + {DUPLICATE_SPARE:g} s "
                f"({store_timeout + DUPLICATE_SPARE:g} s), so a retried result is stored once"
            )
        return value

    @field_validator("nats_sync_interval", mode="before")
    @classmethod
    def _sync(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() != "always":
            return f"{seconds(value):g}s"  # nats-server reads "2m" from a variable as 2 million
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("nats_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        for url in value.split(","):
            if not url.strip():
                raise ValueError("empty server URL")
            if "://" not in url:
                raise ValueError(f"{url.strip()!r} is not a URL such as nats://host:4222")
        return value

    @property
    def duplicate_window(self) -> float:
        """Seconds the event log recognises a second publish of a result: its retries'."""
        return self.store_timeout + DUPLICATE_SPARE

    @property
    def servers(self) -> list[str]:
        """The NATS server URLs."""
        return [u.strip() for u in self.nats_url.split(",")]

    @property
    def answer_timeout(self) -> float:
        """Seconds a requester waits for a game: play it, store its result, one spare."""
        return self.game_timeout + self.store_timeout + 1

    def instance(self, role: str) -> str:
        """The instance id: ``INSTANCE_ID``, or ``<role>-<pid>@<host>``."""
        return self.instance_id or f"{role}-{os.getpid()}@{socket.gethostname()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), then ``overrides`` (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            var = name.upper()
            if f"{var}_FILE" in env:
                path = env[f"{var}_FILE"]
                try:
                    values[name] = Path(path).read_text().strip()
                except OSError as e:
                    raise SettingsError(f"{var}_FILE: cannot read {path}: {e.strerror}") from None
            elif var in env:
                values[name] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            detail = e.errors(include_url=False)[0]
            name = str(detail["loc"][0]) if detail["loc"] else "settings"
            shown = "" if "password" in name or "token" in name else f" (got {detail['input']!r})"
            raise SettingsError(f"{name.upper()}: {detail['msg']}{shown}") from None

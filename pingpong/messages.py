"""The wire contracts: every payload is JSON of one of these frozen models.

Each model carries ``v`` (the schema version) and forbids unknown fields, so a
message from a newer or broken sender fails loudly instead of being half read.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from pingpong.errors import BadMessageError
from pingpong.subjects import Side

SCHEMA_VERSION: Final = 1
"""Version of every message below that does not name its own; bumped on an incompatible
change (a message changed alone gets a version of its own: :data:`SWING_EVENT_VERSION`)."""

DEFAULT_MAX_ROUNDS: Final = 99
"""Rounds without a miss after which a game is a draw, as the original: a round is a
PING stroke and a PONG stroke, so a draw is 198 strokes."""

LARGEST_MAX_ROUNDS: Final = 1000
"""The largest cap a game may ask for: a draw of 2,000 strokes is about 250 KB of JSON
(600 KB with 200-character instance ids), inside NATS's 1 MB payload limit, so its result
can be stored and answered."""

DEFAULT_SWINGS_AHEAD: Final = 32
"""Strokes the manager asks for at once (16 a side): at 85% hits 99.4% of games need no more."""

MAX_SWING_BATCH: Final = 100
"""Most swings one request may ask of a player."""

DEFAULT_BATCH_GAMES: Final = 64
"""Games whose swings a manager sends to a side in one ``<side>.swings`` request, at most."""

MAX_BATCH_GAMES: Final = 1000
"""Most games one ``<side>.swings`` request may carry."""

GAME_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
"""A game id: one subject token of letters, digits, ``-`` and ``_``."""

GameId = Annotated[
    str,
    Field(
        pattern=GAME_ID_PATTERN,
        description="Identifies one game; a single subject token.",
        examples=["3f9c2a7d41b0"],
    ),
]
_IDS = random.Random()  # seeded from the OS; ids need to be unique, not secret


def new_game_id() -> str:
    """A fresh game id: 12 hex digits, one subject token."""
    return f"{_IDS.getrandbits(48):012x}"


Instance = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Who answered: `<service>.<slot>@<node>` (Swarm), `<side>-<n>@<host>` (local).",
        examples=["ping.1@node-1", "ping-2@laptop"],
    ),
]


class Result(StrEnum):
    """What a player did with the ball."""

    HIT = "HIT"
    MISS = "MISS"


class Message(BaseModel):
    """Base of every message: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(default=SCHEMA_VERSION, description="Schema version.")


class Swing(Message):
    """Request on ``<side>.swing``: the ball is coming, hit it.

    ``count`` asks for this side's next strokes at once (``stroke``, ``stroke + 2``, ...),
    so a rally needs fewer round trips; the player stops at its first MISS.
    """

    game_id: GameId
    stroke: int = Field(ge=1, le=100_000, description="1 for the serve.", examples=[1])
    count: int = Field(
        default=1, ge=1, le=MAX_SWING_BATCH, description="Swings in a row asked for.", examples=[8]
    )


class SwingReply(Message):
    """Reply to a :class:`Swing`: one result per stroke swung, up to the first MISS."""

    side: Side = Field(description="The side that swung.", examples=["ping"])
    instance: Instance
    results: tuple[Result, ...] = Field(
        min_length=1, max_length=MAX_SWING_BATCH, examples=[["HIT", "HIT", "MISS"]]
    )

    @model_validator(mode="after")
    def _stops_at_the_first_miss(self) -> SwingReply:
        if Result.MISS in self.results[:-1]:
            raise ValueError("results go on after a MISS")
        return self


Results = Annotated[
    tuple[Result, ...],
    Field(min_length=1, max_length=MAX_SWING_BATCH, examples=[["HIT", "HIT", "MISS"]]),
]


class SwingBatch(Message):
    """Request on ``<side>.swings``: the swings of several games at once.

    The manager gathers the swings its games ask of a side in one turn of its
    event loop into one request, so many games cost one round trip.
    """

    swings: tuple[Swing, ...] = Field(min_length=1, max_length=MAX_BATCH_GAMES)


class SwingBatchReply(Message):
    """Reply to a :class:`SwingBatch`: the results of each swing, in the request's order."""

    side: Side = Field(examples=["ping"])
    instance: Instance
    results: tuple[Results, ...] = Field(min_length=1, max_length=MAX_BATCH_GAMES)

    @model_validator(mode="after")
    def _each_stops_at_its_first_miss(self) -> SwingBatchReply:
        for results in self.results:
            if Result.MISS in results[:-1]:
                raise ValueError("results go on after a MISS")
        return self


class GameRequest(Message):
    """Request on ``game.play``: play one game. Every field is optional."""

    game_id: GameId | None = Field(default=None, description="Chosen by the manager if absent.")
    max_rounds: int | None = Field(
        default=None,
        ge=1,
        le=LARGEST_MAX_ROUNDS,
        description="Rounds (a PING and a PONG stroke each) before a draw (default 99).",
    )


class Stroke(Message):
    """One swing of a game as it was played."""

    stroke: int = Field(ge=1, examples=[1])
    side: Side = Field(examples=["ping"])
    instance: Instance
    result: Result = Field(examples=["HIT"])
    latency_ms: float = Field(ge=0, description="Round trip of the swing request.")
    attempts: int = Field(default=1, ge=1, description="Requests sent; >1 means retried.")


class Game(Message):
    """Reply to ``game.play``: the whole game."""

    game_id: GameId
    strokes: tuple[Stroke, ...]
    winner: Side | None = Field(description="None for a draw.", examples=["pong"])
    winner_instance: Instance | None = Field(
        default=None, description="The player whose last HIT won the game."
    )
    manager: Instance
    duration_ms: float = Field(ge=0)
    started_at: datetime

    @property
    def is_draw(self) -> bool:
        """True when no side missed before the cap."""
        return self.winner is None

    def transcript(self) -> str:
        """The original's text format: one ``PING --> HIT`` line a stroke, then the result."""
        lines = [f"{s.side.upper()} --> {s.result}" for s in self.strokes]
        lines.append("DRAW" if self.winner is None else f"The winner is {self.winner.upper()}")
        return "\n".join(lines) + "\n"


class RallyStarted(Message):
    """Event ``rally.<game_id>.started``."""

    kind: Literal["started"] = "started"
    game_id: GameId
    manager: Instance
    max_rounds: int = Field(description="Rounds (a PING and a PONG stroke) before a draw.")
    at: datetime


SWING_EVENT_VERSION: Final = 2
"""Version of :class:`RallySwing`: 2 since it carries the strokes of an answer (1: one stroke)."""


class RallySwing(Message):
    """Event ``rally.<game_id>.swing``: the strokes one answer of a side made playable, in order.

    A side answers all its strokes of a round at once (``Swing.count``), so its strokes
    are played together, as soon as the other side's strokes between them are in: the
    event carries them together, one event an answer instead of one a stroke.
    """

    v: Literal[2] = Field(  # type: ignore[assignment]
        default=SWING_EVENT_VERSION, description="Schema version of this event."
    )
    kind: Literal["swing"] = "swing"
    game_id: GameId
    strokes: tuple[Stroke, ...] = Field(min_length=1, description="Stroke order, no gaps.")


class RallyFinished(Message):
    """Event ``rally.<game_id>.finished``: the game, with its winner or a draw."""

    kind: Literal["finished"] = "finished"
    game: Game


class RallyAborted(Message):
    """Event ``rally.<game_id>.aborted``: the game could not be finished."""

    kind: Literal["aborted"] = "aborted"
    game_id: GameId
    manager: Instance
    reason: str
    strokes: int = Field(ge=0, description="Strokes played before the abort.")
    at: datetime


Outcome = Literal["win", "draw", "aborted"]


class GameSummary(Message):
    """One line of the scoreboard's recent games."""

    game_id: GameId
    outcome: Outcome = Field(examples=["win"])
    winner: Side | None = Field(default=None, examples=["ping"])
    strokes: int = Field(ge=0, description="Strokes played.")
    manager: Instance
    at: datetime


def _no_wins() -> dict[Side, int]:
    return {"ping": 0, "pong": 0}


class Scores(Message):
    """Reply to ``scores.get`` and body of ``GET /scores.json``."""

    games: int = Field(default=0, ge=0, description="Finished games (draws included).")
    wins: dict[Side, int] = Field(default_factory=_no_wins)
    draws: int = Field(default=0, ge=0)
    aborted: int = Field(default=0, ge=0, description="Games that could not be finished.")
    longest_rally: int = Field(default=0, ge=0, description="Most strokes in one game.")
    total_strokes: int = Field(default=0, ge=0, description="Strokes of all finished games.")
    average_rally: float = Field(default=0.0, ge=0, description="Strokes per finished game.")
    wins_by_instance: dict[str, int] = Field(
        default_factory=dict, description="Games won, by the player whose last HIT won them."
    )
    last_games: tuple[GameSummary, ...] = Field(default=(), description="Newest first, 20 at most.")
    last_seq: int = Field(
        default=0, ge=0, description="Last RALLY stream sequence of a result folded in."
    )


RallyEvent = Annotated[
    RallyStarted | RallySwing | RallyFinished | RallyAborted, Field(discriminator="kind")
]
_RALLY_EVENT: TypeAdapter[RallyEvent] = TypeAdapter(RallyEvent)

M = TypeVar("M", bound=Message)


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def first_error(error: ValidationError) -> str:
    """One line that says what is wrong with a payload (the first problem)."""
    detail = error.errors(include_url=False)[0] if error.error_count() else None
    if detail is None:
        return "invalid message"
    where = ".".join(str(p) for p in detail["loc"]) or "payload"
    return f"{where}: {detail['msg']}"


def decode(model: type[M], data: bytes) -> M:
    """Parse ``data`` as ``model``; raise :class:`BadMessageError` with one line."""
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        raise BadMessageError(f"bad {model.__name__}: {first_error(e)}") from None


def decode_event(data: bytes) -> RallyEvent:
    """Parse any rally event; raise :class:`BadMessageError` with one line."""
    try:
        return _RALLY_EVENT.validate_json(data)
    except ValidationError as e:
        raise BadMessageError(f"bad rally event: {first_error(e)}") from None


def encode(message: Message) -> bytes:
    """The JSON bytes of a message."""
    return message.model_dump_json().encode()

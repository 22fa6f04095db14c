"""Every NATS subject, queue group and stream name, defined once.

Handlers never build a subject string inline: they call the functions here.
"""

from __future__ import annotations

from typing import Final, Literal

Side = Literal["ping", "pong"]
EventKind = Literal["started", "swing", "finished", "aborted"]

SIDES: Final[tuple[Side, Side]] = ("ping", "pong")
"""The two sides, in serving order: ping always serves."""

GAME_PLAY: Final = "game.play"
"""Request/reply: play one whole game (served by managers)."""

MANAGER_QUEUE: Final = "manager"
"""Queue group shared by all manager replicas."""

SCORES_GET: Final = "scores.get"
"""Request/reply: the current scores (served by the scoreboard)."""

SCOREBOARD_QUEUE: Final = "scoreboard"
"""Queue group shared by scoreboard replicas."""

RALLY_ALL: Final = "rally.>"
"""Every event of every rally: ``nats sub 'rally.>'``."""

RALLY_FINISHED_ALL: Final = "rally.*.finished"
"""Only the results: ``nats sub 'rally.*.finished'``."""

RALLY_ABORTED_ALL: Final = "rally.*.aborted"
"""Only the aborted games."""

STREAM: Final = "RALLY"
"""The event log's stream of results (``rally.*.finished``, ``rally.*.aborted``), synced to
disk before each ack: every game answered is in it."""

STROKES_STREAM: Final = "STROKES"
"""The event log's stream of play (``rally.*.started``, ``rally.*.swing``), written to disk
in the background: a power cut may lose its last seconds."""

RALLY_PLAY: Final = ("rally.*.started", "rally.*.swing")
"""The events of a game in play (:data:`STROKES_STREAM`)."""


SCORES_BUCKET: Final = "SCORES"
"""The KV bucket where the scoreboard keeps its tallies with the last sequence folded in."""

SCORES_KEY: Final = "scores"
"""The one key of ``SCORES_BUCKET``."""

SCOREBOARD_CONSUMER: Final = "scoreboard"
"""The scoreboard's durable consumer of ``finished`` events on ``STREAM``."""

SCOREBOARD_ABORTED_CONSUMER: Final = "scoreboard-aborted"
"""The scoreboard's durable consumer of ``aborted`` events on ``STREAM``."""

RESULTS: Final = (RALLY_FINISHED_ALL, RALLY_ABORTED_ALL)
"""The events that change the scores (:data:`STREAM`, the scoreboard's consumers)."""


HEARTBEAT_HEADER: Final = "Pingpong-Heartbeat"
"""Request header of ``game.play``: seconds between "still playing" messages to the reply
subject (opt-in, so ``nats request game.play ''`` gets only the game). A heartbeat has
this header too, and no body."""


def swing_subject(side: Side) -> str:
    """The subject a side's players serve: ``ping.swing`` or ``pong.swing``."""
    return f"{side}.swing"


def swings_subject(side: Side) -> str:
    """Where a side's players take the swings of many games at once: ``ping.swings``."""
    return f"{side}.swings"


def swing_queue(side: Side) -> str:
    """The queue group of a side: replicas of one side share the swings."""
    return side


def rally_subject(game_id: str, kind: EventKind) -> str:
    """The subject of one event of one game: ``rally.<game_id>.<kind>``."""
    return f"rally.{game_id}.{kind}"


def rally_game(game_id: str) -> str:
    """Every event of one game: ``rally.<game_id>.>``."""
    return f"rally.{game_id}.>"


def rally_results(kind: Literal["finished", "aborted"]) -> str:
    """Every event of one kind of result: ``rally.*.finished`` or ``rally.*.aborted``."""
    return RALLY_FINISHED_ALL if kind == "finished" else RALLY_ABORTED_ALL


def scoreboard_consumer(kind: Literal["finished", "aborted"]) -> str:
    """The scoreboard's consumer of one kind of result (each has a single filter)."""
    return SCOREBOARD_CONSUMER if kind == "finished" else SCOREBOARD_ABORTED_CONSUMER


def finished_msg_id(game_id: str, kind: EventKind = "finished") -> str:
    """The ``Nats-Msg-Id`` of a game's final event, so a retried publish is stored once."""
    return f"{game_id}:{kind}"

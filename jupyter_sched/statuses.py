"""The run-status vocabulary, declared once: the statuses, their sets and how a run ended.

Every module that reasons about a run's status imports from here; the API schema's
``status`` field is :class:`RunStatus` (a ``StrEnum``, so the OpenAPI document and the
generated TypeScript union carry the same lower-case strings as the database).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic_core import core_schema


class RunStatus(StrEnum):
    """The states of a run: ``queued → running → succeeded | failed | timed_out |
    cancelled | lost``, and ``skipped`` (overlap or misfire policy, final at once)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"
    SKIPPED = "skipped"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        # Validated as the literal strings and inlined in the OpenAPI document as a string
        # ``enum`` (no separate component), so the document and the TypeScript union
        # generated from it read as they did before the enum existed.
        return core_schema.no_info_after_validator_function(
            cls, core_schema.literal_schema([status.value for status in cls])
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        # The sets ride along as vendor extensions wherever the enum is inlined, so the
        # panel (labextension/src/statuses.ts) is tested against this one declaration.
        json_schema: dict[str, Any] = handler(schema)
        return {**json_schema, **STATUS_SET_EXTENSIONS}


# The sets hold plain strings (the members' values), so they serve as they are in SQL
# (``Run.status.in_(FINAL_STATUSES)``) whatever the database driver does with enums.

#: Every status, in the order the API and the UI list them.
RUN_STATUSES: tuple[str, ...] = tuple(status.value for status in RunStatus)
#: Statuses of a run that is still going (waiting for a worker or executing).
IN_FLIGHT_STATUSES: frozenset[str] = frozenset({RunStatus.QUEUED.value, RunStatus.RUNNING.value})
#: Final run states: a run in one of these never changes again.
FINAL_STATUSES: frozenset[str] = frozenset(RUN_STATUSES) - IN_FLIGHT_STATUSES
#: Final states that count as a failure (statistics, notifications, ``after`` conditions).
FAILURE_STATUSES: frozenset[str] = frozenset(
    {RunStatus.FAILED.value, RunStatus.TIMED_OUT.value, RunStatus.LOST.value}
)
#: Statuses from which a retry is considered (the failures; a cancel is the user's wish).
RETRYABLE_STATUSES: frozenset[str] = FAILURE_STATUSES
#: Final states of a run that ran to an end (all but ``skipped``): what an ``after``
#: trigger with ``condition: completion`` waits for.
COMPLETED_STATUSES: frozenset[str] = FINAL_STATUSES - {RunStatus.SKIPPED.value}
#: The statuses of an upstream run that satisfy each condition of an ``after`` trigger.
CONDITION_STATUSES: dict[str, frozenset[str]] = {
    "success": frozenset({RunStatus.SUCCEEDED.value}),
    "failure": FAILURE_STATUSES,
    "completion": COMPLETED_STATUSES,
}
#: The sets as OpenAPI vendor extensions of the status enum, each in the order of
#: :data:`RUN_STATUSES`: the panel's copies are checked against them.
STATUS_SET_EXTENSIONS: dict[str, list[str]] = {
    f"x-{name}": [status for status in RUN_STATUSES if status in members]
    for name, members in (
        ("final", FINAL_STATUSES),
        ("failure", FAILURE_STATUSES),
        ("retryable", RETRYABLE_STATUSES),
    )
}


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as the worker (or the reaper, or a cancel) saw it."""

    status: str
    ename: str | None = None
    evalue: str | None = None
    cell_index: int | None = None

"""The API contract of report builders' operations: backfills, batches and summaries.

Beside :mod:`jupyter_sched.schemas` (jobs, runs and the rest), whose field types these use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from .restmodels import Query
from .valuetypes import Input, Output, UTCDatetime


class BackfillRequest(Input):
    """Body of ``POST jobs/{id}/backfill`` and of its ``preview``: one run per fire of the
    job's schedule in ``[start, end]`` (times its sweep's sets), at most ``max_parallel``
    running at once (default: the job's ``max_parallel``, else no limit)."""

    start: UTCDatetime
    end: UTCDatetime
    max_parallel: int | None = Field(default=None, ge=1, le=1000)


class BackfillPreview(BaseModel):
    """What a backfill of the range would make, before it is confirmed."""

    #: Fires of the schedule in the range (at most five times the backfill bound are
    #: counted: ``counted_all`` says whether the range holds more).
    count: int
    counted_all: bool
    #: Runs it would make: the fires times the job's sweep sets.
    runs: int
    first: datetime | None
    #: The last fire (``None`` when the range holds more fires than were counted).
    last: datetime | None


class BatchProgress(BaseModel):
    """A batch's runs by the state of their last attempt (``failed`` counts failed,
    timed-out and lost runs, which are also ``done``)."""

    done: int
    failed: int
    running: int
    queued: int


class Batch(Output):
    """Runs made together: a sweep job's fire or run-now (``sweep``), or a backfill."""

    id: str
    job_id: str
    kind: Literal["sweep", "backfill"]
    total: int
    max_parallel: int | None
    created_at: datetime
    progress: BatchProgress


class BatchPage(BaseModel):
    batches: list[Batch]


class BatchListQuery(Query):
    """Query of ``GET batches``: a job's batches (or all of the user's), newest first."""

    job_id: str | None = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=20, ge=1, le=200)


class SummaryQuery(Query):
    """Query of ``GET jobs/{id}/summary``: one batch's runs, or the job's newest ``limit``
    runs; as JSON or as CSV."""

    batch: str | None = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=50, ge=1, le=1000)
    format: Literal["json", "csv"] = "json"


class SummaryRow(BaseModel):
    """One run in a summary."""

    run_id: str
    batch_index: int
    scheduled_for: datetime | None
    status: str
    duration_seconds: float | None
    parameters: dict[str, Any]
    values: dict[str, Any]


class Summary(BaseModel):
    """A table of runs: their parameters, logical time, status, duration and values."""

    job_id: str
    batch: Batch | None
    #: Every parameter name and recorded value name that appears in a row (the columns).
    parameters: list[str]
    values: list[str]
    rows: list[SummaryRow]

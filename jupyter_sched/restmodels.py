"""The REST layer's own models: the query strings it parses, the body of its errors, and
the server's state it reports (the caller, workers, load, health).

The models of jobs, runs and what clients send are the contract in
:mod:`jupyter_sched.schemas`; these describe the HTTP side around them, and the OpenAPI
document (:mod:`jupyter_sched.openapi`) takes both.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .schemas import JobStatus, OutputFormat
from .statuses import RunStatus
from .valuetypes import Output, UTCDatetime


class Query(BaseModel):
    """Base of query-string models: values arrive as strings; other arguments (the
    server's own, such as ``token``) are ignored."""

    model_config = ConfigDict(extra="ignore")


class JobListQuery(Query):
    """Query of ``GET jobs``."""

    status: JobStatus | None = None
    tag: str | None = Field(default=None, min_length=1, max_length=50)
    #: Only this user's jobs (what a scheduler admin asks; others see only their own).
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, min_length=1, max_length=64)


class RunListQuery(Query):
    """Query of ``GET runs``: ``since`` and ``until`` bound the queue time."""

    job_id: str | None = Field(default=None, min_length=1, max_length=64)
    status: RunStatus | None = None
    #: Only this user's runs (what a scheduler admin asks; others see only their own).
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    since: UTCDatetime | None = None
    until: UTCDatetime | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("since", "until", mode="before")
    @classmethod
    def _plus_of_offset(cls, value: Any) -> Any:
        # An unescaped "+" of a UTC offset ("...T10:00:00+02:00") arrives as a space.
        if isinstance(value, str):
            return re.sub(r"(?<=\d) (\d\d(:?\d\d)?)$", r"+\1", value)
        return value


class OutputQuery(Query):
    """Query of ``GET runs/{id}/output``."""

    format: OutputFormat = "ipynb"


class LogQuery(Query):
    """Query of ``GET runs/{id}/log``: the byte offset to read from."""

    offset: int = Field(default=0, ge=0, le=2**53)


class ParametersQuery(Query):
    """Query of ``GET notebooks/parameters``: a notebook path relative to the server root."""

    path: str = Field(min_length=1, max_length=1024)


class DeleteJobQuery(Query):
    """Query of ``DELETE jobs/{id}``: ``force`` deletes a job that other jobs run after."""

    force: bool = False


class ErrorBody(BaseModel):
    """Body of every error response."""

    message: str
    reason: str | None
    #: The offending input, dotted for nested values (``trigger.cron``), when one is at fault.
    field: str | None


class WorkerInfo(Output):
    """A worker that heartbeated within the lease."""

    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    #: Runs it executes now (whoever owns them: only the number is shown).
    running: int
    started_at: datetime
    heartbeat_at: datetime


class WorkerList(BaseModel):
    workers: list[WorkerInfo]


class Caller(BaseModel):
    """Who the API takes the caller for: the owner of what they create, and whether they
    see and manage every user's jobs and runs (a hub's scheduler admin)."""

    name: str
    #: Listings without ``?owner=`` hold everyone's jobs and runs.
    admin: bool


class Load(BaseModel):
    """What waits, runs and lives right now (health checks and metrics)."""

    #: Queued runs by queue name.
    queued: dict[str, int]
    running: int
    active_jobs: int
    live_workers: int


class Health(BaseModel):
    """State of the scheduler inside this server."""

    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unavailable"]
    ticker: Literal["running", "stopped", "disabled"]
    #: ``idle``: it exited after a while with nothing to do; work starts it again.
    embedded_worker: Literal["running", "idle", "restarting", "stopped", "disabled"]
    embedded_worker_restarts: int
    load: Load | None

"""The API contract: pydantic models for what clients send and receive.

Output models read SQLAlchemy rows directly (``from_attributes``); input models forbid
unknown fields so a misspelt option is an error, not silently ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
)

from . import schedules

RunStatus = Literal[
    "queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost", "skipped"
]
RunTrigger = Literal["schedule", "manual", "retry", "dependency", "event", "webhook"]
JobStatus = Literal["active", "paused"]
Overlap = Literal["allow", "skip", "queue", "replace"]
Misfire = Literal["run_once", "skip"]
OutputFormat = Literal["ipynb", "html"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[\w .:/-]+$")]


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    """Base of response bodies, readable from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class CronTrigger(Input):
    """Fires on a cron schedule (5 fields, or 6 with seconds last) in a timezone."""

    kind: Literal["cron"]
    cron: str = Field(min_length=1, max_length=200, examples=["0 6 * * 1-5"])
    timezone: str = Field(default="UTC", max_length=64)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return schedules.validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        schedules.validate_timezone(value)
        return value


class IntervalTrigger(Input):
    """Fires every ``every_seconds``, counted from the job's ``start_at`` or creation."""

    kind: Literal["interval"]
    every_seconds: float = Field(gt=0, le=366 * 86400)


class OnceTrigger(Input):
    """Fires once, at ``at``."""

    kind: Literal["once"]
    at: UTCDatetime


class ManualTrigger(Input):
    """Never fires on its own: runs only when asked."""

    kind: Literal["manual"]


Trigger = Annotated[
    CronTrigger | IntervalTrigger | OnceTrigger | ManualTrigger, Field(discriminator="kind")
]


class JobFields(Input):
    """Settings of a job shared by create and update."""

    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    kernel: str | None = Field(default=None, max_length=255)
    retries: int = Field(default=0, ge=0, le=100)
    retry_delay_seconds: float = Field(default=60.0, ge=0, le=7 * 86400)
    retry_backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    retry_max_delay_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    overlap: Overlap = "allow"
    misfire: Misfire = "run_once"
    output_formats: list[OutputFormat] = Field(
        default_factory=lambda: list[OutputFormat](["ipynb"]), max_length=2
    )
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    start_at: UTCDatetime | None = None
    end_at: UTCDatetime | None = None
    max_runs: int | None = Field(default=None, ge=1)
    priority: int = Field(default=0, ge=-100, le=100)
    queue: str | None = Field(default=None, max_length=64, pattern=r"^[\w.-]+$")

    @field_validator("output_formats")
    @classmethod
    def _ipynb_always(cls, value: list[str]) -> list[str]:
        return ["ipynb", *sorted({v for v in value if v != "ipynb"})]

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class JobCreate(JobFields):
    """Body of ``POST jobs``."""

    name: str = Field(min_length=1, max_length=200)
    notebook: str = Field(min_length=1, max_length=1024)
    trigger: Trigger = Field(default_factory=lambda: ManualTrigger(kind="manual"))


class JobUpdate(Input):
    """Body of ``PATCH jobs/{id}``: an absent field is unchanged, ``null`` clears it."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    notebook: str | None = Field(default=None, min_length=1, max_length=1024)
    trigger: Trigger | None = None
    parameters: dict[str, JsonValue] | None = None
    kernel: str | None = Field(default=None, max_length=255)
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_delay_seconds: float | None = Field(default=None, ge=0, le=7 * 86400)
    retry_backoff: float | None = Field(default=None, ge=1.0, le=10.0)
    retry_max_delay_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    overlap: Overlap | None = None
    misfire: Misfire | None = None
    output_formats: list[OutputFormat] | None = Field(default=None, max_length=2)
    tags: list[Tag] | None = Field(default=None, max_length=20)
    start_at: UTCDatetime | None = None
    end_at: UTCDatetime | None = None
    max_runs: int | None = Field(default=None, ge=1)
    priority: int | None = Field(default=None, ge=-100, le=100)
    queue: str | None = Field(default=None, max_length=64, pattern=r"^[\w.-]+$")
    #: When given, the update applies only if the job is still at this version.
    version: int | None = None


#: Fields of :class:`JobUpdate` that ``null`` may not clear (they have no "unset" meaning).
NOT_NULLABLE = frozenset(
    {"name", "notebook", "trigger", "parameters", "retries", "retry_delay_seconds",
     "retry_backoff", "overlap", "misfire", "output_formats", "tags", "priority"}
)  # fmt: skip


class RunNow(Input):
    """Body of ``POST jobs/{id}/run``: parameter overrides for this run only."""

    parameters: dict[str, JsonValue] = Field(default_factory=dict)


class Progress(Output):
    done: int
    total: int


class RunError(Output):
    ename: str
    evalue: str
    cell_index: int | None


class Run(Output):
    """One execution attempt of a notebook."""

    id: str
    job_id: str | None
    notebook: str
    status: RunStatus
    trigger: RunTrigger
    attempt: int
    retry_of: str | None
    scheduled_for: datetime | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    parameters: dict[str, Any]
    progress: Progress
    error: RunError | None
    worker_id: str | None
    output_formats: list[str]


class Job(Output):
    """A notebook, its parameters and a trigger, with its state."""

    id: str
    name: str
    owner: str
    notebook: str
    parameters: dict[str, Any]
    trigger: Trigger
    kernel: str | None
    status: JobStatus
    next_fire_at: datetime | None
    retries: int
    retry_delay_seconds: float
    retry_backoff: float
    retry_max_delay_seconds: float | None
    timeout_seconds: float | None
    overlap: Overlap
    misfire: Misfire
    output_formats: list[str]
    tags: list[str]
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    priority: int
    queue: str
    created_at: datetime
    updated_at: datetime
    version: int
    last_run: Run | None = None


class JobPage(BaseModel):
    jobs: list[Job]
    next_cursor: str | None


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None


class JobStats(BaseModel):
    """Outcome counts and durations over all runs of a job."""

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None
    last_success_at: datetime | None
    last_failure_at: datetime | None


class PreviewRequest(Input):
    trigger: Trigger
    count: int = Field(default=5, ge=1, le=50)
    start_at: UTCDatetime | None = None
    end_at: UTCDatetime | None = None


class Preview(BaseModel):
    description: str
    next: list[datetime]


class NotebookParameter(BaseModel):
    name: str
    type: str
    default: Any
    help: str


class NotebookParameters(BaseModel):
    parameters: list[NotebookParameter]

"""Storage: the SQLAlchemy models of jobs, runs and workers.

These are the tables; the API shapes are the pydantic models in :mod:`jupyter_sched.schemas`,
read from these rows with ``model_validate(row, from_attributes=True)``.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .columntypes import UTCDateTime as UTCDateTime  # the migrations name it here
from .statuses import FINAL_STATUSES

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Every pair of Crockford base-32 digits, by the 10 bits they encode.
_PAIRS = tuple(first + second for first in _CROCKFORD for second in _CROCKFORD)


_last_id = [0, 0]  # the milliseconds and random bits of the last id made here
_id_lock = threading.Lock()


def new_id() -> str:
    """A ULID: unique, and sorting ids sorts by creation time (used for cursor pagination).

    The 48-bit Unix time in milliseconds then 80 random bits, in the 26 characters of the
    ULID specification (python-ulid reads them: a test checks). Ids made in one process
    in the same millisecond are monotonic: the random bits of the last one plus one, so
    runs made in one pass sort in the order made. Made here rather than by python-ulid,
    whose object costs 8 µs an id, half of building a run's row in a rush.
    """
    millis = time.time_ns() // 1_000_000
    with _id_lock:
        last_millis, last_random = _last_id
        if millis > last_millis:
            random = int.from_bytes(os.urandom(10), "big")
        elif last_random + 1 < 1 << 80:
            # the same millisecond (or the clock stepped back): keep the order
            millis, random = last_millis, last_random + 1
        else:  # the random bits ran out within a millisecond: take the next one
            millis, random = last_millis + 1, int.from_bytes(os.urandom(10), "big")
        _last_id[:] = [millis, random]
    value = millis << 80 | random
    pairs = _PAIRS
    return "".join(
        (pairs[value >> 120], pairs[value >> 110 & 1023], pairs[value >> 100 & 1023],
         pairs[value >> 90 & 1023], pairs[value >> 80 & 1023], pairs[value >> 70 & 1023],
         pairs[value >> 60 & 1023], pairs[value >> 50 & 1023], pairs[value >> 40 & 1023],
         pairs[value >> 30 & 1023], pairs[value >> 20 & 1023], pairs[value >> 10 & 1023],
         pairs[value & 1023])
    )  # fmt: skip


JSONType = JSON().with_variant(JSONB(), "postgresql")

naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=naming_convention)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Job(Base):
    """A notebook, its parameters and a trigger, owned by one user."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(255))
    notebook: Mapped[str] = mapped_column(String(1024))
    #: The root ``notebook`` is relative to: that of the server that checked it. On a hub
    #: every user's server has its own, and tickers and workers serve all users.
    #: ``None``: the root of whichever process reads it.
    root_dir: Mapped[str | None] = mapped_column(String(4096))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    kernel: Mapped[str | None] = mapped_column(String(255))
    #: The trigger as the API gives it; ``trigger_kind`` repeats its kind for indexed lookups.
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType)
    trigger_kind: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime | None]
    end_at: Mapped[datetime | None]
    max_runs: Mapped[int | None]
    #: Schedule fires so far (counts toward ``max_runs``).
    fire_count: Mapped[int] = mapped_column(default=0)
    #: ``active``, ``paused``, or ``error``: set aside by the ticker, which could not fire
    #: it (``error`` says why); resuming it or changing its trigger clears that.
    status: Mapped[str] = mapped_column(String(16), default="active")
    error: Mapped[str | None] = mapped_column(Text)
    next_fire_at: Mapped[datetime | None]
    misfire: Mapped[str] = mapped_column(String(16), default="run_once")
    overlap: Mapped[str] = mapped_column(String(16), default="allow")
    retries: Mapped[int] = mapped_column(default=0)
    retry_delay_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    retry_backoff: Mapped[float] = mapped_column(Float, default=2.0)
    retry_max_delay_seconds: Mapped[float | None] = mapped_column(Float)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(default=0)
    queue: Mapped[str] = mapped_column(String(64), default="default")
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    output_formats: Mapped[list[str]] = mapped_column(JSONType, default=lambda: ["ipynb"])
    #: Where to report outcomes: a list of notification targets as the API gives them.
    notifications: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    #: Keep this job's finished runs for so many days / only the newest so many.
    retention_days: Mapped[float | None] = mapped_column(Float)
    retention_runs: Mapped[int | None]
    #: SHA-256 of the job's webhook token (the token itself is shown once and not kept).
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64))
    #: Parameter sets each fire runs over (a list of override objects, or a grid of
    #: ``name: [values]`` expanded as a product); ``None``: one run per fire.
    sweep: Mapped[Any | None] = mapped_column(JSONType)
    #: At most this many runs of one of its batches run at once (``None``: no limit).
    max_parallel: Mapped[int | None]
    #: Conditions on recorded values that fail a run (``{"value", "op", "threshold"}``).
    checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(default=1)

    @property
    def webhook(self) -> bool:
        """Whether the job can be fired through its webhook."""
        return self.webhook_token_hash is not None

    __table_args__ = (
        # The ticker's query: active jobs whose next fire is due, oldest first.
        Index("ix_jobs_status_next_fire_at", "status", "next_fire_at"),
        # A user's jobs, newest first (ids sort by creation time).
        Index("ix_jobs_owner_id", "owner", "id"),
        Index("ix_jobs_trigger_kind", "trigger_kind"),
    )


class Run(Base):
    """One execution attempt of a notebook."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(String(255))
    notebook: Mapped[str] = mapped_column(String(1024))
    #: As :attr:`Job.root_dir`, copied from the job (or the server, for an ad-hoc run).
    root_dir: Mapped[str | None] = mapped_column(String(4096))
    kernel: Mapped[str | None] = mapped_column(String(255))
    #: The run's logical time: the schedule fire, the request, or the backfill step. Unique
    #: per job, fire and batch position among schedule runs, so each fire makes its runs once.
    scheduled_for: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(default=1)
    #: Indexed: deleting a run sets this to NULL in the runs that retry it, which without
    #: an index is a scan of the whole history for every run deleted.
    retry_of: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    queue: Mapped[str] = mapped_column(String(64), default="default")
    priority: Mapped[int] = mapped_column(default=0)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    output_formats: Mapped[list[str]] = mapped_column(JSONType, default=lambda: ["ipynb"])
    #: Not handed to the queue before this time (retry delays).
    not_before: Mapped[datetime | None]
    queued_at: Mapped[datetime]
    #: When the run id was last put on the queue; ``None`` while it waits to be dispatched.
    enqueued_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    cancel_requested_at: Mapped[datetime | None]
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    error_ename: Mapped[str | None] = mapped_column(String(255))
    error_evalue: Mapped[str | None] = mapped_column(Text)
    error_cell_index: Mapped[int | None] = mapped_column(Integer)
    #: Runs that share a chain descend from the same fire: a schedule fire (every job
    #: scheduled for that instant), or one manual, event or webhook run.
    chain_id: Mapped[str | None] = mapped_column(String(64))
    #: The upstream runs whose outcome started this run (``after`` triggers).
    caused_by: Mapped[list[str]] = mapped_column(JSONType, default=list)
    input_ref: Mapped[str | None] = mapped_column(String(1024))
    output_ref: Mapped[str | None] = mapped_column(String(1024))
    html_ref: Mapped[str | None] = mapped_column(String(1024))
    #: A small image of the run's last image output (PNG or SVG); none without images.
    thumbnail_ref: Mapped[str | None] = mapped_column(String(1024))
    pdf_ref: Mapped[str | None] = mapped_column(String(1024))
    log_ref: Mapped[str | None] = mapped_column(String(1024))
    #: Named JSON values the notebook recorded (``jupyter_sched.record``, scrapbook's glue).
    values: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: The batch (a sweep's fire, a backfill) this run belongs to, and its place in it.
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL"), index=True
    )
    batch_index: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        Index(
            "uq_runs_schedule_fire",
            "job_id",
            "scheduled_for",
            "batch_index",
            unique=True,
            sqlite_where=text("trigger = 'schedule'"),
            postgresql_where=text("trigger = 'schedule'"),
        ),
        Index("ix_runs_job_id_id", "job_id", "id"),
        Index("ix_runs_owner_id", "owner", "id"),
        Index("ix_runs_status_enqueued_at", "status", "enqueued_at"),
        # a job's newest runs of one status (statistics, dependency checks)
        Index("ix_runs_job_id_status_id", "job_id", "status", "id"),
        Index("ix_runs_chain_id_job_id", "chain_id", "job_id"),
        # which stored notebook versions runs still use (the sweep of unused ones)
        Index("ix_runs_input_ref", "input_ref"),
        # One dependency run per downstream job and chain, however many upstreams end.
        Index(
            "uq_runs_dependency_job_id_chain_id",
            "job_id",
            "chain_id",
            unique=True,
            sqlite_where=text("trigger = 'dependency'"),
            postgresql_where=text("trigger = 'dependency'"),
        ),
    )

    @property
    def progress(self) -> dict[str, int]:
        """Cells done out of cells in the notebook."""
        return {"done": self.progress_done, "total": self.progress_total}

    @property
    def error(self) -> dict[str, Any] | None:
        """What ended the run unsuccessfully, or ``None``."""
        if self.error_ename is None:
            return None
        return {
            "ename": self.error_ename,
            "evalue": self.error_evalue or "",
            "cell_index": self.error_cell_index,
        }

    @property
    def has_thumbnail(self) -> bool:
        return self.thumbnail_ref is not None

    @property
    def has_pdf(self) -> bool:
        return self.pdf_ref is not None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Batch(Base):
    """Runs made together: one fire, run-now or backfill of a sweep job, or one backfill.

    At most ``max_parallel`` of its runs are handed to workers at once; ``after`` jobs
    follow the batch once, when all its runs have ended.
    """

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(255))
    #: ``sweep`` (one fire over the parameter sets) or ``backfill`` (a range of fires).
    kind: Mapped[str] = mapped_column(String(16))
    total: Mapped[int]
    max_parallel: Mapped[int | None]
    created_at: Mapped[datetime]


class JobCounts(Base):
    """Finished runs of a job by final status, kept up to date as runs finish.

    Counting a busy job's runs on every statistics request would cost a scan of its
    history; these counters cost one upsert per finished run.
    """

    __tablename__ = "job_counts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    succeeded: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    timed_out: Mapped[int] = mapped_column(default=0)
    lost: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]


class Dependency(Base):
    """``downstream`` runs when ``upstream`` ends with ``condition`` (from its trigger)."""

    __tablename__ = "dependencies"

    downstream_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    upstream_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    condition: Mapped[str] = mapped_column(String(16))


class Notification(Base):
    """One message to deliver about a finished run (an outbox: kept until delivered)."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    #: The target as configured on the job (webhook URL and template, or email addresses).
    target: Mapped[dict[str, Any]] = mapped_column(JSONType)
    event: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    #: Set when delivery is abandoned after the last attempt.
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_notifications_pending", "delivered_at", "failed_at", "next_attempt_at"),
    )


class Worker(Base):
    """A worker process that consumes a queue; it heartbeats while it lives."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    queues: Mapped[list[str]] = mapped_column(JSONType, default=list)
    concurrency: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class DeploymentValue(Base):
    """A value every process of the deployment checks itself against (e.g. the probe of
    the secret that signs queue messages), written by the first process that needs it."""

    __tablename__ = "deployment"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

"""The scheduler's operations: what the REST handlers, the CLI and scripts call.

No web framework here. Every method takes the acting user (``owner``) and, where time
matters, ``now``; callers get pydantic models back and :class:`~jupyter_sched.errors.SchedError`
subclasses for anything they did wrong.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import nbformat
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, func, select, text, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from . import compare, reports, schedules, webhooks, workflows
from .artifacts import RunFolder, read_log, resolve_ref
from .clock import utcnow
from .compare import RunComparison
from .config import Settings
from .db import Database
from .errors import Conflict, InvalidInput, NotFound, SchedError
from .lifecycle import dispatch, new_run, request_cancel
from .models import Batch, Job, JobCounts, Run
from .models import Worker as WorkerRow
from .notebooks import (
    check_notebook,
    kernel_language,
    notebook_parameters,
    notebook_root,
    resolve_notebook,
)
from .queue import Queues, check_secret
from .reportschemas import BackfillPreview, BackfillRequest, BatchPage, Summary, SummaryRow
from .reportschemas import Batch as BatchOut
from .schemas import (
    NOT_NULLABLE,
    SWEEP_SHAPES,
    TRIGGER_KINDS,
    AfterTrigger,
    EventTrigger,
    JobCreate,
    JobPage,
    JobStats,
    JobUpdate,
    Load,
    NotebookParameter,
    Payload,
    Preview,
    PreviewRequest,
    RunNow,
    RunPage,
    Trigger,
    stored_trigger,
)
from .schemas import Job as JobOut
from .schemas import Run as RunOut
from .ticker import snapshot_input
from .triggers import (
    check_trigger,
    describe_trigger,
    job_next_fire,
    next_fires,
    schedule_error_text,
    upstream_job_ids,
)

M = TypeVar("M", bound=BaseModel)

#: Largest page a list call returns.
MAX_PAGE = 200
#: Successful runs, newest first, that duration percentiles are taken over.
DURATION_SAMPLE = 1000
#: The fields of a job that :meth:`Service._check_job` checks against the notebook,
#: the clock and each other.
_CHECKED = frozenset({"notebook", "parameters", "kernel", "trigger", "start_at", "end_at", "sweep"})
#: Times an update is checked again when the job changes between its check and its write.
UPDATE_ATTEMPTS = 3
#: Runs of a deleted job removed per transaction.
DELETE_BATCH = 500


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` against an API model, turning the first problem into InvalidInput."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def parse_json(model: type[M], raw: str | bytes) -> M:
    """Validate a JSON document against an API model, strictly: JSON types must match the
    schema (no number for a date, no ``"5"`` or ``true`` for an integer)."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":  # e.g. a lone surrogate, deep nesting
            raise SchedError(
                f"body: not valid JSON ({exc.errors()[0]['msg']})", field="body"
            ) from None
        raise _invalid(exc) from None


def _invalid(exc: ValidationError, *, prefix: str | None = None) -> InvalidInput:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    if prefix is not None:  # a nested value validated on its own (a stored trigger)
        loc = [prefix, *loc]
    # pydantic puts the tags of discriminated unions in the location
    if len(loc) > 1 and loc[0] == "trigger" and loc[1] in TRIGGER_KINDS:
        del loc[1]
    if len(loc) > 2 and loc[0] == "notifications" and loc[2] in _TARGET_KINDS:
        del loc[2]
    if len(loc) > 1 and loc[0] == "sweep" and loc[1] in SWEEP_SHAPES:
        del loc[1]
    if loc and loc[-1] == "[key]":  # a dict key is at fault: name it, not pydantic's marker
        del loc[-1]
    field = ".".join(loc) or None
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown trigger kind; expected one of {', '.join(TRIGGER_KINDS)}"
    return InvalidInput(
        message if field and message.startswith(f"{field}") else f"{field}: {message}",
        field=field,
    )


#: Queues named ``user-<name>`` belong to user <name>. On a hub, the workers of such a queue
#: run as that user, so nobody else may send notebooks there.
USER_QUEUE_PREFIX = "user-"


def check_queue(owner: str, queue: str) -> str:
    """``queue`` if ``owner`` may send runs to it; :class:`InvalidInput` otherwise."""
    own = f"{USER_QUEUE_PREFIX}{owner}"
    if queue.startswith(USER_QUEUE_PREFIX) and queue != own:
        raise InvalidInput(
            f"queue: {queue!r} is another user's personal queue; yours is {own!r}",
            field="queue",
        )
    return queue


_TARGET_KINDS = ("webhook", "email")


class Service:
    """Jobs and runs of one deployment."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        queues: Queues | None = None,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.queues = queues or Queues(settings)
        #: Called after a job changes (the in-process ticker wakes up).
        self.on_change = on_change or (lambda: None)
        self.webhook_limiter = webhooks.RateLimiter(settings.webhook_rate_per_minute)

    @classmethod
    def open(cls, settings: Settings, *, join: bool = True) -> Service:
        """A service on the deployment ``settings`` describe, which has joined it (see
        :meth:`join`) unless ``join`` is false: the caller joins once the database answers."""
        service = cls(settings, Database(settings.database_url))
        if join:
            try:
                service.join()
            except Exception:
                service.db.dispose()
                raise
        return service

    def join(self) -> None:
        """Migrate the history database and check this process's queue secret.

        Raises :class:`~jupyter_sched.errors.Unavailable` while the database does not answer,
        and :class:`~jupyter_sched.errors.CannotStart` when this process must not join the
        deployment: its database was migrated by a newer jupyter-sched, or its secret does
        not sign queue messages like the deployment's.
        """
        self.db.upgrade()
        check_secret(self.db, self.settings)

    # -- jobs ---------------------------------------------------------------------------

    def create_job(
        self, owner: str, data: JobCreate | dict[str, Any], *, now: datetime | None = None
    ) -> JobOut:
        """Create a job after checking its notebook, parameters and trigger."""
        now = now or utcnow()
        spec = parse(JobCreate, data)
        self._check_job(spec, now)
        job = Job(
            name=spec.name,
            owner=owner,
            notebook=spec.notebook,
            root_dir=self._root,
            trigger=spec.trigger.model_dump(mode="json"),
            trigger_kind=spec.trigger.kind,
            status="active",
            fire_count=0,
            created_at=now,
            updated_at=now,
            version=1,
            **spec.model_dump(exclude={"name", "notebook", "trigger", "queue"}),
            queue=check_queue(owner, spec.queue or self.settings.default_queue),
        )
        job.next_fire_at = job_next_fire(job, now)
        upstreams = workflows.upstream_ids(job.trigger)
        with self.db.read() as session:
            workflows.check_upstreams(session, owner, None, upstreams)
        with self.db.write() as session:
            if upstreams:
                # Again, under the lock: an upstream job may have been deleted meanwhile.
                workflows.lock_graph(session, owner)
                workflows.check_upstreams(session, owner, None, upstreams)
            session.add(job)
            session.flush()
            workflows.sync_dependencies(session, job)
        self.on_change()
        return self._job_out(job)

    def _check_job(
        self, spec: JobCreate, now: datetime, changed: frozenset[str] | set[str] = _CHECKED
    ) -> None:
        """Check a job's notebook, parameters, kernel, trigger and window; of an updated
        job, only what the update ``changed`` (a fired ``once`` job stays editable)."""
        if {"notebook", "parameters", "kernel", "sweep"} & changed:
            self._check_kernel(spec.kernel)
            path = self._resolve(spec.notebook)
            check_notebook(path, spec.parameters, kernel=spec.kernel, shown=spec.notebook)
            if spec.sweep is not None:
                declared = notebook_parameters(path, kernel=spec.kernel, shown=spec.notebook)
                reports.check_sweep(spec.sweep, declared, self.settings.max_sweep_sets)
        if "trigger" in changed:
            check_trigger(spec.trigger, now)
        window = {"start_at", "end_at"} & changed
        if window and spec.start_at and spec.end_at and spec.end_at <= spec.start_at:
            raise InvalidInput("end_at: must be after start_at", field="end_at")

    def _resolve(self, notebook: str, field: str = "notebook") -> Path:
        """The real path of a notebook a user names, checked against this server's root."""
        return resolve_notebook(
            self.settings.root_dir, notebook, field=field, allow_hidden=self.settings.allow_hidden
        )

    @staticmethod
    def _check_kernel(kernel: str | None) -> None:
        if kernel is not None and kernel_language(kernel) is None:
            raise InvalidInput(f"kernel: no kernel named {kernel!r} is installed", field="kernel")

    def get_job(self, owner: str, job_id: str) -> JobOut:
        """One job of ``owner``."""
        with self.db.read() as session:
            return self._job_out(self._own_job(session, owner, job_id), session)

    def list_jobs(
        self,
        owner: str,
        *,
        status: str | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs of ``owner``, newest first, ``limit`` per page."""
        limit = _page_size(limit)
        query = select(Job).where(Job.owner == owner).order_by(Job.id.desc()).limit(limit + 1)
        if status is not None:
            query = query.where(Job.status == status)
        if tag is not None:
            if self.db.is_sqlite:
                query = query.where(
                    text(
                        "EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value = :tag)"
                    ).bindparams(tag=tag)
                )
            else:
                query = query.where(type_coerce(Job.tags, JSONB).contains([tag]))
        if cursor:
            query = query.where(Job.id < cursor)
        with self.db.read() as session:
            jobs = list(session.scalars(query))
            page, next_cursor = jobs[:limit], jobs[limit].id if len(jobs) > limit else None
            last_runs = self._last_runs(session, [job.id for job in page])
            names = _upstream_names(session, owner, page)
            out = [_job_model(job, last_runs.get(job.id), names) for job in page]
        return JobPage(jobs=out, next_cursor=page[-1].id if next_cursor else None)

    def update_job(
        self,
        owner: str,
        job_id: str,
        data: JobUpdate | dict[str, Any],
        *,
        now: datetime | None = None,
    ) -> JobOut:
        """Change the fields present in ``data``; ``null`` clears an optional field.

        The checks (notebook, parameters, upstream jobs, cycles) read files and the
        dependency graph before the write transaction; that one applies the change only if
        the job is still at the version checked (else the checks run again), so it holds
        the database for a few short queries whatever the size of the graph.
        """
        now = now or utcnow()
        patch = parse(JobUpdate, data)
        changes = {name: getattr(patch, name) for name in patch.model_fields_set}
        expected_version = changes.pop("version", None)
        for name, value in changes.items():
            if value is None and name in NOT_NULLABLE:
                raise InvalidInput(f"{name}: cannot be null", field=name)
        for _ in range(UPDATE_ATTEMPTS):
            checked = self._check_update(owner, job_id, dict(changes), expected_version, now)
            out = self._apply_update(owner, job_id, checked, expected_version, now)
            if out is not None:
                self.on_change()
                return out
        raise Conflict("version: the job keeps changing; try again", field="version")

    def _check_update(
        self,
        owner: str,
        job_id: str,
        changes: dict[str, Any],
        expected_version: int | None,
        now: datetime,
    ) -> _CheckedUpdate:
        """Validate a change against the job as it is now, outside any write transaction."""
        with self.db.read() as session:
            current = _job_model(self._own_job(session, owner, job_id))
        if expected_version is not None and expected_version != current.version:
            raise Conflict(
                f"version: the job changed meanwhile (now version {current.version})",
                field="version",
            )
        if "queue" in changes:
            # null: back to the default
            changes["queue"] = check_queue(owner, changes["queue"] or self.settings.default_queue)
        if "output_formats" in changes:
            changes["output_formats"] = [
                "ipynb",
                *sorted(set(changes["output_formats"]) - {"ipynb"}),
            ]
        trigger = changes.pop("trigger", None)
        merged = JobCreate.model_validate(
            {
                **current.model_dump(include=set(JobCreate.model_fields)),
                **({"trigger": trigger} if trigger is not None else {}),
                **changes,
            }
        )
        changed = set(changes) | ({"trigger"} if trigger is not None else set())
        self._check_job(merged, now, changed)
        path_checked = bool({"notebook", "parameters", "kernel", "sweep"} & changed)
        for name in ("notifications", "checks"):
            if changes.get(name) is not None:
                changes[name] = [item.model_dump(mode="json") for item in changes[name]]
        if trigger is not None:
            with self.db.read() as session:
                workflows.check_upstreams(session, owner, job_id, _upstreams(trigger))
        return _CheckedUpdate(current.version, changes, trigger, path_checked)

    def _apply_update(
        self,
        owner: str,
        job_id: str,
        update: _CheckedUpdate,
        expected_version: int | None,
        now: datetime,
    ) -> JobOut | None:
        """Write a checked change; ``None`` if the job changed since it was checked."""
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            if job.version != update.version:
                if expected_version is not None:
                    raise Conflict(
                        f"version: the job changed meanwhile (now version {job.version})",
                        field="version",
                    )
                return None
            if update.path_checked:
                job.root_dir = self._root  # the path was checked against this server's root
            for name, value in update.changes.items():
                setattr(job, name, value)
            trigger = update.trigger
            if trigger is not None:
                # Again, under the lock (two short queries): another job's change may have
                # deleted an upstream job or closed a cycle since the check.
                workflows.lock_graph(session, owner)
                workflows.check_upstreams(session, owner, job.id, _upstreams(trigger))
                job.trigger = trigger.model_dump(mode="json")
                job.trigger_kind = trigger.kind
                workflows.sync_dependencies(session, job)
                if job.status == "error":  # set aside for its old trigger: back in service
                    job.status, job.error = "active", None
            if trigger is not None or {"start_at", "end_at", "max_runs"} & set(update.changes):
                job.next_fire_at = job_next_fire(job, now) if job.status == "active" else None
            job.version += 1
            job.updated_at = now
            session.flush()
            return self._job_out(job, session)

    def delete_job(
        self, owner: str, job_id: str, *, force: bool = False, now: datetime | None = None
    ) -> None:
        """Delete a job, its runs and their files (running runs are cancelled first).

        A job that other jobs run after is deleted only with ``force``; they then no longer
        wait for it (a job left with no upstream becomes manual).
        """
        now = now or utcnow()
        with self.db.write() as session:
            # Decided under the graph lock: no job starts to run after this one meanwhile.
            job = self._own_job(session, owner, job_id)
            workflows.lock_graph(session, owner)
            followers = workflows.dependents(session, job.id)
            if followers and not force:
                names = ", ".join(f"{j.name} ({j.id})" for j in followers)
                raise Conflict(
                    f"job_id: other jobs run after this one: {names}; delete with force",
                    field="job_id",
                )
            workflows.detach_upstream(session, job.id)
            # No new fire while its history goes.
            job.status, job.next_fire_at, job.version = "paused", None, job.version + 1
        with self.db.read() as session:
            run_ids = list(session.scalars(select(Run.id).where(Run.job_id == job_id)))
            active = list(
                session.scalars(
                    select(Run.id).where(
                        Run.job_id == job_id, Run.status.in_(("queued", "running"))
                    )
                )
            )
        for run_id in active:
            with contextlib.suppress(Conflict):  # it finished meanwhile
                request_cancel(
                    self.db, run_id, now, max_retry_delay=self.settings.max_retry_delay_seconds
                )
        # The history, a batch per transaction, so that no transaction holds the database
        # for long however many runs the job has; then the job (with any run made since).
        for start in range(0, len(run_ids), DELETE_BATCH):
            with self.db.write() as session:
                session.execute(
                    delete(Run).where(Run.id.in_(run_ids[start : start + DELETE_BATCH]))
                )
        with self.db.write() as session:
            if (remaining := session.get(Job, job_id)) is not None:
                workflows.lock_graph(session, owner)
                workflows.detach_upstream(session, job_id)  # a job made to follow it since
                session.delete(remaining)
        for run_id in run_ids:
            RunFolder(self.settings.artifacts_dir, run_id).remove()
        self.on_change()

    def pause_job(self, owner: str, job_id: str, *, now: datetime | None = None) -> JobOut:
        """Stop firing the job's schedule (runs already queued still run)."""
        return self._set_status(owner, job_id, "paused", now or utcnow())

    def resume_job(self, owner: str, job_id: str, *, now: datetime | None = None) -> JobOut:
        """Fire the job's schedule again, from now on (fires while paused are not made up).

        A job the ticker set aside (status ``error``) is resumed only if its trigger can be
        fired now; otherwise :class:`InvalidInput` says why and the job stays aside.
        """
        return self._set_status(owner, job_id, "active", now or utcnow())

    def _set_status(self, owner: str, job_id: str, status: str, now: datetime) -> JobOut:
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            if job.status != status:
                job.next_fire_at = self._next_fire_of(job, now) if status == "active" else None
                job.status, job.error = status, None
                job.version += 1
                job.updated_at = now
            session.flush()
            out = self._job_out(job, session)
        self.on_change()
        return out

    @staticmethod
    def _next_fire_of(job: Job, now: datetime) -> datetime | None:
        """The job's next fire, or :class:`InvalidInput` naming what its stored trigger
        lacks (a timezone no longer known, a cron expression no longer accepted)."""
        try:
            return job_next_fire(job, now)
        except schedules.ScheduleError as exc:
            raise InvalidInput(schedule_error_text(exc), field=f"trigger.{exc.field}") from None
        except ValidationError as exc:
            raise _invalid(exc, prefix="trigger") from None

    # -- runs ---------------------------------------------------------------------------

    def run_job(
        self,
        owner: str,
        job_id: str,
        parameters: dict[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> RunOut:
        """Run a job now, with optional parameter overrides for this run only.

        A sweep job makes a batch, one run per set (the overrides apply to each); its
        first run is returned, with the batch's id.
        """
        now = now or utcnow()
        parameters = parse(RunNow, {"parameters": parameters or {}}).parameters
        with self.db.read() as session:
            job = self._own_job(session, owner, job_id)
            notebook, kernel = job.notebook, job.kernel
            root = notebook_root(job.root_dir, self.settings.root_dir)
        if parameters:
            path = resolve_notebook(root, notebook)
            check_notebook(path, parameters, kernel=kernel, shown=notebook)
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            if job.sweep is None:
                run = new_run(job, now=now, trigger="manual", parameters=parameters)
                session.add(run)
        if job.sweep is None:
            return self._start(run.id, now)
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            batch = reports.new_batch(
                session, job, kind="sweep", total=reports.sweep_size(job.sweep),
                max_parallel=job.max_parallel, now=now,
            )  # fmt: skip
            run_ids = self._add_batch_runs(
                session, job, batch, trigger="manual", fires=[now], overrides=parameters
            )
        return self._start_batch(job_id, run_ids, now)

    def _add_batch_runs(
        self,
        session: Session,
        job: Job,
        batch: Batch,
        *,
        trigger: str,
        fires: list[datetime],
        overrides: dict[str, Any] | None = None,
    ) -> list[str]:
        runs = list(
            reports.batch_runs(
                job, now=batch.created_at, trigger=trigger, fires=fires, batch=batch,
                chain_id=f"batch:{batch.id}", overrides=overrides,
            )
        )  # fmt: skip
        session.add_all(runs)
        session.flush()
        return [run.id for run in runs]

    def _start_batch(self, job_id: str, run_ids: list[str], now: datetime) -> RunOut:
        """Snapshot a new batch's input, hand over what its ``max_parallel`` allows, and
        return its first run."""
        for run_id in run_ids:
            snapshot_input(self.db, self.settings, run_id)
        dispatch(self.db, self.queues, now, job_id=job_id)
        with self.db.read() as session:
            run = session.get(Run, run_ids[0])
            assert run is not None
            return RunOut.model_validate(run)

    # -- report builders: backfills, batches, summaries ----------------------------------

    def backfill_preview(
        self, owner: str, job_id: str, data: BackfillRequest | dict[str, Any]
    ) -> BackfillPreview:
        """How many fires (and runs) a backfill of the range makes, its first and last."""
        request = parse(BackfillRequest, data)
        with self.db.read() as session:
            job = self._own_job(session, owner, job_id)
            counted = reports.count_limit(self.settings.max_backfill_fires)
            first, count, last = reports.backfill_fires(job, request.start, request.end, 1, counted)
            sets = reports.sweep_size(job.sweep)
        whole = count <= counted
        return BackfillPreview(
            count=min(count, counted), counted_all=whole, runs=min(count, counted) * sets,
            first=first[0] if first else None, last=last if whole else None,
        )  # fmt: skip

    def backfill(
        self,
        owner: str,
        job_id: str,
        data: BackfillRequest | dict[str, Any],
        *,
        now: datetime | None = None,
    ) -> BatchOut:
        """One run per fire of the job's schedule in ``[start, end]`` (times its sweep's
        sets), each with its fire as ``scheduled_for``, in one batch with ``max_parallel``.

        Refused (:class:`InvalidInput`, nothing made) for a job without a schedule, an
        ``end`` before ``start``, a range outside the job's window, no fire in the range,
        or more runs than ``max_backfill_fires``.
        """
        now = now or utcnow()
        request = parse(BackfillRequest, data)
        bound = self.settings.max_backfill_fires
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            fires, count, _ = reports.backfill_fires(
                job, request.start, request.end, bound, reports.count_limit(bound)
            )
            sets = reports.sweep_size(job.sweep)
            reports.check_backfill_size(count, sets, bound)
            if not fires:
                raise InvalidInput("end: the range holds no fire of the schedule", field="end")
            batch = reports.new_batch(
                session, job, kind="backfill", total=count * sets,
                max_parallel=request.max_parallel or job.max_parallel, now=now,
            )  # fmt: skip
            run_ids = self._add_batch_runs(session, job, batch, trigger="backfill", fires=fires)
            batch_id = batch.id
        self._start_batch(job_id, run_ids, now)
        return self.get_batch(owner, batch_id)

    def get_batch(self, owner: str, batch_id: str) -> BatchOut:
        """One batch of ``owner`` with its progress."""
        with self.db.read() as session:
            batch = session.get(Batch, batch_id)
            if batch is None or batch.owner != owner:
                raise NotFound(f"no batch {batch_id!r}", field="batch")
            return _batch_model(batch, reports.batch_progress(session, [batch_id])[batch_id])

    def list_batches(self, owner: str, *, job_id: str | None = None, limit: int = 20) -> BatchPage:
        """Batches of ``owner`` (of one job), newest first, with their progress."""
        query = select(Batch).where(Batch.owner == owner).order_by(Batch.id.desc())
        if job_id is not None:
            query = query.where(Batch.job_id == job_id)
        with self.db.read() as session:
            batches = list(session.scalars(query.limit(_page_size(limit))))
            progress = reports.batch_progress(session, [b.id for b in batches])
            return BatchPage(batches=[_batch_model(b, progress[b.id]) for b in batches])

    def summary(
        self, owner: str, job_id: str, *, batch: str | None = None, limit: int = 50
    ) -> Summary:
        """A table of one batch's runs (the last attempt of each), or of the job's newest
        ``limit`` runs: parameters, ``scheduled_for``, status, duration and values."""
        batch_out = self.get_batch(owner, batch) if batch is not None else None
        if batch_out is not None and batch_out.job_id != job_id:
            raise NotFound(f"no batch {batch!r} of job {job_id!r}", field="batch")
        with self.db.read() as session:
            self._own_job(session, owner, job_id)
            runs = reports.summary_runs(session, job_id, batch, limit)
            parameters, values, rows = reports.summary_table(runs)
        return Summary(
            job_id=job_id, batch=batch_out, parameters=parameters, values=values,
            rows=[SummaryRow.model_validate(row) for row in rows],
        )  # fmt: skip

    def summary_csv(
        self, owner: str, job_id: str, *, batch: str | None = None, limit: int = 50
    ) -> str:
        """:meth:`summary` as CSV (see :func:`~jupyter_sched.reports.summary_csv`)."""
        table = self.summary(owner, job_id, batch=batch, limit=limit)
        rows = [row.model_dump() for row in table.rows]
        return reports.summary_csv(table.parameters, table.values, rows)

    def run_notebook(
        self,
        owner: str,
        notebook: str,
        parameters: dict[str, Any] | None = None,
        *,
        kernel: str | None = None,
        timeout_seconds: float | None = None,
        output_formats: list[str] | None = None,
        queue: str | None = None,
        dispatch: bool = True,
        now: datetime | None = None,
    ) -> RunOut:
        """Run a notebook once, now, without a job.

        With ``dispatch=False`` the run is not handed to the queue (the caller executes it).
        """
        now = now or utcnow()
        parameters = parse(RunNow, {"parameters": parameters or {}}).parameters
        self._check_kernel(kernel)
        path = self._resolve(notebook)
        check_notebook(path, parameters, kernel=kernel, shown=notebook)
        with self.db.write() as session:
            run = new_run(
                None,
                now=now,
                trigger="manual",
                owner=owner,
                notebook=notebook,
                root_dir=self._root,
                parameters=parameters,
                kernel=kernel,
                timeout_seconds=timeout_seconds,
                queue=check_queue(owner, queue or self.settings.default_queue),
            )
            run.output_formats = ["ipynb", *sorted(set(output_formats or []) - {"ipynb"})]
            if not dispatch:
                run.enqueued_at = now
            session.add(run)
        return self._start(run.id, now)

    def _start(self, run_id: str, now: datetime) -> RunOut:
        snapshot_input(self.db, self.settings, run_id)
        dispatch(self.db, self.queues, now, run_id=run_id)
        with self.db.read() as session:
            run = session.get(Run, run_id)
            assert run is not None
            return RunOut.model_validate(run)

    def fire_event(
        self,
        owner: str,
        event: str,
        payload: Any = None,
        *,
        now: datetime | None = None,
    ) -> list[RunOut]:
        """Run every active job of ``owner`` whose trigger is the event ``event``.

        ``payload`` (any JSON) reaches notebooks that declare an ``event_payload`` parameter.
        """
        now = now or utcnow()
        name = parse(EventTrigger, {"kind": "event", "event": event}).event
        payload = _checked_payload(payload)
        created = []
        with self.db.write() as session:
            for job in workflows.event_jobs(session, owner, name):
                run = new_run(
                    job, now=now, trigger="event",
                    parameters={workflows.PAYLOAD_PARAMETER: payload},
                )  # fmt: skip
                session.add(run)
                created.append(run.id)
        return [self._start(run_id, now) for run_id in created]

    def create_webhook(self, owner: str, job_id: str, *, now: datetime | None = None) -> str:
        """Give a job a new webhook token and return it; the previous one stops working.

        Only a hash of the token is stored: this is the one time it can be read.
        """
        now = now or utcnow()
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            token = webhooks.new_webhook_token(job)
            job.version += 1
            job.updated_at = now
        return token

    def delete_webhook(self, owner: str, job_id: str, *, now: datetime | None = None) -> None:
        """Turn a job's webhook off."""
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            job.webhook_token_hash = None
            job.version += 1
            job.updated_at = now or utcnow()

    def fire_webhook(
        self, job_id: str, token: str, payload: Any = None, *, now: datetime | None = None
    ) -> RunOut:
        """Run a job for a caller holding its webhook token (no Jupyter session needed).

        Raises :class:`~jupyter_sched.errors.Unauthorized` for a wrong or rotated token
        and :class:`~jupyter_sched.errors.RateLimited` past the per-token rate.
        """
        now = now or utcnow()
        with self.db.read() as session:
            job = session.get(Job, job_id)
            webhooks.check_webhook_token(job, token)
        payload = _checked_payload(payload)
        self.webhook_limiter.take(job_id)
        with self.db.write() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id!r}", field="job_id")
            if job.status != "active":
                raise Conflict(f"job_id: the job is {job.status}", field="job_id")
            run = new_run(
                job, now=now, trigger="webhook",
                parameters={workflows.PAYLOAD_PARAMETER: payload},
            )  # fmt: skip
            session.add(run)
        return self._start(run.id, now)

    def get_run(self, owner: str, run_id: str) -> RunOut:
        """One run of ``owner``."""
        with self.db.read() as session:
            return RunOut.model_validate(self._own_run(session, owner, run_id))

    def list_runs(
        self,
        owner: str,
        *,
        job_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """Runs of ``owner``, newest first, filtered by job, status and queue time."""
        limit = _page_size(limit)
        query = select(Run).where(Run.owner == owner).order_by(Run.id.desc()).limit(limit + 1)
        if job_id is not None:
            query = query.where(Run.job_id == job_id)
        if status is not None:
            query = query.where(Run.status == status)
        if since is not None:
            query = query.where(Run.queued_at >= since)
        if until is not None:
            query = query.where(Run.queued_at < until)
        if cursor:
            query = query.where(Run.id < cursor)
        with self.db.read() as session:
            runs = list(session.scalars(query))
            page = [RunOut.model_validate(run) for run in runs[:limit]]
        return RunPage(runs=page, next_cursor=page[-1].id if len(runs) > limit else None)

    def cancel_run(self, owner: str, run_id: str, *, now: datetime | None = None) -> RunOut:
        """Cancel a queued run at once, or ask the worker of a running one to stop it."""
        now = now or utcnow()
        with self.db.read() as session:
            self._own_run(session, owner, run_id)
        run = request_cancel(
            self.db, run_id, now, max_retry_delay=self.settings.max_retry_delay_seconds
        )
        return RunOut.model_validate(run)

    def rerun(self, owner: str, run_id: str, *, now: datetime | None = None) -> RunOut:
        """Run the same notebook again with the same parameters."""
        now = now or utcnow()
        with self.db.write() as session:
            old = self._own_run(session, owner, run_id)
            job = session.get(Job, old.job_id) if old.job_id else None
            run = new_run(
                job,
                now=now,
                trigger="manual",
                owner=old.owner,
                notebook=old.notebook,
                root_dir=old.root_dir,
                kernel=old.kernel,
                timeout_seconds=old.timeout_seconds,
                queue=old.queue,
            )
            run.parameters = dict(old.parameters)
            run.output_formats = list(old.output_formats)
            session.add(run)
        return self._start(run.id, now)

    def run_output(self, owner: str, run_id: str, fmt: str = "ipynb") -> Path:
        """The executed notebook (``ipynb``) or its HTML rendering (``html``)."""
        if fmt not in ("ipynb", "html"):
            raise InvalidInput("format: expected 'ipynb' or 'html'", field="format")
        with self.db.read() as session:
            run = self._own_run(session, owner, run_id)
            ref = run.output_ref if fmt == "ipynb" else run.html_ref
        return resolve_ref(self.settings.artifacts_dir, ref, f"{fmt} output")

    def run_thumbnail(self, owner: str, run_id: str) -> Path:
        """The thumbnail of the run's last image output (PNG or SVG; 404 when it has none)."""
        with self.db.read() as session:
            run = self._own_run(session, owner, run_id)
            ref = run.thumbnail_ref
        if ref is None:
            raise NotFound("the run has no thumbnail: its notebook has no image output")
        return resolve_ref(self.settings.artifacts_dir, ref, "thumbnail")

    def compare_runs(self, owner: str, run_a: str, run_b: str) -> RunComparison:
        """What changed from run ``run_a`` to run ``run_b``: parameters and the nbdime diff
        of their executed notebooks (409 naming the run that has no output yet)."""
        runs, notebooks = [], []
        with self.db.read() as session:
            for field, run_id in (("run_id", run_a), ("other_id", run_b)):
                run = self._own_run(session, owner, run_id)
                if run.output_ref is None:
                    raise Conflict(
                        f"run {run_id} has no output yet (it is {run.status})", field=field
                    )
                runs.append(run)
        for run in runs:
            path = resolve_ref(self.settings.artifacts_dir, run.output_ref, "output")
            notebooks.append(nbformat.read(str(path), as_version=4))
        diff, cells = compare.compare_notebooks(notebooks[0], notebooks[1])
        a, b = (RunOut.model_validate(run) for run in runs)
        return RunComparison(
            a=a, b=b, parameters=compare.changed_values(a.parameters, b.parameters),
            values=compare.changed_values(a.values or {}, b.values or {}),
            cells=cells, summary=compare.summarize(cells), notebook_diff=diff,
        )  # fmt: skip

    def run_log(self, owner: str, run_id: str, offset: int = 0) -> tuple[str, int]:
        """The run's log from byte ``offset`` in whole characters, and the offset to ask
        for next (see :func:`~jupyter_sched.artifacts.read_log`)."""
        if offset < 0:
            raise InvalidInput("offset: must be 0 or more", field="offset")
        with self.db.read() as session:
            run = self._own_run(session, owner, run_id)
            ref = run.log_ref
        if not ref:
            return "", offset
        return read_log(resolve_ref(self.settings.artifacts_dir, ref, "log"), offset)

    def job_stats(self, owner: str, job_id: str) -> JobStats:
        """Counts and success rate over the job's finished runs, and duration percentiles
        over its newest :data:`DURATION_SAMPLE` successful runs."""
        with self.db.read() as session:
            self._own_job(session, owner, job_id)
            counts = session.get(JobCounts, job_id)
            durations = sorted(
                d
                for d in session.scalars(
                    select(Run.duration_seconds)
                    .where(Run.job_id == job_id, Run.status == "succeeded")
                    .order_by(Run.id.desc())
                    .limit(DURATION_SAMPLE)
                )
                if d is not None
            )
        if counts is None:
            return JobStats(
                runs=0, succeeded=0, failed=0, success_rate=None, duration_p50_seconds=None,
                duration_p95_seconds=None, last_success_at=None, last_failure_at=None,
            )  # fmt: skip
        failed = counts.failed + counts.timed_out + counts.lost
        finished = counts.succeeded + failed + counts.cancelled + counts.skipped
        judged = counts.succeeded + failed
        return JobStats(
            runs=finished,
            succeeded=counts.succeeded,
            failed=failed,
            success_rate=counts.succeeded / judged if judged else None,
            duration_p50_seconds=_percentile(durations, 0.50),
            duration_p95_seconds=_percentile(durations, 0.95),
            last_success_at=counts.last_success_at,
            last_failure_at=counts.last_failure_at,
        )

    # -- the rest -----------------------------------------------------------------------

    def preview(
        self,
        data: PreviewRequest | dict[str, Any],
        *,
        owner: str | None = None,
        now: datetime | None = None,
    ) -> Preview:
        """The next fire times of a trigger and a description of it (naming the jobs of
        ``owner`` an ``after`` trigger follows).

        Someone is scheduling a notebook: the workers prepare a kernel for it.
        """
        now = now or utcnow()
        request = parse(PreviewRequest, data)
        self.queues.hint_run_soon()
        fires = next_fires(
            request.trigger, now, request.count, start_at=request.start_at, end_at=request.end_at
        )
        names: dict[str, str] = {}
        upstreams = upstream_job_ids([request.trigger])
        if owner is not None and upstreams:
            with self.db.read() as session:
                names = _job_names(session, owner, upstreams)
        return Preview(description=describe_trigger(request.trigger, names), next=fires)

    def notebook_parameters(self, path: str) -> list[NotebookParameter]:
        """The parameters a notebook declares, with types, defaults and help.

        Someone is scheduling a notebook: the workers prepare a kernel for it.
        """
        self.queues.hint_run_soon()
        return notebook_parameters(self._resolve(path, "path"), field="path", shown=path)

    def workers(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Workers that heartbeated within the lease."""
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self.settings.lease_seconds)
        with self.db.read() as session:
            rows = session.scalars(
                select(WorkerRow).where(
                    WorkerRow.heartbeat_at >= cutoff, WorkerRow.stopped_at.is_(None)
                )
            ).all()
            running = dict(
                session.execute(
                    select(Run.worker_id, func.count())
                    .where(Run.status == "running", Run.worker_id.in_([w.id for w in rows]))
                    .group_by(Run.worker_id)
                ).all()
            )
            return [
                {
                    "id": w.id, "host": w.host, "pid": w.pid, "queues": w.queues,
                    "concurrency": w.concurrency, "running": running.get(w.id, 0),
                    "started_at": w.started_at, "heartbeat_at": w.heartbeat_at,
                }
                for w in rows
            ]  # fmt: skip

    def load(self, *, now: datetime | None = None) -> Load:
        """Queued runs by queue, running runs, active jobs and live workers, right now."""
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self.settings.lease_seconds)
        with self.db.read() as session:
            queued = dict(
                session.execute(
                    select(Run.queue, func.count())
                    .where(Run.status == "queued")
                    .group_by(Run.queue)
                ).all()
            )
            running = session.scalar(select(func.count()).where(Run.status == "running"))
            active_jobs = session.scalar(select(func.count()).where(Job.status == "active"))
            live_workers = session.scalar(
                select(func.count()).where(
                    WorkerRow.heartbeat_at >= cutoff, WorkerRow.stopped_at.is_(None)
                )
            )
        return Load(
            queued=queued,
            running=running or 0,
            active_jobs=active_jobs or 0,
            live_workers=live_workers or 0,
        )

    # -- helpers ------------------------------------------------------------------------

    @property
    def _root(self) -> str:
        """This server's root, recorded with every notebook path it checks."""
        return os.path.realpath(self.settings.root_dir)

    def _own_job(self, session: Session, owner: str, job_id: str) -> Job:
        job = session.get(Job, job_id)
        if job is None or job.owner != owner:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        return job

    def _own_run(self, session: Session, owner: str, run_id: str) -> Run:
        run = session.get(Run, run_id)
        if run is None or run.owner != owner:
            raise NotFound(f"no run {run_id!r}", field="run_id")
        return run

    def _last_runs(self, session: Session, job_ids: list[str]) -> dict[str, RunOut]:
        if not job_ids:
            return {}
        latest = (
            select(func.max(Run.id)).where(Run.job_id.in_(job_ids)).group_by(Run.job_id)
        ).scalar_subquery()
        runs = session.scalars(select(Run).where(Run.id.in_(latest)))
        return {run.job_id: RunOut.model_validate(run) for run in runs if run.job_id}

    def _job_out(self, job: Job, session: Session | None = None) -> JobOut:
        """The API's view of ``job`` (with its last run when a ``session`` is given)."""
        if session is None:
            if not workflows.upstream_ids(job.trigger):
                return _job_model(job)
            with self.db.read() as reading:  # to name the jobs it follows
                return _job_model(job, None, _upstream_names(reading, job.owner, [job]))
        last_run = self._last_runs(session, [job.id]).get(job.id)
        return _job_model(job, last_run, _upstream_names(session, job.owner, [job]))


def _batch_model(batch: Batch, progress: dict[str, int]) -> BatchOut:
    return BatchOut.model_validate(
        {name: getattr(batch, name) for name in BatchOut.model_fields if name != "progress"}
        | {"progress": progress}
    )


#: The fields of the API's job read from the attributes of its row.
_JOB_ROW_FIELDS = tuple(set(JobOut.model_fields) - {"trigger_description", "last_run"})


def _upstream_names(session: Session, owner: str, jobs: list[Job]) -> dict[str, str]:
    """The names of the jobs of ``owner`` that the ``after`` triggers of ``jobs`` follow."""
    ids = {job_id for job in jobs for job_id in workflows.upstream_ids(job.trigger)}
    return _job_names(session, owner, ids) if ids else {}


def _job_names(session: Session, owner: str, ids: set[str]) -> dict[str, str]:
    """The names of the jobs of ``owner`` among ``ids``, by id."""
    query = select(Job.id, Job.name).where(Job.id.in_(ids), Job.owner == owner)
    return {job_id: name for job_id, name in session.execute(query)}


def _job_model(
    job: Job, last_run: RunOut | None = None, job_names: dict[str, str] | None = None
) -> JobOut:
    """The API's view of a job row: its fields, its trigger in words (naming the jobs it
    follows by ``job_names``), its last run."""
    # Read leniently: a stored trigger that no longer validates (its job is set aside)
    # is still listed and shown as stored.
    trigger = stored_trigger(job.trigger, lenient=True)
    try:
        description = describe_trigger(trigger, job_names)
    except (ValueError, TypeError, AttributeError):
        description = f"a {job.trigger_kind} trigger that cannot be read any more"
    return JobOut.model_validate(
        {name: getattr(job, name) for name in _JOB_ROW_FIELDS}
        | {
            "trigger": trigger,
            "trigger_description": description,
            "last_run": last_run,
        }
    )


def _checked_payload(payload: Any) -> Any:
    """An event's or webhook call's JSON payload, refused if a number in it is not finite."""
    if payload is None:
        return None
    return parse(Payload, payload).model_dump()


@dataclass(frozen=True)
class _CheckedUpdate:
    """A job change validated against the job at ``version``."""

    version: int
    changes: dict[str, Any]
    trigger: Trigger | None
    #: Whether the notebook path was checked (against this server's root).
    path_checked: bool


def _upstreams(trigger: Trigger) -> list[str]:
    return trigger.jobs if isinstance(trigger, AfterTrigger) else []


def _page_size(limit: int) -> int:
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE}", field="limit")
    return limit


def _percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values."""
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


__all__ = ["Service", "parse", "parse_json"]

"""The scheduler's operations: what the REST handlers, the CLI and scripts call.

No web framework here. Every method takes the acting user (``owner``) and, where time
matters, ``now``; callers get pydantic models back and :class:`~jupyter_sched.errors.SchedError`
subclasses for anything they did wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from . import schedules, webhooks, workflows
from .artifacts import RunFolder
from .clock import utcnow
from .config import Settings
from .db import Database, updated
from .errors import Conflict, InvalidInput
from .handoff import NOTEBOOK_FIELDS, HandedNotebook
from .lifecycle import request_cancel
from .listing import job_conditions, job_names, latest_run_ids, trigger_words
from .models import Job, Run
from .models import Worker as WorkerRow
from .notebooks import notebook_parameters
from .parsing import check_queue, invalid_input, page_size, parse
from .queue import Queues, check_secret
from .reportcalls import ReportCalls
from .restmodels import Load
from .runs import RunCalls
from .schemas import (
    NOT_NULLABLE,
    JobCreate,
    JobPage,
    JobUpdate,
    NotebookParameter,
    Preview,
    PreviewRequest,
    Trigger,
    stored_trigger,
)
from .schemas import Job as JobOut
from .schemas import Run as RunOut
from .storedtriggers import describe_trigger, upstream_ids
from .triggers import check_trigger, job_next_fire, next_fires, schedule_error_text

#: The fields of a job that :meth:`Service._check_job` checks against the notebook,
#: the clock and each other.
_CHECKED = frozenset(
    {"notebook", "parameters", "kernel", "trigger", "start_at", "end_at", "sweep", "output_formats"}
)
#: Times an update is checked again when the job changes between its check and its write.
UPDATE_ATTEMPTS = 3
#: Runs of a deleted job removed per transaction.
DELETE_BATCH = 500


class Service(ReportCalls, RunCalls):
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

    def join(self, *, migrate_in_child: bool = False) -> None:
        """Migrate the history database and check this process's queue secret
        (``migrate_in_child``: see :meth:`~jupyter_sched.db.Database.upgrade`).

        Raises :class:`~jupyter_sched.errors.Unavailable` while the database does not answer,
        and :class:`~jupyter_sched.errors.CannotStart` when this process must not join the
        deployment: its database was migrated by a newer jupyter-sched, or its secret does
        not sign queue messages like the deployment's.
        """
        self.db.upgrade(in_child=migrate_in_child)
        check_secret(self.db, self.settings)

    # -- jobs ---------------------------------------------------------------------------

    def create_job(
        self,
        owner: str,
        data: JobCreate | dict[str, Any],
        *,
        handed: HandedNotebook | None = None,
        now: datetime | None = None,
    ) -> JobOut:
        """Create a job after checking its notebook (the copy ``handed`` over by its
        owner, if any: see :mod:`.handoff`), parameters and trigger."""
        now = now or utcnow()
        spec = parse(JobCreate, data)
        self._check_job(spec, now, owner=owner, handed=handed)
        job = Job(
            name=spec.name,
            owner=owner,
            notebook=spec.notebook,
            root_dir=self._root_of(owner),
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
        upstreams = upstream_ids(job.trigger)
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
        self,
        spec: JobCreate,
        now: datetime,
        changed: frozenset[str] | set[str] = _CHECKED,
        *,
        owner: str,
        handed: HandedNotebook | None = None,
    ) -> None:
        """Check a job's notebook, parameters, kernel, trigger and window; of an updated
        job, only what the update ``changed`` (a fired ``once`` job stays editable)."""
        if NOTEBOOK_FIELDS & changed:
            self._check_kernel(spec.kernel)
            self._check_notebook(
                owner, spec.notebook, spec.parameters, spec.kernel, sweep=spec.sweep,
                handed=handed,
            )  # fmt: skip
        if "output_formats" in changed:
            self._check_output_formats(spec.output_formats)
        if "trigger" in changed:
            check_trigger(spec.trigger, now)
        window = {"start_at", "end_at"} & changed
        if window and spec.start_at and spec.end_at and spec.end_at <= spec.start_at:
            raise InvalidInput("end_at: must be after start_at", field="end_at")

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
        only_owner: str | None = None,
    ) -> JobPage:
        """Jobs of ``owner``, newest first, ``limit`` per page (an admin's: everyone's, or
        ``only_owner``'s)."""
        limit = page_size(limit)
        conditions = job_conditions(
            Job, owner, is_sqlite=self.db.is_sqlite, only_owner=only_owner, status=status, tag=tag
        )
        query = select(Job).where(*conditions).order_by(Job.id.desc()).limit(limit + 1)
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
        handed: HandedNotebook | None = None,
        now: datetime | None = None,
    ) -> JobOut:
        """Change the fields present in ``data``; ``null`` clears an optional field.
        A changed notebook or parameters are checked against the notebook its owner
        ``handed`` over, if they did (see :mod:`.handoff`).

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
            checked = self._check_update(
                owner, job_id, dict(changes), expected_version, now, handed
            )
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
        handed: HandedNotebook | None = None,
    ) -> _CheckedUpdate:
        """Validate a change against the job as it is now, outside any write transaction:
        the stored job with the changed fields put over it is checked as a new job would be,
        the checks that read files or the graph only for what changed."""
        with self.db.read() as session:
            job = self._own_job(session, owner, job_id)
            # A column left empty (null) takes the field's default, as in a new job.
            stored = {
                name: value
                for name in JobCreate.model_fields
                if (value := getattr(job, name)) is not None
            }
            stored["trigger"] = stored_trigger(job.trigger, lenient=True)
            version, job_owner = job.version, job.owner
        if expected_version is not None and expected_version != version:
            raise Conflict(
                f"version: the job changed meanwhile (now version {version})", field="version"
            )
        if "queue" in changes:
            # null: back to the default
            changes["queue"] = check_queue(owner, changes["queue"] or self.settings.default_queue)
        if "output_formats" in changes:
            changes["output_formats"] = [
                "ipynb",
                *sorted(set(changes["output_formats"]) - {"ipynb"}),
            ]
        merged = JobCreate.model_validate(stored | changes)
        # An admin's own copy of a path is not the owner's notebook
        own_copy = handed if owner == job_owner else None
        self._check_job(merged, now, set(changes), owner=job_owner, handed=own_copy)
        trigger = changes.pop("trigger", None)
        if trigger is not None:
            changes["trigger"] = trigger.model_dump(mode="json")
            changes["trigger_kind"] = trigger.kind
            with self.db.read() as session:
                workflows.check_upstreams(session, owner, job_id, upstream_ids(changes["trigger"]))
        for name in ("notifications", "checks"):
            if changes.get(name) is not None:
                changes[name] = [item.model_dump(mode="json") for item in changes[name]]
        return _CheckedUpdate(version, changes, trigger, bool(NOTEBOOK_FIELDS & set(changes)))

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
            values = dict(update.changes)
            if update.path_checked:
                values["root_dir"] = self._root_of(job.owner)  # the path was checked against it
            if update.trigger is not None:
                # Again, under the lock (two short queries): another job's change may have
                # deleted an upstream job or closed a cycle since the check.
                workflows.lock_graph(session, owner)
                workflows.check_upstreams(session, owner, job.id, upstream_ids(values["trigger"]))
                if job.status == "error":  # set aside for its old trigger: back in service
                    values |= {"status": "active", "error": None}
            # Compare-and-set on the version; the session's row takes the new values.
            won = updated(
                session,
                sql_update(Job)
                .where(Job.id == job.id, Job.version == update.version)
                .values(values | {"version": update.version + 1, "updated_at": now})
                .execution_options(synchronize_session="evaluate"),
            )
            if not won:
                if expected_version is not None:
                    session.refresh(job)
                    raise Conflict(
                        f"version: the job changed meanwhile (now version {job.version})",
                        field="version",
                    )
                return None
            if update.trigger is not None:
                workflows.sync_dependencies(session, job)
            if update.trigger is not None or {"start_at", "end_at", "max_runs"} & set(values):
                job.next_fire_at = job_next_fire(job, now) if job.status == "active" else None
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
            raise invalid_input(exc, prefix="trigger") from None

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
        stored = request.trigger.model_dump(mode="json")
        if owner is not None and (upstreams := upstream_ids(stored)):
            with self.db.read() as session:
                names = job_names(session, owner, upstreams)
        return Preview(description=describe_trigger(stored, names), next=fires)

    def notebook_parameters(
        self, path: str, owner: str | None = None, *, handed: HandedNotebook | None = None
    ) -> list[NotebookParameter]:
        """The parameters a notebook of ``owner`` declares, with types, defaults and help
        (of the copy ``handed`` over by its owner, if any).

        Someone is scheduling a notebook: the workers prepare a kernel for it.
        """
        self.queues.hint_run_soon()
        with self._readable_notebook(owner or "", path, field="path", handed=handed) as readable:
            return notebook_parameters(readable, field="path", shown=path)

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

    def _last_runs(self, session: Session, job_ids: list[str]) -> dict[str, RunOut]:
        if not job_ids:
            return {}
        runs = session.scalars(select(Run).where(Run.id.in_(latest_run_ids(job_ids))))
        return {run.job_id: RunOut.model_validate(run) for run in runs if run.job_id}

    def _job_out(self, job: Job, session: Session | None = None) -> JobOut:
        """The API's view of ``job`` (with its last run when a ``session`` is given)."""
        if session is None:
            if not upstream_ids(job.trigger):
                return _job_model(job)
            with self.db.read() as reading:  # to name the jobs it follows
                return _job_model(job, None, _upstream_names(reading, job.owner, [job]))
        last_run = self._last_runs(session, [job.id]).get(job.id)
        return _job_model(job, last_run, _upstream_names(session, job.owner, [job]))


#: The fields of the API's job read from the attributes of its row.
_JOB_ROW_FIELDS = tuple(set(JobOut.model_fields) - {"trigger_description", "last_run"})


def _upstream_names(session: Session, owner: str, jobs: list[Job]) -> dict[str, str]:
    """The names of the jobs of ``owner`` that the ``after`` triggers of ``jobs`` follow."""
    ids = {job_id for job in jobs for job_id in upstream_ids(job.trigger)}
    return job_names(session, owner, ids) if ids else {}


def _job_model(
    job: Job, last_run: RunOut | None = None, upstream_names: dict[str, str] | None = None
) -> JobOut:
    """The API's view of a job row: its fields, its trigger in words (naming the jobs it
    follows by ``upstream_names``), its last run."""
    # Read leniently: a stored trigger that no longer validates (its job is set aside)
    # is still listed and shown as stored.
    trigger = stored_trigger(job.trigger, lenient=True)
    description = trigger_words(job.trigger, job.trigger_kind, upstream_names)
    return JobOut.model_validate(
        {name: getattr(job, name) for name in _JOB_ROW_FIELDS}
        | {
            "trigger": trigger,
            "trigger_description": description,
            "last_run": last_run,
        }
    )


@dataclass(frozen=True)
class _CheckedUpdate:
    """A job change validated against the job at ``version``."""

    version: int
    changes: dict[str, Any]
    trigger: Trigger | None
    #: Whether the notebook path was checked (against this server's root).
    path_checked: bool


__all__ = ["Service"]

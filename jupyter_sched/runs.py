"""The service's calls about runs: run now, events and webhooks, the run history,
cancel and rerun, outputs and logs, and per-job statistics.

They are methods of :class:`~jupyter_sched.service.Service` (which this class is mixed
into), kept here so each module stays one readable size.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import compare, reports, webhooks, workflows
from .access import AdminName
from .artifacts import read_log, resolve_ref
from .clock import utcnow
from .compare import RunComparison
from .config import Settings
from .db import Database
from .dispatch import dispatch
from .errors import Conflict, InvalidInput, NotFound
from .firing import snapshot_run_input
from .handoff import HandedNotebook
from .lifecycle import new_run, request_cancel
from .listing import run_conditions
from .models import Batch, Job, JobCounts, Run
from .notebooks import (
    check_notebook,
    check_notebook_path,
    kernel_language,
    notebook_parameters,
    notebook_root,
    resolve_notebook,
)
from .owners import owner_copy
from .parsing import check_queue, page_size, parse
from .pdf import pdf_unavailable
from .queue import Queues
from .schemas import (
    EventTrigger,
    JobStats,
    Payload,
    RunNow,
    RunPage,
)
from .schemas import Run as RunOut
from .ticker import snapshot_input

#: Successful runs, newest first, that duration percentiles are taken over.
DURATION_SAMPLE = 1000


class RunCalls:
    """Runs of a deployment, for their owners (mixed into the service)."""

    settings: Settings
    db: Database
    queues: Queues
    webhook_limiter: webhooks.RateLimiter

    def run_job(
        self,
        owner: str,
        job_id: str,
        parameters: dict[str, Any] | None = None,
        *,
        handed: HandedNotebook | None = None,
        now: datetime | None = None,
    ) -> RunOut:
        """Run a job now, with optional parameter overrides for this run only.

        A sweep job makes a batch, one run per set (the overrides apply to each); its
        first run is returned, with the batch's id. Overrides are checked against the
        ``handed`` notebook when its owner handed it over (see :mod:`.handoff`).
        """
        now = now or utcnow()
        parameters = parse(RunNow, {"parameters": parameters or {}}).parameters
        with self.db.read() as session:
            job = self._own_job(session, owner, job_id)
            notebook, kernel, job_owner, sweep = job.notebook, job.kernel, job.owner, job.sweep
            root = notebook_root(job.root_dir, self.settings.root_dir)
        if parameters or sweep is not None:
            # a sweep's sets are checked against the notebook as it is now, like overrides
            own_copy = handed if owner == job_owner else None  # not an admin's copy
            self._check_notebook(
                job_owner, notebook, parameters, kernel, root=root, sweep=sweep, handed=own_copy
            )
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            batched = job.sweep is not None
            if not batched:
                run = new_run(job, now=now, trigger="manual", parameters=parameters)
                session.add(run)
                run_ids = [run.id]
            else:
                batch = reports.new_batch(
                    session, job, kind="sweep", total=reports.sweep_size(job.sweep),
                    max_parallel=job.max_parallel, now=now,
                )  # fmt: skip
                run_ids = self._add_batch_runs(
                    session, job, batch, trigger="manual", fires=[now], overrides=parameters
                )
        if not batched:
            return self._start(run_ids[0], now)
        return self._start_batch(run_ids, now)

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
        """Add the runs of ``batch``: one per fire and set of the job's sweep, sharing the
        batch's chain (so ``after`` jobs follow the batch once)."""
        runs = list(
            reports.batch_runs(
                job, now=batch.created_at, trigger=trigger, fires=fires, batch=batch,
                chain_id=f"batch:{batch.id}", overrides=overrides,
            )
        )  # fmt: skip
        session.add_all(runs)
        session.flush()
        return [run.id for run in runs]

    def _start_batch(self, run_ids: list[str], now: datetime) -> RunOut:
        """Snapshot a new batch's input once for all its runs, hand over what its
        ``max_parallel`` allows, and return its first run."""
        with self.db.read() as session:
            first = session.get(Run, run_ids[0])
            assert first is not None
            root_dir, notebook = first.root_dir, first.notebook
        ref = snapshot_run_input(self.settings, root_dir, notebook)
        if ref is not None:
            with self.db.write() as session:
                for start in range(0, len(run_ids), 500):
                    chunk = run_ids[start : start + 500]
                    session.execute(update(Run).where(Run.id.in_(chunk)).values(input_ref=ref))
        dispatch(self.db, self.queues, now, run_ids=run_ids)
        with self.db.read() as session:
            run = session.get(Run, run_ids[0])
            assert run is not None
            return RunOut.model_validate(run)

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
        handed: HandedNotebook | None = None,
        now: datetime | None = None,
    ) -> RunOut:
        """Run a notebook once, now, without a job (checked against the ``handed``
        notebook when its owner handed it over).

        With ``dispatch=False`` the run is not handed to the queue (the caller executes it).
        """
        now = now or utcnow()
        parameters = parse(RunNow, {"parameters": parameters or {}}).parameters
        self._check_kernel(kernel)
        self._check_output_formats(output_formats or [])
        self._check_notebook(owner, notebook, parameters, kernel, handed=handed)
        with self.db.write() as session:
            run = new_run(
                None,
                now=now,
                trigger="manual",
                owner=owner,
                notebook=notebook,
                root_dir=self._root_of(owner),
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
        only_owner: str | None = None,
    ) -> RunPage:
        """Runs of ``owner`` (an admin's: everyone's, or ``only_owner``'s), newest first,
        filtered by job, status and queue time."""
        limit = page_size(limit)
        conditions = run_conditions(Run, owner, only_owner=only_owner, job_id=job_id, status=status)
        query = select(Run).where(*conditions).order_by(Run.id.desc()).limit(limit + 1)
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
        """The executed notebook (``ipynb``) or its HTML (``html``) or PDF (``pdf``)
        rendering."""
        if fmt not in ("ipynb", "html", "pdf"):
            raise InvalidInput("format: expected 'ipynb', 'html' or 'pdf'", field="format")
        with self.db.read() as session:
            run = self._own_run(session, owner, run_id)
            ref = {"ipynb": run.output_ref, "html": run.html_ref, "pdf": run.pdf_ref}[fmt]
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
        import nbformat  # the server imports it only to compare runs

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

    def run_log_file(self, owner: str, run_id: str) -> Path | None:
        """Where the run's log is on this machine; ``None`` before it has one."""
        with self.db.read() as session:
            ref = self._own_run(session, owner, run_id).log_ref
        return resolve_ref(self.settings.artifacts_dir, ref, "log") if ref else None

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

    # -- helpers shared with the service's job calls ------------------------------------

    @contextlib.contextmanager
    def _readable_notebook(
        self,
        owner: str,
        notebook: str,
        *,
        root: Path | None = None,
        field: str = "notebook",
        handed: HandedNotebook | None = None,
    ) -> Iterator[Path]:
        """A file holding the notebook ``owner`` names (relative to ``root``, by default
        their root): the copy they handed over (a hub's service does not read users'
        folders), else the file checked against the root, read with ``owner``'s rights
        when runs execute as their owner (never with the scheduler's own)."""
        allow_hidden = self.settings.allow_hidden
        if handed is not None and handed.serves(notebook):
            check_notebook_path(notebook, field=field, allow_hidden=allow_hidden)
            with handed.as_file() as copy:
                yield copy
            return
        root = root if root is not None else Path(self._root_of(owner))
        path = resolve_notebook(root, notebook, field=field, allow_hidden=allow_hidden)
        with owner_copy(self.settings, owner, path) as readable:
            yield readable

    def _check_notebook(
        self,
        owner: str,
        notebook: str,
        parameters: dict[str, Any],
        kernel: str | None,
        *,
        root: Path | None = None,
        sweep: Any = None,
        handed: HandedNotebook | None = None,
    ) -> None:
        """Check ``parameters`` (and each set of a ``sweep``) against the notebook
        ``owner`` names (see :meth:`_readable_notebook`)."""
        with self._readable_notebook(owner, notebook, root=root, handed=handed) as readable:
            check_notebook(readable, parameters, kernel=kernel, shown=notebook)
            if sweep is not None:
                declared = notebook_parameters(readable, kernel=kernel, shown=notebook)
                reports.check_sweep(sweep, declared, self.settings.max_sweep_sets)

    def _check_output_formats(self, formats: Collection[str]) -> None:
        """Refuse ``pdf`` where no PDF can be rendered (422 saying what to install): a
        job that asks for it is refused now, never failed at its first run."""
        if "pdf" in formats:
            reason = pdf_unavailable(self.settings.chromium_path)
            if reason is not None:
                raise InvalidInput(reason, field="output_formats")

    @staticmethod
    def _check_kernel(kernel: str | None) -> None:
        if kernel is not None and kernel_language(kernel) is None:
            raise InvalidInput(f"kernel: no kernel named {kernel!r} is installed", field="kernel")

    @property
    def _root(self) -> str:
        """This server's root, recorded with every notebook path it checks."""
        return os.path.realpath(self.settings.root_dir)

    def _root_of(self, owner: str) -> str:
        """The root of ``owner``'s notebook paths: on a hub's service, the folder
        ``user_root_dir`` names for them (``{owner}`` replaced); else this server's root."""
        template = self.settings.user_root_dir
        if not template or not owner:
            return self._root
        return os.path.realpath(os.path.expanduser(template.replace("{owner}", owner)))

    def _own_job(self, session: Session, owner: str, job_id: str) -> Job:
        job = session.get(Job, job_id)
        if job is None or (job.owner != owner and not isinstance(owner, AdminName)):
            raise NotFound(f"no job {job_id!r}", field="job_id")
        return job

    def _own_run(self, session: Session, owner: str, run_id: str) -> Run:
        run = session.get(Run, run_id)
        if run is None or (run.owner != owner and not isinstance(owner, AdminName)):
            raise NotFound(f"no run {run_id!r}", field="run_id")
        return run


def _checked_payload(payload: Any) -> Any:
    """An event's or webhook call's JSON payload, refused if a number in it is not finite."""
    if payload is None:
        return None
    return parse(Payload, payload).model_dump()


def _percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values."""
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])

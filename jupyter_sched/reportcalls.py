"""The service's calls for report builders: backfills (with a preview), batches and
their progress, and summaries of a job's runs as JSON or CSV.

They are methods of :class:`~jupyter_sched.service.Service` (which this class is mixed
into), beside the run calls of :mod:`jupyter_sched.runs` that they use to make runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from . import reports
from .access import AdminName
from .clock import utcnow
from .errors import InvalidInput, NotFound
from .handoff import HandedNotebook
from .models import Batch
from .notebooks import notebook_root
from .parsing import page_size, parse
from .reportschemas import BackfillPreview, BackfillRequest, BatchPage, Summary, SummaryRow
from .reportschemas import Batch as BatchOut
from .runs import RunCalls


class ReportCalls(RunCalls):
    """Backfills, batches and summaries of a deployment, for their owners (mixed into
    the service)."""

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
        handed: HandedNotebook | None = None,
        now: datetime | None = None,
    ) -> BatchOut:
        """One run per fire of the job's schedule in ``[start, end]`` (times its sweep's
        sets), each with its fire as ``scheduled_for``, in one batch with ``max_parallel``.

        Refused (:class:`InvalidInput`, nothing made) for a job without a schedule, an
        ``end`` before ``start``, a range outside the job's window, no fire in the range,
        more runs than ``max_backfill_fires``, or parameters (its own, its sweep's sets)
        the notebook no longer takes (the copy the job's owner ``handed`` over, else the
        file read with their rights).
        """
        now = now or utcnow()
        request = parse(BackfillRequest, data)
        bound = self.settings.max_backfill_fires
        with self.db.read() as session:
            job = self._own_job(session, owner, job_id)
            fires, count, _ = reports.backfill_fires(
                job, request.start, request.end, bound, reports.count_limit(bound)
            )
            reports.check_backfill_size(count, reports.sweep_size(job.sweep), bound)
            if not fires:
                raise InvalidInput("end: the range holds no fire of the schedule", field="end")
            root = notebook_root(job.root_dir, self.settings.root_dir)
            notebook, kernel, job_owner = job.notebook, job.kernel, job.owner
            parameters, sweep = dict(job.parameters), job.sweep
        own_copy = handed if owner == job_owner else None  # an admin's copy is not the owner's
        self._check_notebook(
            job_owner, notebook, parameters, kernel, root=root, sweep=sweep, handed=own_copy
        )
        with self.db.write() as session:
            job = self._own_job(session, owner, job_id)
            sets = reports.sweep_size(job.sweep)
            batch = reports.new_batch(
                session, job, kind="backfill", total=len(fires) * sets,
                max_parallel=request.max_parallel or job.max_parallel, now=now,
            )  # fmt: skip
            run_ids = self._add_batch_runs(session, job, batch, trigger="backfill", fires=fires)
            batch_id = batch.id
        self._start_batch(run_ids, now)
        return self.get_batch(owner, batch_id)

    def get_batch(self, owner: str, batch_id: str) -> BatchOut:
        """One batch of ``owner`` with its progress."""
        with self.db.read() as session:
            batch = session.get(Batch, batch_id)
            if batch is None or (batch.owner != owner and not isinstance(owner, AdminName)):
                raise NotFound(f"no batch {batch_id!r}", field="batch")
            return _batch_model(batch, reports.batch_progress(session, [batch_id])[batch_id])

    def list_batches(self, owner: str, *, job_id: str | None = None, limit: int = 20) -> BatchPage:
        """Batches of ``owner`` (of one job), newest first, with their progress."""
        query = select(Batch).order_by(Batch.id.desc())
        if not isinstance(owner, AdminName):
            query = query.where(Batch.owner == owner)
        if job_id is not None:
            query = query.where(Batch.job_id == job_id)
        with self.db.read() as session:
            batches = list(session.scalars(query.limit(page_size(limit))))
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


def _batch_model(batch: Batch, progress: dict[str, int]) -> BatchOut:
    return BatchOut.model_validate(
        {name: getattr(batch, name) for name in BatchOut.model_fields if name != "progress"}
        | {"progress": progress}
    )

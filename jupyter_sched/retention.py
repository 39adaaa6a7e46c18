"""Retention: delete old finished runs with their files.

A deployment keeps finished runs for ``retention_days`` days and/or the newest
``retention_runs`` finished runs of each job (ad-hoc runs count as one job per owner).
Runs that are not final are never deleted, whatever their age.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select

from .artifacts import INPUTS, InputStore, RunFolder
from .config import Settings
from .db import Database
from .models import Job, Run
from .statuses import FINAL_STATUSES

log = logging.getLogger(__name__)

#: Runs deleted per transaction.
BATCH = 500


@dataclass
class PruneReport:
    """What a sweep deleted (or, dry, would delete)."""

    run_ids: list[str] = field(default_factory=list)
    dry_run: bool = False


def expired_runs(db: Database, settings: Settings, now: datetime) -> list[str]:
    """Ids of the finished runs past retention (the job's own, else the deployment's),
    oldest first."""
    expired = set(_deployment_expired(db, settings, now))
    with db.read() as session:
        own = session.execute(
            select(Job.id, Job.retention_days, Job.retention_runs).where(
                or_(Job.retention_days.is_not(None), Job.retention_runs.is_not(None))
            )
        ).all()
    for job_id, days, keep in own:
        # a job's own retention replaces the deployment's for that job
        expired -= set(_job_runs(db, job_id))
        expired |= set(_deployment_expired(
            db, settings.replace(retention_days=days, retention_runs=keep), now, job_id=job_id
        ))  # fmt: skip
    return sorted(expired)


def _job_runs(db: Database, job_id: str) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(Run.id).where(Run.job_id == job_id)))


def _deployment_expired(
    db: Database, settings: Settings, now: datetime, *, job_id: str | None = None
) -> list[str]:
    conditions = []
    if settings.retention_days is not None:
        cutoff = now - timedelta(days=settings.retention_days)
        conditions.append(Run.finished_at < cutoff)
    if settings.retention_runs is not None:
        newest_first = (
            func.row_number()
            .over(
                partition_by=(func.coalesce(Run.job_id, "owner:" + Run.owner),),
                order_by=Run.id.desc(),
            )
            .label("rank")
        )
        ranked_query = select(Run.id.label("id"), newest_first).where(
            Run.status.in_(FINAL_STATUSES)
        )
        if job_id is not None:
            ranked_query = ranked_query.where(Run.job_id == job_id)
        ranked = ranked_query.subquery()
        beyond = select(ranked.c.id).where(ranked.c.rank > settings.retention_runs)
        conditions.append(Run.id.in_(beyond))
    if not conditions:
        return []
    query = select(Run.id).where(Run.status.in_(FINAL_STATUSES), or_(*conditions)).order_by(Run.id)
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    with db.read() as session:
        return list(session.scalars(query))


def prune(db: Database, settings: Settings, now: datetime, *, dry_run: bool = False) -> PruneReport:
    """Delete the runs past retention and their folders (or only list them when dry)."""
    report = PruneReport(expired_runs(db, settings, now), dry_run)
    if dry_run or not report.run_ids:
        return report
    for start in range(0, len(report.run_ids), BATCH):
        batch = report.run_ids[start : start + BATCH]
        with db.write() as session:
            # the status condition again: a run cannot become non-final, but stay exact
            session.execute(delete(Run).where(Run.id.in_(batch), Run.status.in_(FINAL_STATUSES)))
        for run_id in batch:
            RunFolder(settings.artifacts_dir, run_id).remove()
    log.info("retention: deleted %d finished run(s)", len(report.run_ids))
    return report


def sweep_inputs(db: Database, settings: Settings, now: datetime) -> list[str]:
    """Delete the stored notebook versions that no run refers to any more (their runs were
    pruned or their job deleted); returns their references. A version is shared by runs,
    so it goes only with the last of them (and not while a fire may be committing it)."""
    store = InputStore(settings.artifacts_dir)
    if not store.path.is_dir():
        return []
    candidates = [f"{INPUTS}/{file.name}" for file in store.path.iterdir()]
    referenced: set[str] = set()
    with db.read() as session:
        for start in range(0, len(candidates), BATCH):
            batch = candidates[start : start + BATCH]
            referenced.update(
                ref
                for ref in session.scalars(
                    select(Run.input_ref).where(Run.input_ref.in_(batch)).distinct()
                )
                if ref is not None
            )
    removed = store.sweep(referenced, now.timestamp())
    if removed:
        log.info("retention: deleted %d stored notebook version(s) no run uses", len(removed))
    return removed

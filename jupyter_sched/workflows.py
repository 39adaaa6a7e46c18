"""Workflows: jobs that run after other jobs, on events, or through a webhook.

A job with an ``after`` trigger runs when every one of its upstream jobs has ended with
the trigger's condition for the same fire. Runs carry a ``chain_id``: a schedule fire's
instant (so jobs scheduled for the same time share it), or the id of the manual, event
or webhook run that started the chain; dependency runs and retries inherit it. A unique
index on (job, chain) for dependency runs makes each downstream job run once per chain,
however many upstream runs end, in whichever process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import CTE, Integer, delete, func, literal, select, true
from sqlalchemy.orm import Session, aliased

from .errors import DependencyCycle, InvalidInput
from .models import Dependency, Job
from .storedtriggers import upstream_ids

#: Parameters a run receives from its upstream run when its notebook declares them.
UPSTREAM_PARAMETERS = ("upstream_run_id", "upstream_output_path", "upstream_parameters")
#: The upstream run's output notebook: stored as its reference (relative to the artifacts
#: folder, which may be mounted elsewhere on each machine) and handed to the notebook as
#: the absolute path on the worker that runs it.
UPSTREAM_OUTPUT = "upstream_output_path"
#: Parameter that receives an event's or webhook call's JSON payload when declared.
PAYLOAD_PARAMETER = "event_payload"
#: Parameter that receives the run's logical time (ISO 8601 in the job's timezone).
SCHEDULED_FOR_PARAMETER = "scheduled_for"
#: Parameters the scheduler fills in; dropped when a notebook does not declare them.
RESERVED_PARAMETERS = (*UPSTREAM_PARAMETERS, PAYLOAD_PARAMETER, SCHEDULED_FOR_PARAMETER)


def upstream_output_path(artifacts_dir: Path, value: Any) -> Any:
    """The path a downstream notebook can open for an ``upstream_output_path`` value: a
    reference becomes absolute on this machine; anything else is left as it is."""
    if not isinstance(value, str) or os.path.isabs(value):
        return value
    return str(artifacts_dir.resolve() / value)


def check_upstreams(session: Session, owner: str, job_id: str | None, upstreams: list[str]) -> None:
    """Refuse upstream jobs that do not exist for ``owner``, or that would make a cycle.

    Two queries whatever the size of the graph: the upstream jobs, then the jobs below
    ``job_id`` (one recursive query); a third names the jobs of a cycle found.
    """
    if not upstreams:
        return
    found = set(session.scalars(select(Job.id).where(Job.id.in_(upstreams), Job.owner == owner)))
    for upstream in upstreams:
        if upstream not in found:
            raise InvalidInput(f"trigger.jobs: no job {upstream!r}", field="trigger.jobs")
    if job_id is None:
        return  # a new job has no dependents yet, so it cannot close a cycle
    if job_id in upstreams:
        raise DependencyCycle("trigger.jobs: a job cannot run after itself", field="trigger.jobs")
    # A cycle exists if the job is already upstream of one of its new upstream jobs.
    path = _path(session, job_id, upstreams)
    if path is not None:
        cycle = " → ".join(_names(session, [*path, job_id]))
        raise DependencyCycle(
            f"trigger.jobs: this would make a cycle: {cycle}", field="trigger.jobs"
        )


def _path(session: Session, start: str, goals: list[str]) -> list[str] | None:
    """Jobs from ``start`` down to the first of ``goals`` along dependencies, or None."""
    postgres = session.get_bind().dialect.name == "postgresql"
    below = _below(start, edges=False, postgres=postgres)
    reached = session.scalar(select(below.c.id).where(below.c.id.in_(goals)).limit(1))
    if reached is None:
        return None
    # A cycle: only now read the dependencies below ``start``, to name its jobs.
    edges = _below(start, edges=True, postgres=postgres)
    parents: dict[str, str] = {}
    for job, parent in session.execute(select(edges.c.id, edges.c.parent)):
        parents.setdefault(job, parent)
    path = [reached]
    while path[-1] != start and len(path) <= len(parents):
        path.append(parents[path[-1]])
    return list(reversed(path))


def _below(start: str, *, edges: bool, postgres: bool) -> CTE:
    """The jobs below ``start`` (``id``), with the job above each (``parent``) if ``edges``:
    one recursive query.

    ``UNION`` (not ``UNION ALL``) visits each job (or dependency) once, so the query costs
    the size of the graph below ``start``, not its number of paths, and ends even on a
    graph that already has a cycle.
    """
    columns = [Dependency.downstream_id.label("id")]
    if edges:
        columns.append(Dependency.upstream_id.label("parent"))
    below = select(*columns).where(Dependency.upstream_id == start).cte("below", recursive=True)
    step = aliased(Dependency)
    children = select(step.downstream_id.label("id"), step.upstream_id.label("parent")).where(
        step.upstream_id == below.c.id
    )
    if postgres:
        # A LATERAL subquery (kept apart by OFFSET 0) is looked up through the index for
        # each job reached. A plain join leaves the choice to the planner, which without
        # statistics (a new or restored database) hashes the whole table at every level:
        # minutes for a chain of 10,000 jobs.
        lateral = children.offset(0).lateral("children")
        recursive = select(lateral.c.id, *([lateral.c.parent] if edges else []))
        recursive = recursive.select_from(below).join(lateral, true())
    else:
        recursive = children.with_only_columns(*children.selected_columns[: len(columns)])
    return below.union(recursive)


#: Jobs named at each end of a cycle in an error message; the middle of a longer one is
#: counted, not listed.
CYCLE_ENDS = 4


def _names(session: Session, job_ids: list[str]) -> list[str]:
    if len(job_ids) > 2 * CYCLE_ENDS + 1:
        hidden = len(job_ids) - 2 * CYCLE_ENDS
        head, tail = job_ids[:CYCLE_ENDS], job_ids[-CYCLE_ENDS:]
        return [*_names(session, head), f"… {hidden} more jobs …", *_names(session, tail)]
    names = dict(session.execute(select(Job.id, Job.name).where(Job.id.in_(job_ids))).all())
    return [f"{names.get(i)} ({i})" for i in job_ids]


#: First key of the per-owner graph locks (PostgreSQL advisory locks with two keys).
GRAPH_LOCK_SPACE = int.from_bytes(b"jsdg", "big")


def lock_graph(session: Session, owner: str) -> None:
    """Hold ``owner``'s dependency graph until the transaction ends, so that the cycle check
    and the change it allows are not interleaved with another change of the graph.

    SQLite write transactions already exclude each other (``BEGIN IMMEDIATE``); PostgreSQL
    takes a transaction-level advisory lock per owner (dependencies never cross owners).
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            select(
                func.pg_advisory_xact_lock(literal(GRAPH_LOCK_SPACE, Integer), func.hashtext(owner))
            )
        )


def sync_dependencies(session: Session, job: Job) -> None:
    """Make the dependency rows of ``job`` match its trigger."""
    session.execute(delete(Dependency).where(Dependency.downstream_id == job.id))
    condition = job.trigger.get("condition", "success")
    for upstream in upstream_ids(job.trigger):
        session.add(Dependency(downstream_id=job.id, upstream_id=upstream, condition=condition))


def dependents(session: Session, job_id: str) -> list[Job]:
    """Jobs that run after ``job_id``."""
    ids = session.scalars(select(Dependency.downstream_id).where(Dependency.upstream_id == job_id))
    return [job for i in ids if (job := session.get(Job, i)) is not None]


def detach_upstream(session: Session, job_id: str) -> None:
    """Remove a deleted job from the triggers of the jobs that ran after it."""
    for downstream in dependents(session, job_id):
        remaining = [j for j in upstream_ids(downstream.trigger) if j != job_id]
        if remaining:
            downstream.trigger = {**downstream.trigger, "jobs": remaining}
        else:
            downstream.trigger = {"kind": "manual"}
            downstream.trigger_kind = "manual"
        downstream.version += 1


def event_jobs(session: Session, owner: str, event: str) -> list[Job]:
    """Active jobs of ``owner`` that fire on ``event``."""
    jobs = session.scalars(
        select(Job).where(Job.owner == owner, Job.trigger_kind == "event", Job.status == "active")
    )
    return [job for job in jobs if job.trigger.get("event") == event]

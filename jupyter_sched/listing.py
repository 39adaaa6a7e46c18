"""Jobs and runs as ``jupyter sched jobs list`` and ``runs list`` show them, read with
SQLAlchemy Core.

A listing shows a few columns of each job or run. Reading them through the ORM rows and the API's
pydantic models (what ``--json`` prints) would cost the command far more to import than
to run, so this module names the columns a listing reads (a test checks them against
:mod:`jupyter_sched.models`) and words triggers from their stored form. The conditions of
a listing of jobs, a job's last run and the names of the jobs it follows are built here
once, for this read and for the service's; so are the conditions of a listing of runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Float,
    String,
    Text,
    column,
    func,
    select,
    table,
    text,
    type_coerce,
)

from .access import owned_by
from .columntypes import UTCDateTime
from .storedtriggers import describe_trigger, upstream_ids

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection, ScalarSelect
    from sqlalchemy.orm import Session

    from .db import Database
    from .terminal import JobLine, RunLine

__all__ = [
    "JOBS", "RUNS", "job_conditions", "job_lines", "job_names", "latest_run_ids",
    "run_conditions", "run_lines", "trigger_words",
]  # fmt: skip

#: The columns of the ``jobs`` table a listing reads.
JOBS = table(
    "jobs",
    column("id", String),
    column("name", String),
    column("owner", String),
    column("status", String),
    column("error", Text),
    column("trigger", JSON),
    column("trigger_kind", String),
    column("next_fire_at", UTCDateTime()),
    column("tags", JSON),
)
#: The columns of the ``runs`` table a listing reads.
RUNS = table(
    "runs",
    column("id", String),
    column("job_id", String),
    column("owner", String),
    column("notebook", String),
    column("status", String),
    column("trigger", String),
    column("queued_at", UTCDateTime()),
    column("duration_seconds", Float),
)


def job_conditions(
    jobs: Any,
    owner: str,
    *,
    is_sqlite: bool,
    only_owner: str | None = None,
    status: str | None = None,
    tag: str | None = None,
) -> list[ColumnElement[bool]]:
    """The conditions of a listing of ``owner``'s jobs (see
    :func:`~jupyter_sched.access.owned_by`) with ``status`` and ``tag``; ``jobs`` is
    :data:`JOBS`'s columns or the ORM's ``Job``."""
    conditions = owned_by(jobs.owner, owner, only_owner)
    if status is not None:
        conditions.append(jobs.status == status)
    if tag is not None:
        if is_sqlite:
            conditions.append(
                text(
                    "EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value = :tag)"
                ).bindparams(tag=tag)
            )
        else:
            from sqlalchemy.dialects.postgresql import JSONB  # only on PostgreSQL

            conditions.append(type_coerce(jobs.tags, JSONB).contains([tag]))
    return conditions


def latest_run_ids(job_ids: Any) -> ScalarSelect[Any]:
    """The id of each job's last run (ids sort by creation), for the jobs ``job_ids``
    (a list, or a subquery)."""
    return (
        select(func.max(RUNS.c.id)).where(RUNS.c.job_id.in_(job_ids)).group_by(RUNS.c.job_id)
    ).scalar_subquery()


def job_names(connection: Connection | Session, owner: str, ids: Iterable[str]) -> dict[str, str]:
    """The names of the jobs of ``owner`` among ``ids``, by id."""
    query = select(JOBS.c.id, JOBS.c.name).where(JOBS.c.id.in_(set(ids)), JOBS.c.owner == owner)
    return {job_id: name for job_id, name in connection.execute(query)}


def trigger_words(
    trigger: Mapping[str, Any], kind: str, names: Mapping[str, str] | None = None
) -> str:
    """A stored trigger in words; a stored trigger that cannot be read any more (a
    timezone gone from tzdata, say) is still listed, and said to be so."""
    try:
        return describe_trigger(trigger, names)
    except (KeyError, ValueError, TypeError, AttributeError):
        return f"a {kind} trigger that cannot be read any more"


def job_lines(
    db: Database, owner: str, *, status: str | None = None, tag: str | None = None
) -> list[JobLine]:
    """Every job of ``owner`` with ``status`` and ``tag``, newest first, as a jobs table
    shows it."""
    from .terminal import JobLine  # the table's line; the service needs no CLI module

    conditions = job_conditions(JOBS.c, owner, is_sqlite=db.is_sqlite, status=status, tag=tag)
    columns = JOBS.c
    query = select(
        columns.id, columns.name, columns.status, columns.error, columns.trigger,
        columns.trigger_kind, columns.next_fire_at,
    ).where(*conditions).order_by(columns.id.desc())  # fmt: skip
    listed = select(columns.id).where(*conditions)
    last_runs = select(RUNS.c.job_id, RUNS.c.status).where(RUNS.c.id.in_(latest_run_ids(listed)))
    with db.reaching(), db.engine.connect() as connection:
        rows = connection.execute(query).all()
        last_status = {job_id: run_status for job_id, run_status in connection.execute(last_runs)}
        followed = {job_id for row in rows for job_id in upstream_ids(row.trigger)}
        names = job_names(connection, owner, followed) if followed else {}
    return [
        JobLine(
            id=row.id,
            name=row.name,
            status=row.status,
            trigger_description=trigger_words(row.trigger, row.trigger_kind, names),
            next_fire_at=row.next_fire_at,
            last_run_status=last_status.get(row.id),
            error=row.error,
        )
        for row in rows
    ]


def run_conditions(
    runs: Any,
    owner: str,
    *,
    only_owner: str | None = None,
    job_id: str | None = None,
    status: str | None = None,
) -> list[ColumnElement[bool]]:
    """The conditions of a listing of ``owner``'s runs (see
    :func:`~jupyter_sched.access.owned_by`) of job ``job_id`` with ``status``; ``runs`` is
    :data:`RUNS`'s columns or the ORM's ``Run``."""
    conditions = owned_by(runs.owner, owner, only_owner)
    if job_id is not None:
        conditions.append(runs.job_id == job_id)
    if status is not None:
        conditions.append(runs.status == status)
    return conditions


def run_lines(
    db: Database, owner: str, *, limit: int, job_id: str | None = None, status: str | None = None
) -> list[RunLine]:
    """The ``limit`` newest runs of ``owner``, of job ``job_id`` with ``status``, as a runs
    table shows them."""
    from .terminal import RunLine

    columns = RUNS.c
    query = (
        select(
            columns.id, columns.status, columns.queued_at, columns.duration_seconds,
            columns.trigger, columns.notebook,
        )
        .where(*run_conditions(columns, owner, job_id=job_id, status=status))
        .order_by(columns.id.desc())
        .limit(limit)
    )  # fmt: skip
    with db.reaching(), db.engine.connect() as connection:
        return [RunLine(**row._mapping) for row in connection.execute(query)]

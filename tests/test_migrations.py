"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from jupyter_sched.db import Database, alembic_config
from jupyter_sched.models import Base


def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    assert db.is_current()
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    db.upgrade()  # a second upgrade is a no-op
    db.dispose()


def test_downgrade_to_nothing_and_back(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    with db.engine.begin() as connection:
        config = alembic_config(db_url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not db.is_current()
    db.upgrade()
    assert db.is_current()
    db.dispose()


def test_job_counts_are_backfilled(db_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import Column, MetaData, Table, insert, inspect, select

    from jupyter_sched.lifecycle import new_run
    from jupyter_sched.models import Job, JobCounts, Run

    db = Database(db_url)
    with db.engine.begin() as connection:
        config = alembic_config(db_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    job = {
        "id": "01JOB", "name": "j", "owner": "a", "notebook": "n.ipynb", "parameters": {},
        "trigger": {"kind": "manual"}, "trigger_kind": "manual", "fire_count": 0,
        "status": "active", "misfire": "run_once", "overlap": "allow", "retries": 0,
        "retry_delay_seconds": 1.0, "retry_backoff": 2.0, "priority": 0, "queue": "default",
        "tags": [], "output_formats": ["ipynb"], "notifications": [], "created_at": now,
        "updated_at": now, "version": 1,
    }  # fmt: skip
    with db.engine.begin() as connection:
        connection.execute(insert(Job.__table__).values(**job))
        # the columns of revision 0003 (later revisions add more)
        present = {c["name"] for c in inspect(connection).get_columns("runs")}
        # the table as it was then: the model's defaults of later columns are not written
        then = Table(
            "runs",
            MetaData(),
            *(Column(c.name, c.type) for c in Run.__table__.columns if c.key in present),
        )
        for status in ("succeeded", "succeeded", "failed", "lost", "running"):
            run = new_run(None, now=now, trigger="manual", owner="a", notebook="n.ipynb")
            values = {c.key: getattr(run, c.key) for c in Run.__table__.columns if c.key in present}
            # runs of those days had no logical time unless a schedule fired them
            values.update(job_id="01JOB", status=status, finished_at=now, scheduled_for=None)
            connection.execute(insert(then).values(**values))
    db.upgrade()
    with db.read() as session:
        counts = session.scalars(select(JobCounts)).one()
    assert (counts.succeeded, counts.failed, counts.lost, counts.cancelled) == (2, 1, 1, 0)
    assert counts.last_success_at == now and counts.last_failure_at == now
    db.dispose()


def test_the_schema_check_knows_the_revisions_alembic_knows() -> None:
    from alembic.script import ScriptDirectory

    from jupyter_sched.db import _revisions

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known, heads = _revisions()
    assert known == {revision.revision for revision in scripts.walk_revisions()}
    assert heads == set(scripts.get_heads())

"""jobs, runs and workers

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import jupyter_sched.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("notebook", sa.String(length=1024), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("kernel", sa.String(length=255), nullable=True),
        sa.Column(
            "trigger",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("trigger_kind", sa.String(length=16), nullable=False),
        sa.Column("start_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("max_runs", sa.Integer(), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_fire_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("misfire", sa.String(length=16), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Float(), nullable=False),
        sa.Column("retry_backoff", sa.Float(), nullable=False),
        sa.Column("retry_max_delay_seconds", sa.Float(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "output_formats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_owner"), ["owner"], unique=False)
        batch_op.create_index(
            "ix_jobs_status_next_fire_at", ["status", "next_fire_at"], unique=False
        )
        batch_op.create_index("ix_jobs_trigger_kind", ["trigger_kind"], unique=False)

    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "queues",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("job_id", sa.String(length=26), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("notebook", sa.String(length=1024), nullable=False),
        sa.Column("kernel", sa.String(length=255), nullable=True),
        sa.Column("scheduled_for", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_of", sa.String(length=26), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column(
            "output_formats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("not_before", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queued_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column(
            "cancel_requested_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("error_ename", sa.String(length=255), nullable=True),
        sa.Column("error_evalue", sa.Text(), nullable=True),
        sa.Column("error_cell_index", sa.Integer(), nullable=True),
        sa.Column("input_ref", sa.String(length=1024), nullable=True),
        sa.Column("output_ref", sa.String(length=1024), nullable=True),
        sa.Column("html_ref", sa.String(length=1024), nullable=True),
        sa.Column("log_ref", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_runs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["retry_of"], ["runs.id"], name=op.f("fk_runs_retry_of_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("job_id", "scheduled_for", name=op.f("uq_runs_job_id_scheduled_for")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_job_id_id", ["job_id", "id"], unique=False)
        batch_op.create_index(
            "ix_runs_job_id_status_duration", ["job_id", "status", "duration_seconds"], unique=False
        )
        batch_op.create_index("ix_runs_owner_id", ["owner", "id"], unique=False)
        batch_op.create_index("ix_runs_status_enqueued_at", ["status", "enqueued_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_status_enqueued_at")
        batch_op.drop_index("ix_runs_owner_id")
        batch_op.drop_index("ix_runs_job_id_status_duration")
        batch_op.drop_index("ix_runs_job_id_id")

    op.drop_table("runs")
    op.drop_table("workers")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_trigger_kind")
        batch_op.drop_index("ix_jobs_status_next_fire_at")
        batch_op.drop_index(batch_op.f("ix_jobs_owner"))

    op.drop_table("jobs")

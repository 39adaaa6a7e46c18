"""job counts: finished runs per job and status, kept as runs finish

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupyter_sched.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_counts",
        sa.Column("job_id", sa.String(length=26), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("timed_out", sa.Integer(), nullable=False),
        sa.Column("lost", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column(
            "last_success_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_failure_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_counts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_counts")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_job_id_status_duration"))
        batch_op.create_index("ix_runs_job_id_status_id", ["job_id", "status", "id"], unique=False)

    # Count the history that exists already.
    op.execute(
        """
        INSERT INTO job_counts (job_id, succeeded, failed, timed_out, lost, cancelled, skipped,
                                last_success_at, last_failure_at)
        SELECT job_id,
               SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'timed_out' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END),
               MAX(CASE WHEN status = 'succeeded' THEN finished_at END),
               MAX(CASE WHEN status IN ('failed', 'timed_out', 'lost') THEN finished_at END)
        FROM runs
        WHERE job_id IS NOT NULL
          AND status IN ('succeeded', 'failed', 'timed_out', 'lost', 'cancelled', 'skipped')
        GROUP BY job_id
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_job_id_status_id")
        batch_op.create_index(
            batch_op.f("ix_runs_job_id_status_duration"),
            ["job_id", "status", "duration_seconds"],
            unique=False,
        )

    op.drop_table("job_counts")

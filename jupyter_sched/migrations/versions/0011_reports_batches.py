"""reports: batches, runs' recorded values and batch place, jobs' sweep and checks; a
schedule fire is unique per (job, scheduled_for, batch_index) among schedule runs only

Revision ID: 0011_reports
Revises: 0010_ticker
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jupyter_sched.models

revision: str = "0011_reports"
down_revision: str | None = "0010_ticker"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_FIRE = sa.text("trigger = 'schedule'")


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("job_id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=True),
        sa.Column("created_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_batches_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index(op.f("ix_batches_job_id"), "batches", ["job_id"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep", _JSON, nullable=True))
        batch_op.add_column(sa.Column("max_parallel", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("checks", _JSON, nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("values", _JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("batch_id", sa.String(length=26), nullable=True))
        batch_op.add_column(
            sa.Column("batch_index", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_foreign_key(
            op.f("fk_runs_batch_id_batches"), "batches", ["batch_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(op.f("ix_runs_batch_id"), ["batch_id"], unique=False)
        batch_op.drop_constraint("uq_runs_job_id_scheduled_for", type_="unique")
        batch_op.create_index(
            "uq_runs_schedule_fire",
            ["job_id", "scheduled_for", "batch_index"],
            unique=True,
            sqlite_where=_FIRE,
            postgresql_where=_FIRE,
        )
    # The models give these defaults; the server defaults only filled existing rows.
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("values", server_default=None)
        batch_op.alter_column("batch_index", server_default=None)


def downgrade() -> None:
    # Runs made beside a fire's first run (sweeps) would break the old one-run-per-fire key.
    op.execute("DELETE FROM runs WHERE trigger = 'schedule' AND batch_index > 0")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("uq_runs_schedule_fire")
        batch_op.create_unique_constraint(
            "uq_runs_job_id_scheduled_for", ["job_id", "scheduled_for"]
        )
        batch_op.drop_index(op.f("ix_runs_batch_id"))
        batch_op.drop_constraint(op.f("fk_runs_batch_id_batches"), type_="foreignkey")
        batch_op.drop_column("batch_index")
        batch_op.drop_column("batch_id")
        batch_op.drop_column("values")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("checks")
        batch_op.drop_column("max_parallel")
        batch_op.drop_column("sweep")
    op.drop_index(op.f("ix_batches_job_id"), table_name="batches")
    op.drop_table("batches")

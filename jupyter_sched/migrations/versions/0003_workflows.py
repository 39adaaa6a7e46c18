"""workflows: dependencies, notifications outbox, run chains, per-job retention, webhooks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import jupyter_sched.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dependencies",
        sa.Column("downstream_id", sa.String(length=26), nullable=False),
        sa.Column("upstream_id", sa.String(length=26), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["downstream_id"],
            ["jobs.id"],
            name=op.f("fk_dependencies_downstream_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upstream_id"],
            ["jobs.id"],
            name=op.f("fk_dependencies_upstream_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("downstream_id", "upstream_id", name=op.f("pk_dependencies")),
    )
    with op.batch_alter_table("dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dependencies_upstream_id"), ["upstream_id"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column(
            "target",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("delivered_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", jupyter_sched.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_notifications_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_pending",
            ["delivered_at", "failed_at", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_notifications_run_id"), ["run_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "notifications",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.add_column(sa.Column("retention_days", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("retention_runs", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("webhook_token_hash", sa.String(length=64), nullable=True))

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "caused_by",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.create_index("ix_runs_chain_id_job_id", ["chain_id", "job_id"], unique=False)
        batch_op.create_index(
            "uq_runs_dependency_job_id_chain_id",
            ["job_id", "chain_id"],
            unique=True,
            sqlite_where=sa.text("trigger = 'dependency'"),
            postgresql_where=sa.text("trigger = 'dependency'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_runs_dependency_job_id_chain_id",
            sqlite_where=sa.text("trigger = 'dependency'"),
            postgresql_where=sa.text("trigger = 'dependency'"),
        )
        batch_op.drop_index("ix_runs_chain_id_job_id")
        batch_op.drop_column("caused_by")
        batch_op.drop_column("chain_id")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("webhook_token_hash")
        batch_op.drop_column("retention_runs")
        batch_op.drop_column("retention_days")
        batch_op.drop_column("notifications")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_run_id"))
        batch_op.drop_index("ix_notifications_pending")

    op.drop_table("notifications")
    with op.batch_alter_table("dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependencies_upstream_id"))

    op.drop_table("dependencies")

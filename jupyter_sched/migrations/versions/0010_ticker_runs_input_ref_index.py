"""runs: index input_ref, so that the sweep of stored notebook versions finds the ones
still in use without scanning the history

Revision ID: 0010_ticker
Revises: 0009_outputs
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_ticker"
down_revision: str | None = "0009_outputs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_input_ref", "runs", ["input_ref"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_input_ref", table_name="runs")

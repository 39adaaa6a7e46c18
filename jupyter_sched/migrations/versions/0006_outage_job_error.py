"""jobs: error, why a job the ticker could not fire was set aside (status 'error')

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    # A job set aside goes back to being paused: the status 'error' is unknown before.
    op.execute("UPDATE jobs SET status = 'paused' WHERE status = 'error'")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("error")

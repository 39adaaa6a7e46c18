"""jobs, runs: root_dir, the server root a notebook path is relative to

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows keep NULL: they go on resolving against the reading process's root,
    # as before.
    for table in ("jobs", "runs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("root_dir", sa.String(length=4096), nullable=True))


def downgrade() -> None:
    for table in ("runs", "jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("root_dir")

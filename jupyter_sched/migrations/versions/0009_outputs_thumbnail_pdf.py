"""outputs: a run's thumbnail and PDF rendering

Revision ID: 0009_outputs
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_outputs"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("thumbnail_ref", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("pdf_ref", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pdf_ref")
        batch.drop_column("thumbnail_ref")

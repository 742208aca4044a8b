"""A compiled form per version: the faster artifact served in place of the original, and its report.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("compiled_format", sa.String(64), nullable=True))
        batch.add_column(sa.Column("compiled_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("compiled_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("compile_report", sa.JSON(), nullable=True))
        batch.create_index("ix_model_versions_compiled_sha256", ["compiled_sha256"])


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_index("ix_model_versions_compiled_sha256")
        batch.drop_column("compile_report")
        batch.drop_column("compiled_size")
        batch.drop_column("compiled_sha256")
        batch.drop_column("compiled_format")

"""A per-model version counter, so numbers are never reused even after every version was deleted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("last_version", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE models SET last_version = COALESCE("
        "(SELECT MAX(version) FROM model_versions WHERE model_versions.model_id = models.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("last_version")

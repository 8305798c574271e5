"""Quotas: byte and object limits on workspaces, users (everything they own) and roots.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("workspaces", "users", "roots")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("max_bytes", sa.BigInteger, nullable=True))
        op.add_column(table, sa.Column("max_objects", sa.BigInteger, nullable=True))
        op.create_check_constraint(f"{table}_quota_non_negative", table,
                                   "(max_bytes IS NULL OR max_bytes >= 0) AND (max_objects IS NULL OR max_objects >= 0)")


def downgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"{table}_quota_non_negative", table)
        op.drop_column(table, "max_objects")
        op.drop_column(table, "max_bytes")

"""Audit trail: one row per authorization decision the proxy reported on the ``wio:audit`` stream.

Rows name users, keys and workspaces by value, not by foreign key: the trail outlives what it
mentions. ``stream_id`` (the Redis Stream entry id) makes a re-delivered entry a no-op.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("stream_id", sa.String(48), nullable=False, unique=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.Text, nullable=False, server_default=""),
        sa.Column("username", sa.Text, nullable=False, server_default=""),
        sa.Column("access_key", sa.Text, nullable=False, server_default=""),
        sa.Column("workspace", sa.Text, nullable=False, server_default=""),
        sa.Column("operation", sa.Text, nullable=False, server_default=""),
        sa.Column("key", sa.Text, nullable=False, server_default=""),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bytes_in", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_out", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("client", sa.Text, nullable=False, server_default=""),
        sa.Column("duration_ms", sa.Float, nullable=False, server_default="0"),
    )
    # The API's queries: everything by time, one workspace by time, one user by time.
    op.create_index("ix_audit_log_time", "audit_log", ["time"])
    op.create_index("ix_audit_log_workspace_time", "audit_log", ["workspace", "time"])
    op.create_index("ix_audit_log_username_time", "audit_log", ["username", "time"])


def downgrade() -> None:
    op.drop_table("audit_log")

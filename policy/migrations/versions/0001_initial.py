"""Initial schema: users, groups, keys, nodes, roots, workspaces, shares.

Revision ID: 0001
Revises:
"""
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _owner(name: str = "owner_id", nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.String(254)),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        _owner(),
        _created_at(),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "access_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("access_key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_enc", sa.Text, nullable=False),
        _owner("user_id"),
        sa.Column("name", sa.String(128)),
        sa.Column("session_token_hash", sa.String(64)),
        sa.Column("scope", JSONB),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        _created_at(),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("access_key", sa.Text, nullable=False),
        sa.Column("secret_enc", sa.Text, nullable=False),
        _owner(),
        _created_at(),
    )
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("prefix", sa.Text, nullable=False, server_default=""),
        sa.Column("type", sa.String(16), nullable=False),
        _owner(),
        _created_at(),
        sa.CheckConstraint("type in ('private', 'public', 'unmanaged')", name="root_type"),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("root_id", sa.Integer, sa.ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        _owner(),
        sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
    )
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        _owner("user_id", nullable=True),
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE")),
        sa.Column("permission", sa.String(8), nullable=False),
        sa.Column("prefix", sa.Text, nullable=False, server_default=""),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        _owner("created_by_id"),
        _created_at(),
        sa.CheckConstraint("permission in ('read', 'write', 'admin')", name="share_permission"),
        sa.CheckConstraint("(user_id is null) <> (group_id is null)", name="share_one_grantee"),
    )
    op.create_index("ix_shares_workspace", "shares", ["workspace_id"])
    op.create_index("ix_access_keys_user", "access_keys", ["user_id"])


def downgrade() -> None:
    for table in ("shares", "workspaces", "roots", "nodes", "access_keys", "group_members", "groups", "users"):
        op.drop_table(table)

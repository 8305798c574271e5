"""Keys minted from a key (STS AssumeRole) record their parent, so deleting the parent revokes them.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("access_keys", sa.Column("parent_id", sa.Integer,
                                           sa.ForeignKey("access_keys.id", ondelete="CASCADE"), nullable=True))
    op.create_index("ix_access_keys_parent", "access_keys", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_access_keys_parent", "access_keys")
    op.drop_column("access_keys", "parent_id")

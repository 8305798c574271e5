"""The projection's epoch: one counter that every admin mutation increments in its transaction and
writes to Redis (``wio:meta epoch``) together with the change it projects. A Redis server whose epoch
differs from PostgreSQL's has lost (or gained) a change: the API rebuilds its projection before the
proxies may trust it (policy/projection.py, "Failover"). ``projection_log`` names what each epoch
changed, so a server that lost the last few changes is repaired by recomputing just those entities.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projection_state",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"),
        sa.CheckConstraint("id = 1", name="projection_state_single_row"),
    )
    op.execute("INSERT INTO projection_state (id, epoch) VALUES (1, 0)")
    op.create_table(
        "projection_log",
        sa.Column("epoch", sa.BigInteger, primary_key=True),
        sa.Column("change", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("projection_log")
    op.drop_table("projection_state")

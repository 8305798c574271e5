"""Single sign-on: users linked to an OpenID provider by (issuer, subject); provider-managed memberships.

- ``users.oidc_issuer`` / ``users.oidc_subject``: the identity a just-in-time user was created for
  (unique together); the link is never made by username. ``password_hash`` becomes nullable: such users
  have no wio password (login with a password fails in constant time, as for an unknown name).
- ``group_members.source``: ``wio`` (added through the API) or ``oidc`` (from the provider's groups
  claim). A sync adds and removes only ``oidc`` rows, so wio-managed memberships are never touched.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("oidc_issuer", sa.Text, nullable=True))
    op.add_column("users", sa.Column("oidc_subject", sa.Text, nullable=True))
    op.create_unique_constraint("uq_users_oidc_identity", "users", ["oidc_issuer", "oidc_subject"])
    op.alter_column("users", "password_hash", existing_type=sa.Text, nullable=True)
    op.add_column("group_members", sa.Column("source", sa.String(8), nullable=False, server_default="wio"))
    op.create_check_constraint("group_member_source", "group_members", "source in ('wio', 'oidc')")


def downgrade() -> None:
    op.drop_constraint("group_member_source", "group_members", type_="check")
    op.drop_column("group_members", "source")
    op.execute("UPDATE users SET password_hash = '!' WHERE password_hash IS NULL")
    op.alter_column("users", "password_hash", existing_type=sa.Text, nullable=False)
    op.drop_constraint("uq_users_oidc_identity", "users", type_="unique")
    op.drop_column("users", "oidc_subject")
    op.drop_column("users", "oidc_issuer")

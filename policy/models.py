"""The data model. PostgreSQL is the source of truth; Redis holds a projection of it (projection.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String,
                        Text, UniqueConstraint, func, false)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["Base", "User", "Group", "GroupMember", "AccessKey", "Node", "Root", "Workspace", "Share",
           "PERMISSIONS", "ROOT_TYPES"]

PERMISSIONS = ("read", "write", "admin")
ROOT_TYPES = ("private", "public", "unmanaged")


class Base(DeclarativeBase):
    # Server-side defaults (created_at) come back with the INSERT (RETURNING), so an object the API
    # just created can be serialised without another query.
    __mapper_args__ = {"eager_defaults": True}


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    email: Mapped[str | None] = mapped_column(String(254))
    # None for users created through single sign-on: they have no wio password.
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_objects: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now_column()
    # The OpenID provider identity this user was created for (unique together; see admin_api/oidc.py).
    oidc_issuer: Mapped[str | None] = mapped_column(Text)
    oidc_subject: Mapped[str | None] = mapped_column(Text)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = _now_column()
    owner: Mapped[User] = relationship(lazy="joined")


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (CheckConstraint("source in ('wio', 'oidc')", name="group_member_source"),)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # "wio" (added through the API) or "oidc" (from the provider's groups claim; a sync touches only these).
    source: Mapped[str] = mapped_column(String(8), nullable=False, default="wio", server_default="wio")


class AccessKey(Base):
    __tablename__ = "access_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    access_key_id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    secret_enc: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    # the key this one was minted from (STS AssumeRole): deleting the parent deletes it
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("access_keys.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(128))
    session_token_hash: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now_column()
    user: Mapped[User] = relationship(lazy="joined")


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    endpoint: Mapped[str] = mapped_column(Text, nullable=False)
    region: Mapped[str] = mapped_column(String(64), nullable=False, default="us-east-1")
    access_key: Mapped[str] = mapped_column(Text, nullable=False)
    secret_enc: Mapped[str] = mapped_column(Text, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = _now_column()
    owner: Mapped[User] = relationship(lazy="joined")


class Root(Base):
    __tablename__ = "roots"
    __table_args__ = (CheckConstraint("type in ('private', 'public', 'unmanaged')", name="root_type"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False)
    bucket: Mapped[str] = mapped_column(String(63), nullable=False)
    prefix: Mapped[str] = mapped_column(Text, nullable=False, default="")
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_objects: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now_column()
    node: Mapped[Node] = relationship(lazy="joined")


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    root_id: Mapped[int] = mapped_column(ForeignKey("roots.id", ondelete="CASCADE"), nullable=False)
    # Physical prefix inside the root's bucket, always ending in "/".
    prefix: Mapped[str] = mapped_column(Text, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    public: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)   # every authenticated user reads
    # Unsigned requests may read (S3's public-read, AllUsers READ); only served when the operator allows
    # anonymous reads (WIO_ANONYMOUS_READS). Always set together with public (docs/design.md).
    anonymous_read: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_objects: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now_column()
    root: Mapped[Root] = relationship(lazy="joined")
    owner: Mapped[User] = relationship(lazy="joined")


class Share(Base):
    __tablename__ = "shares"
    __table_args__ = (
        CheckConstraint("permission in ('read', 'write', 'admin')", name="share_permission"),
        CheckConstraint("(user_id is null) <> (group_id is null)", name="share_one_grantee"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    permission: Mapped[str] = mapped_column(String(8), nullable=False)
    prefix: Mapped[str] = mapped_column(Text, nullable=False, default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = _now_column()
    workspace: Mapped[Workspace] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(foreign_keys=[user_id], lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")

    @property
    def grantee(self) -> str:
        """The share-list field this share is in: ``u:<user>`` or ``g:<group>``."""
        if self.user is not None:
            return f"u:{self.user.username}"
        if self.group is not None:
            return f"g:{self.group.name}"
        raise ValueError(f"share {self.id} has neither a user nor a group")

"""Database engine, sessions and migrations (Alembic, run programmatically)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["create_engine", "sessionmaker_for", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str, *, statement_timeout: float = 60.0, connect_timeout: float = 5.0) -> AsyncEngine:
    """Every wait on PostgreSQL has a deadline: connecting, getting a pooled connection, each statement
    (asyncpg's client-side ``command_timeout``: a server that stopped answering is given up on)."""
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=connect_timeout,
                               connect_args={"timeout": connect_timeout, "command_timeout": statement_timeout})


def sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    cfg = _alembic_config()

    def upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        # One migrator at a time when several processes start together.
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7270101)")
        await conn.run_sync(upgrade)

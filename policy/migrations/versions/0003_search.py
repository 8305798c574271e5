"""Search index (the PostgreSQL backend of indexer/): object metadata, delete tombstones, crawl state.

Keys and workspace names use the "C" collation so that ordering and range comparisons are by UTF-8
bytes, exactly S3's listing order; the crawler reconciles listing pages against key ranges.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE search_objects (
            workspace text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            size bigint NOT NULL,
            etag text NOT NULL DEFAULT '',
            content_type text NOT NULL DEFAULT '',
            extension text NOT NULL DEFAULT '',
            last_modified timestamptz NOT NULL,
            -- when the indexed state was observed (event time or crawl time): older writes are ignored
            version double precision NOT NULL,
            terms tsvector NOT NULL,
            PRIMARY KEY (workspace, key)
        )""")
    op.execute("CREATE INDEX search_objects_terms ON search_objects USING gin (terms)")
    op.execute("""
        CREATE TABLE search_tombstones (
            workspace text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            version double precision NOT NULL,
            PRIMARY KEY (workspace, key)
        )""")
    op.execute("CREATE INDEX search_tombstones_version ON search_tombstones (version)")
    op.execute("""
        CREATE TABLE search_crawls (
            workspace text COLLATE "C" PRIMARY KEY,
            requested_at timestamptz,
            started_at timestamptz,
            finished_at timestamptz,
            after_key text COLLATE "C",
            listed bigint NOT NULL DEFAULT 0,
            changed bigint NOT NULL DEFAULT 0,
            removed bigint NOT NULL DEFAULT 0,
            error text
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE search_crawls")
    op.execute("DROP TABLE search_tombstones")
    op.execute("DROP TABLE search_objects")

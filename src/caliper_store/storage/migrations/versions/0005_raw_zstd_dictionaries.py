"""Raw events as zstd frames with trained dictionaries, and the table of those dictionaries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

A raw event of about 2,000 bytes becomes a frame of about 180 (storage/compression.py). Only
columns are added here, which both backends do without rewriting the table: rows already
stored keep their JSON in ``raw`` (``raw_dictionary`` NULL) and read back as before, until
``caliper-store migrate`` converts them in resumable batches (storage/convert.py).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "raw_dictionaries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("sample_events", sa.Integer, nullable=False),
        sa.Column("sample_bytes", sa.BigInteger, nullable=False),
        sa.Column("compressed_bytes", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.add_column("events", sa.Column("raw_zstd", sa.LargeBinary))
    op.add_column("events", sa.Column("raw_dictionary", sa.Integer))
    if op.get_bind().dialect.name == "postgresql":
        # A frame is already compressed: TOAST would only spend CPU trying again.
        op.execute("ALTER TABLE events ALTER COLUMN raw_zstd SET STORAGE EXTERNAL")


def downgrade() -> None:
    # A compressed row has no plain JSON left to keep: refuse rather than lose it.
    bind = op.get_bind()
    left = bind.scalar(sa.text("SELECT count(*) FROM events WHERE raw_dictionary IS NOT NULL"))
    if left:
        raise RuntimeError(
            f"{left} events are stored compressed; downgrading would lose their raw JSON"
        )
    with op.batch_alter_table("events") as batch:
        batch.drop_column("raw_dictionary")
        batch.drop_column("raw_zstd")
    op.drop_table("raw_dictionaries")

"""The logins actors were seen with, so that a person can be found by a login.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

`actor_logins` (storage/schema.py) pairs each login a producer sent (Canvas's `user_login`)
with the actor that carried it and the newest eventTime that did. Commits keep it; `caliper-store
migrate` fills it from the stored events' raw JSON right after this revision (a progress bar:
it reads every event).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Times as events keeps them: integer microseconds on SQLite, timestamptz on PostgreSQL.
TIME = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "actor_logins",
        sa.Column("login", sa.Text, primary_key=True),
        sa.Column("actor_id", sa.Text, primary_key=True),
        sa.Column("last_event_time", TIME, nullable=False),
    )
    op.create_index("actor_logins_actor", "actor_logins", ["actor_id"])


def downgrade() -> None:
    op.drop_index("actor_logins_actor", "actor_logins")
    op.drop_table("actor_logins")

"""Events, and the (source, type) pairs of events an account has used.

Events are read newest first, a page at a time, per user or per profile. The indexes end in
(created_at, id), the order of the pages, so the newest page of a person is an index range read
of `page[size]` entries whatever the number of events behind it. The id, a ULID, breaks ties
between events of the same created_at.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("profile_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("properties", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "id", name="events_pkey"),
        # The service deletes a profile's events with the profile; the key makes sure no
        # other path can leave events behind.
        sa.ForeignKeyConstraint(
            ["account_id", "profile_id"], ["profiles.account_id", "profiles.id"],
            name="events_profile_fkey", ondelete="CASCADE",
        ),
    )
    # Pages of a user's and of a profile's events, and the deletion of a profile's events.
    op.create_index("events_user_time", "events", ["account_id", "user_id", "created_at", "id"])
    op.create_index(
        "events_profile_time", "events", ["account_id", "profile_id", "created_at", "id"]
    )
    # Pages of a user's events of one source and type (filter[source] with filter[type]).
    op.create_index(
        "events_user_kind_time", "events",
        ["account_id", "user_id", "source", "type", "created_at", "id"],
    )
    op.create_table(
        "event_kinds",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "source", "type", name="event_kinds_pkey"),
    )


def downgrade() -> None:
    op.drop_table("event_kinds")
    op.drop_table("events")

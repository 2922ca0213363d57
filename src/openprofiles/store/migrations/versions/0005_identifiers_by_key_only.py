"""Profile identifiers are found by their key only.

The index of `profile_identifiers` by profile served one statement: deleting a profile's
identifiers. A profile keeps the list of its identifiers itself, so they are deleted by their
keys instead, and the index goes: every identifier written no longer updates it, and a large
database is a sixth smaller.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("profile_identifiers_profile", table_name="profile_identifiers")


def downgrade() -> None:
    op.create_index("profile_identifiers_profile", "profile_identifiers", ["account_id", "profile_id"])

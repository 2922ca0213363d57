"""A version of each account's credentials, raised by every change that can end a sign-in.

Signing in with a token reads the token, its user and its account on every request. A server
keeps the outcome of a successful sign-in and reuses it while the account's version has not
moved: one read of one row of `accounts` instead of the join. Revoking a token, suspending,
restoring or deleting a user and switching password access raise the version in the same
transaction as the change, so a sign-in kept from before it is never reused after it commits.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("credentials_version", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("credentials_version")

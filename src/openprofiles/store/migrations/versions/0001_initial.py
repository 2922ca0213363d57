"""Accounts, users, identities, API tokens, profiles and their identifiers.

Every table carries `account_id`, and it leads every primary and unique key, so that the
schema can be distributed by account without a rewrite.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQUENCES = ("users_id_seq", "user_identities_id_seq", "api_tokens_id_seq")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("subdomain", sa.Text, nullable=True),
        sa.Column("password_access", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("subdomain", name="accounts_subdomain_key"),
    )
    op.create_table(
        "users",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("people_access", sa.Text, nullable=False, server_default="full"),
        sa.Column("external_id", sa.Text, nullable=True),
        sa.Column("external_id_key", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("suspended", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "id", name="users_pkey"),
        sa.UniqueConstraint("account_id", "external_id_key", name="users_external_id_key"),
    )
    op.create_table(
        "user_identities",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("match_type", sa.Text, nullable=False),
        sa.Column("match_value", sa.Text, nullable=False),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "id", name="user_identities_pkey"),
        sa.UniqueConstraint(
            "account_id", "match_type", "match_value", name="user_identities_match_key"
        ),
    )
    op.create_index("user_identities_user", "user_identities", ["account_id", "user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("account_id", "id", name="api_tokens_pkey"),
        sa.UniqueConstraint("account_id", "token_hash", name="api_tokens_hash_key"),
    )
    op.create_table(
        "profiles",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("identifiers", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "id", name="profiles_pkey"),
    )
    op.create_index("profiles_user", "profiles", ["account_id", "user_id", "created_at"])
    # One identifier belongs to at most one profile of a source and type: this key decides
    # races between concurrent creates, and serves lookups by identifier query.
    op.create_table(
        "profile_identifiers",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("profile_type", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("profile_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "source", "profile_type", "type", "value", name="profile_identifiers_pkey"
        ),
    )
    op.create_index("profile_identifiers_profile", "profile_identifiers", ["account_id", "profile_id"])
    op.create_table(
        "profile_kinds",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "source", "type", name="profile_kinds_pkey"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for name in _SEQUENCES:
            op.execute(f"CREATE SEQUENCE {name}")
    op.execute("INSERT INTO accounts (id, subdomain, password_access, created_at) VALUES (1, NULL, false, 0)")


def downgrade() -> None:
    for table in (
        "profile_kinds", "profile_identifiers", "profiles", "api_tokens", "user_identities",
        "users", "accounts",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        for name in _SEQUENCES:
            op.execute(f"DROP SEQUENCE {name}")

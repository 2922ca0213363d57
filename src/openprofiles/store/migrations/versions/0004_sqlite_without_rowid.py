"""SQLite: the tables read and written by key on every request are stored by their key.

An SQLite table whose primary key is not a single integer keeps its rows in a b-tree by a
hidden rowid and its key in a second b-tree beside it: a lookup by key walks both, and an
insert writes both. `WITHOUT ROWID` stores each row in the b-tree of its key, which halves
the pages that reading a profile by id touches (and an identifier query's, through
`profile_identifiers`), and takes a b-tree off every insert into these four tables. On a
database larger than the page cache, each page saved is a read from the file saved.

Each table is rebuilt from its own definition, with its rows in key order and its indexes
made again. PostgreSQL stores tables differently and is left as it is.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("profiles", "profile_identifiers", "users", "user_identities")
_SUFFIX = " WITHOUT ROWID"


def _rebuild(table: str, *, without_rowid: bool) -> None:
    bind = op.get_bind()
    create = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    indexes = [row[0] for row in bind.exec_driver_sql(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,),
    )]
    key = [row[0] for row in bind.exec_driver_sql(
        "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,)
    )]
    body = create[create.index("("):].rstrip()
    if body.upper().endswith(_SUFFIX.strip()):
        body = body[: -len(_SUFFIX.strip())].rstrip()
    if without_rowid:
        body += _SUFFIX
    rebuilt = f"{table}_rebuilt"
    op.execute(f"CREATE TABLE {rebuilt} {body}")
    op.execute(f"INSERT INTO {rebuilt} SELECT * FROM {table} ORDER BY {', '.join(key)}")
    # Foreign keys are off on the migration's connection, so the drop leaves the events that
    # point at `profiles` alone, and the rename gives them their table back.
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {rebuilt} RENAME TO {table}")
    for index in indexes:
        op.execute(index)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        _rebuild(table, without_rowid=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        _rebuild(table, without_rowid=False)

"""Failures of the store that the service layer reacts to, independent of the engine."""


class RetryableConflict(Exception):
    """A concurrent transaction won a race (unique key, serialisation, lock): run the unit again."""


class StoreUnavailable(Exception):
    """The database cannot be reached or refuses work."""


def is_unavailable(error: BaseException) -> bool:
    """Whether a driver error that escaped a store's own mapping means the database is away
    (a SQLite file locked past the busy timeout, or unreadable)."""
    import sqlite3

    return isinstance(error, StoreUnavailable | sqlite3.OperationalError)

"""Failures of the store that the service layer reacts to, independent of the engine."""


class RetryableConflict(Exception):
    """A concurrent transaction won a race (unique key, serialisation, lock): run the unit again."""


class StoreUnavailable(Exception):
    """The database cannot be reached or refuses work."""

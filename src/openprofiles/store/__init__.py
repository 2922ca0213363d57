"""Persistence: the schema, its migrations, and one backend per database engine."""

from .base import Store, Transaction
from .errors import RetryableConflict, StoreUnavailable
from .factory import open_store

__all__ = ["Store", "Transaction", "RetryableConflict", "StoreUnavailable", "open_store"]

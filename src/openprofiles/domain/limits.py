"""The limits of the API (RULES §1, §5, §10), with the configurable ones in one place."""

from __future__ import annotations

from dataclasses import dataclass

MAX_SOURCE_LENGTH = 40
MAX_TYPE_LENGTH = 40
MAX_IDENTIFIERS = 20
MAX_ATTRIBUTES_BYTES = 64 * 1024
# Objects and arrays nest at most this deep in attributes, so that decoding, merging and
# encoding them never meet the interpreter's recursion limit.
MAX_ATTRIBUTES_DEPTH = 100
# An identifier value is part of a database key, and PostgreSQL refuses key entries over
# about 2.7 kB: 512 characters stay under that even at four UTF-8 bytes each, beside the
# longest source, type and identifier type in the same key.
MAX_IDENTIFIER_VALUE_LENGTH = 512
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_profiles_per_user: int = 100
    max_sources: int = 50
    max_types: int = 2500

"""Use cases: one function per operation, each one transaction through the store."""

"""Pure rules of the Profiles API: no I/O, no web framework, no database."""

"""openprofiles: a self-hostable server for the Sunshine Profiles API."""

__version__ = "0.1.0"

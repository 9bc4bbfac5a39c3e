"""Exceptions shared across apps that edges turn into one-line messages (no Django imports)."""


class EnvironmentMismatch(Exception):
    """The database belongs to another environment. ``str()`` is one clear line."""

"""Backup failures. ``str()`` is always one line fit for the CLI's stderr."""

from __future__ import annotations


class BackupError(Exception):
    """Base of every backup failure."""


class BackupNotFound(BackupError):
    """No complete backup with that id on the target."""


class BackupCorrupt(BackupError):
    """A chunk or the manifest failed authentication, or the data is truncated."""


class BackupRefused(BackupError):
    """The operation is not allowed (wrong environment, destination exists, no consent)."""


class BackupTargetError(BackupError):
    """The backup target could not be reached or refused the operation."""

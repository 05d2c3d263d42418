"""Typed errors with one-line messages a user can act on.

The CLI prints ``str(error)`` and exits non-zero; it never shows a traceback for these.
"""


class WorkstationError(Exception):
    """Base class: a problem the user can understand and fix."""


class InputError(WorkstationError):
    """A file cannot be read as a scan (truncated, not an image, empty, absurd size...)."""


class ModelError(WorkstationError):
    """A model is missing, does not match its manifest, or cannot run."""

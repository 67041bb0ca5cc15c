"""Errors a user can fix: bad options, foreign or damaged files.

The CLI prints these as one line (``pdekit: error: ...``) and exits with code 2; library callers
catch them as ordinary ``ValueError``.
"""

from __future__ import annotations

__all__ = ["PdekitUserError", "DatasetError"]


class PdekitUserError(ValueError):
    """A problem with the user's input (an option value, a path, a config file)."""


class DatasetError(PdekitUserError):
    """A folder or file that is not a (valid) pdekit dataset, or that does not match a request."""

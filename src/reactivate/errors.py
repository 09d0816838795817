"""Exception and warning classes of the reactivate library.

Every error the library raises on bad input is a :class:`ReactivateError`,
which is a :class:`ValueError`, so callers that already catch ``ValueError``
keep working. Legal but suspicious situations warn with
:class:`ReactivateWarning`, which can be filtered on its own.
"""

from __future__ import annotations

__all__ = [
    "ReactivateError",
    "ReactivateWarning",
    "ReplacementError",
    "CheckpointError",
]


class ReactivateError(ValueError):
    """Base class of the errors reactivate raises on invalid input."""


class ReactivateWarning(UserWarning):
    """Warning for legal settings that probably do not do what was intended."""


class ReplacementError(ReactivateError):
    """A replacement of activations cannot be planned, applied or reapplied."""


class CheckpointError(ReactivateError):
    """A checkpoint or adapter file is invalid or does not fit the model."""

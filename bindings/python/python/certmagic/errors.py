"""The exception tree: every error of the library is a ``certmagic.Error``.

Attributes on every instance: ``kind`` (a stable name such as ``"acme"``), ``field`` (the refused
config field, for ``ConfigError``), and for CA errors ``problem_type``, ``detail`` and ``status``
(the CA's problem document). An exception raised by your callback is the ``__cause__``.
"""

from __future__ import annotations

import builtins
from typing import Optional

__all__ = [
    "Error",
    "ConfigError",
    "InvalidNameError",
    "StorageError",
    "NotFoundError",
    "CorruptError",
    "AcmeError",
    "ChallengeError",
    "CertificateError",
    "TimeoutError",
    "CancelledError",
    "AbortedError",
    "ShutDownError",
    "ReentrantError",
    "WrongProcessError",
    "InternalError",
]


class Error(Exception):
    """Base class of every certmagic error."""

    kind: str = "internal"
    field: Optional[str] = None
    problem_type: Optional[str] = None
    detail: Optional[str] = None
    status: Optional[int] = None


class ConfigError(Error, ValueError):
    """A configuration value was refused; ``field`` names it."""


class InvalidNameError(Error, ValueError):
    """A name cannot have a certificate."""


class StorageError(Error):
    """The storage failed (I/O, permissions, a storage method that raised)."""


class NotFoundError(StorageError, KeyError):
    """Nothing stored under the key, or no certificate for the name. Storage methods may raise
    it (or ``KeyError``, ``FileNotFoundError``) for a missing key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class CorruptError(StorageError, ValueError):
    """Stored (or given) content could not be decoded."""


class AcmeError(Error):
    """The ACME CA refused (see ``problem_type`` and ``detail``) or could not be reached."""


class ChallengeError(AcmeError):
    """No challenge could be solved for a name."""


class CertificateError(Error, ValueError):
    """A certificate or key is malformed, or they do not match."""


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - the library's own timeout
    """An operation ran out of time."""


class CancelledError(Error):
    """The operation was cancelled (e.g. the manager was closed)."""


class AbortedError(Error):
    """An event callback refused the operation (it raised from ``cert_obtaining``)."""


class ShutDownError(Error):
    """The manager was closed."""


class ReentrantError(Error, RuntimeError):
    """A blocking call was made from a callback of the library."""


class WrongProcessError(Error, RuntimeError):
    """The manager was created in another process (before ``fork()``)."""


class InternalError(Error, RuntimeError):
    """An unexpected failure inside the library."""

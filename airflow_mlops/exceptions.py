"""The package's exceptions: one module, so callers catch by meaning, not by origin.

Every error is either *non-retryable* (bad data, bad schema, bad model, bad arguments,
bad configuration, damaged files: running again gives the same failure) or *retryable*
(I/O and connection trouble that time can fix). :func:`is_retryable` decides, for the
package's errors and for foreign ones; operators turn non-retryable errors into
``AirflowFailException`` at their edge. The table is in ``docs/operators.md`` ("Errors
and retries").
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


def format_names(names: Iterable[str], limit: int = 10) -> str:
    """``a, b, c`` — capped at ``limit`` names, then ``and N more``."""
    items = list(names)
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


#: Foreign ``OSError`` subclasses that name a path or permission problem: configuration
#: or state that waiting does not change (other ``OSError``\ s — timeouts, lost
#: connections, a full disk, EIO — are retryable).
NON_RETRYABLE_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
)


def shown_value(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message; an oversized value is cut, not echoed whole into logs."""
    shown = repr(value)
    if len(shown) > limit:
        shown = f"{shown[: limit - 20]}… ({len(shown)} characters)"
    return shown


def is_retryable(exc: BaseException) -> bool:
    """Whether running the task again may succeed where ``exc`` failed it.

    The package's errors say so themselves (:attr:`AirflowMlopsError.retryable`). Foreign
    ones: ``OSError`` (I/O, connections, timeouts, pyarrow's ``ArrowIOError``),
    ``MemoryError`` and a broken worker pool (a worker process died, e.g. killed for
    memory) are retryable, except the path and permission errors of
    :data:`NON_RETRYABLE_OS_ERRORS`; anything else (``ValueError``, ``TypeError``,
    ``KeyError``, pyarrow's ``ArrowInvalid``, duckdb's errors, unpickling errors) is a
    bug or bad input that fails the same way every time.
    """
    if isinstance(exc, AirflowMlopsError):
        return exc.retryable
    if isinstance(exc, NON_RETRYABLE_OS_ERRORS):
        return False
    return isinstance(exc, OSError | MemoryError | BrokenExecutor)


class AirflowMlopsError(Exception):
    """Base class of every error this package raises."""

    retryable: bool = False


class ArgumentError(AirflowMlopsError, ValueError):
    """An argument given to an operator, hook or engine function is invalid."""


class PartitionError(AirflowMlopsError, ValueError):
    """A partition value is malformed (partitions are ``YYYY-MM-DD`` dates)."""


class TableNameError(AirflowMlopsError, ValueError):
    """A table name is not a plain identifier (no path separators, no ``..``)."""


class ContractError(AirflowMlopsError, ValueError):
    """Data does not match a declared feature contract.

    The offending columns are kept as attributes so callers and tests can act on them.
    """

    def __init__(
        self,
        message: str,
        *,
        missing_columns: Iterable[str] = (),
        unexpected_columns: Iterable[str] = (),
        mistyped_columns: dict[str, tuple[str, str]] | None = None,
        null_columns: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.missing_columns = list(missing_columns)
        self.unexpected_columns = list(unexpected_columns)
        self.mistyped_columns = dict(mistyped_columns or {})
        self.null_columns = list(null_columns)


class EmptyInputError(AirflowMlopsError, ValueError):
    """A step received no rows where rows were required."""


class SourceQueryError(AirflowMlopsError, ValueError):
    """The source database rejected the query (syntax, missing table, bad parameter)."""


class SourceConnectionError(AirflowMlopsError, ConnectionError):
    """The source database could not be reached. Retryable."""

    retryable = True


class StoreError(AirflowMlopsError, OSError):
    """The feature store could not be read or written. Retryable."""

    retryable = True


class StoreCorruptionError(StoreError):
    """A store or registry file (ref, alias, manifest) is damaged. Not retryable.

    Reading the same bytes again gives the same failure: restore the file or rewrite it
    (publish the partition again, promote a version to the alias).
    """

    retryable = False


class StoreAccessError(StoreError):
    """The store's root or a path in it is not usable by this process. Not retryable.

    Permissions, or a file where a directory should be: a deployment problem that
    waiting does not fix.
    """

    retryable = False


class ConcurrentPublishError(StoreError):
    """Another writer committed to the same partition of a table (or changed its schema)
    first. Retryable: nothing of the losing publish is visible."""


class SourceConfigurationError(AirflowMlopsError, ValueError):
    """The source connection points at nothing usable (e.g. a missing SQLite file).

    Not retryable: fix the connection's settings.
    """


class PartitionNotFoundError(AirflowMlopsError, LookupError):
    """The requested table, partition or version does not exist."""


class TransformError(AirflowMlopsError, ValueError):
    """A transform (SQL or Python) failed on its input."""


class ChecksumMismatchError(AirflowMlopsError, ValueError):
    """A file's SHA-256 differs from the one recorded for it (tampered or truncated).

    :ivar path: the file; :ivar expected: the recorded digest; :ivar actual: the file's.
    """

    def __init__(self, message: str, *, path: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


class ModelNotFoundError(AirflowMlopsError, LookupError):
    """The requested model, version or alias is not in the registry."""


class ModelLoadError(AirflowMlopsError, ValueError):
    """A model artifact could not be loaded safely (corrupt, wrong object, bad libraries)."""


class ModelVersionMismatchError(ModelLoadError):
    """The model was saved with library versions this environment does not match."""


class ScoringError(AirflowMlopsError, RuntimeError):
    """A model failed while scoring a batch."""


class DuplicateKeyError(ContractError):
    """Rows share an entity key (or have a null one) where the key must identify each row.

    :ivar key_columns: the key; :ivar duplicate_count: how many key values occur more than
        once; :ivar examples: up to five of them, as ``{column: value}`` dicts with ``rows``.
    """

    def __init__(
        self,
        message: str,
        *,
        key_columns: Iterable[str],
        duplicate_count: int,
        examples: list[dict[str, object]],
        null_columns: Iterable[str] = (),
    ) -> None:
        super().__init__(message, null_columns=null_columns)
        self.key_columns = list(key_columns)
        self.duplicate_count = duplicate_count
        self.examples = examples


class InferenceRequestError(AirflowMlopsError, ValueError):
    """An online inference request is wrong in itself: a missing, unknown or mistyped input, a
    wrong shape, NaN where the contract forbids it, an unknown requested output, an oversized
    body. Served as HTTP 400 / gRPC ``INVALID_ARGUMENT``.

    :ivar input_name: the input (or output) the problem is about, when there is one.
    """

    def __init__(self, message: str, *, input_name: str | None = None) -> None:
        super().__init__(message)
        self.input_name = input_name


class ServingUnavailableError(AirflowMlopsError, RuntimeError):
    """The server has no verified model (or feature table) loaded yet. Served as HTTP 503 /
    gRPC ``UNAVAILABLE``; asking again later may succeed."""

    retryable = True

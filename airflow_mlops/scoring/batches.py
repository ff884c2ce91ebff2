"""Batch scoring: Arrow record batches in, ``entity key, score, decision`` batches out.

The model is a fitted scikit-learn binary classifier (usually a pipeline whose column
transformer selects columns by name). ``score_batches`` scores in this process
(``workers=1``) or in a pool of worker processes that each load the model artifact once;
either way rows come out in the order they went in and memory is bounded by the batch size.

Missing values: nulls reach the model as NaN (numeric) or missing (string) values,
unchanged — ``HistGradientBoostingClassifier`` routes NaN natively; a model that cannot
handle them fails with a :class:`ScoringError` naming the batch. Infinite values are
refused before scoring with a :class:`ContractError` naming the column.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from concurrent.futures import BrokenExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import argument_error, check_int, check_names
from airflow_mlops.contract import check_finite
from airflow_mlops.exceptions import ArgumentError, ContractError, ScoringError, format_names
from airflow_mlops.models.accelerate import CompiledTreeModel
from airflow_mlops.models.artifacts import dump_model, load_model
from airflow_mlops.models.records import ModelOutput

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future

    import numpy as np
    import pyarrow as pa

    from airflow_mlops.contract import FeatureContract

#: How worker processes start. ``fork`` starts a 2-worker pool in ≈ 0.2 s against ≈ 1.3–2.5 s
#: here (measured), but copies a parent that may run threads (Airflow's task runner, Arrow's
#: and OpenMP's pools) and can deadlock; Python 3.12+ warns about it and 3.14 stopped using
#: it by default. The fork server is single-threaded and clean; the start-up cost (each
#: worker imports the model's libraries) is paid once per ``score_batches`` call.
START_METHOD = "forkserver"
#: Models get a batch padded to a multiple of this many rows (copies of its last row, whose
#: scores are dropped). BLAS multiplies a matrix by a vector in blocks of rows (4 in
#: OpenBLAS' x86-64 dgemv) and the rows left over in another kernel that rounds differently:
#: unpadded, a linear model's score for a row changed in the last bit with the size of its
#: batch, so a partition scored in shards differed from the same partition scored whole.
ROW_BLOCK = 64


@dataclass(frozen=True)
class ScoredBatch:
    """One scored batch and the seconds its scoring took (conversion + ``predict_proba``,
    measured where it ran, so worker time, not queueing, for ``workers > 1``)."""

    batch: pa.RecordBatch
    seconds: float


def check_model_inputs(
    schema: pa.Schema,
    contract: FeatureContract,
    *,
    entity_key: str,
    allow_extra: bool = True,
) -> list[str]:
    """The columns to read for scoring (the contract's, then the entity key).

    Raises :class:`ContractError` naming the missing and mistyped columns (same rules as
    :meth:`FeatureContract.check_schema`: integers may feed float features), and with
    ``allow_extra=False`` also the columns that are neither features nor the entity key.
    """
    import pyarrow as pa

    key_is_feature = entity_key in contract.names
    if allow_extra:
        wanted = set(contract.names)
        checked = pa.schema([field for field in schema if field.name in wanted])
    else:
        checked = pa.schema(
            [field for field in schema if key_is_feature or field.name != entity_key]
        )
    problem: ContractError | None = None
    try:
        contract.check_schema(checked, what="model input")
    except ContractError as exc:
        problem = exc
    if entity_key not in schema.names:
        missing = [*(problem.missing_columns if problem else []), entity_key]
        detail = f" Also: {problem}" if problem else ""
        raise ContractError(
            f"The model input has no entity key column {entity_key!r}: scored rows could not "
            f"be told apart. Read it with the features or pass the right entity_key.{detail}",
            missing_columns=list(dict.fromkeys(missing)),
            unexpected_columns=problem.unexpected_columns if problem else (),
            mistyped_columns=problem.mistyped_columns if problem else None,
        )
    if problem is not None:
        raise problem
    return contract.names if key_is_feature else [*contract.names, entity_key]


def score_batches(
    batches: Iterable[pa.RecordBatch],
    *,
    model: Any | None = None,
    artifact: bytes | None = None,
    feature_names: list[str],
    output: ModelOutput,
    workers: int = 1,
    max_in_flight: int | None = None,
) -> Iterator[ScoredBatch]:
    """Score ``batches`` lazily, one output batch per input batch, in input order.

    Output columns: those of ``output`` (:class:`~airflow_mlops.models.records.ModelOutput`):
    the entity key as read, the score (float64, ``P(class 1)`` = ``predict_proba[:, 1]``),
    the decision, then the constant extra columns (e.g. model name and version).

    :param model: the fitted classifier, used when ``workers=1``.
    :param artifact: the model's joblib bytes, already verified (the registry checks the
        SHA-256); each worker process loads it once. Made from ``model`` if not given.
    :param feature_names: the model's input columns, in the order its contract lists them.
    :param output: the output columns and the decision rule.
    :param workers: processes scoring in parallel; 1 scores in this process. Each worker
        pins native thread pools (OpenMP, BLAS) to one thread.
    :param max_in_flight: batches submitted but not yet yielded (default ``2 * workers``):
        at most this many input batches are read ahead of the consumer.

    With ``workers > 1`` the worker processes re-import the caller's ``__main__`` module (as
    with any ``spawn``/``forkserver`` pool): scripts must guard their entry point with
    ``if __name__ == "__main__":``. Closing the iterator early shuts the pool down.
    """
    _check_arguments(model, artifact, feature_names, output, workers, max_in_flight)
    features = list(feature_names)
    if workers == 1:
        if model is None:
            assert artifact is not None  # guaranteed by _check_arguments
            model = load_model(artifact)
        return _score_in_process(batches, model, features, output)
    if artifact is None:
        artifact = dump_model(model)
    in_flight = max_in_flight if max_in_flight is not None else 2 * workers
    return _score_in_pool(batches, artifact, features, output, workers, in_flight)


def _check_arguments(
    model: Any,
    artifact: bytes | None,
    feature_names: list[str],
    output: ModelOutput,
    workers: int,
    max_in_flight: int | None,
) -> None:
    if model is None and artifact is None:
        raise ArgumentError("score_batches needs a fitted 'model' or its 'artifact' bytes.")
    if artifact is not None and not isinstance(artifact, bytes | bytearray | memoryview):
        raise argument_error("artifact", "score_batches", "bytes", type(artifact).__name__)
    check_int(workers, "workers", "score_batches")
    if max_in_flight is not None:
        check_int(max_in_flight, "max_in_flight", "score_batches")
    check_names(feature_names, "feature_names", "score_batches", allow_empty=False)
    if not isinstance(output, ModelOutput):
        raise argument_error("output", "score_batches", "a ModelOutput", output)


# ---------------------------------------------------------------- per-batch pieces


def _check_batch(
    batch: pa.RecordBatch, feature_names: list[str], entity_key: str, index: int
) -> None:
    """Raise :class:`ContractError` for absent columns or infinite feature values."""
    names = set(batch.schema.names)
    missing = [n for n in dict.fromkeys([*feature_names, entity_key]) if n not in names]
    if missing:
        raise ContractError(
            f"Batch {index} lacks {len(missing)} column(s) the model needs: "
            f"{format_names(missing)}. Read them from the feature table (see "
            "check_model_inputs).",
            missing_columns=missing,
        )
    check_finite(batch, feature_names, f"Batch {index}")


def probabilities(model: Any, features: pa.RecordBatch) -> np.ndarray:
    """``P(class 1)`` of each row of ``features`` (the model's inputs, in contract order: column
    transformers select by name), the same whatever batch the row is in (see ``ROW_BLOCK``):
    batch scoring and online serving both call it, so a row scores the same bits in both.

    A :class:`CompiledTreeModel` with a verified numpy column transformer scores the Arrow
    columns directly (no pandas, no scikit-learn call), unless that transformer leaves the
    batch to scikit-learn; its output is bit-identical, so the scores are too."""
    import numpy as np
    import pyarrow as pa

    rows = features.num_rows
    if rows == 0:
        return np.empty(0, dtype=np.float64)
    matrix = model.arrow_matrix(features) if isinstance(model, CompiledTreeModel) else None
    if matrix is not None:  # padded like the frame below: copies of the last row
        matrix = np.concatenate([matrix, np.repeat(matrix[-1:], -rows % ROW_BLOCK, axis=0)])
        return model.positive_probability(matrix)[:rows].copy()
    padding = features.take(pa.array([rows - 1] * (-rows % ROW_BLOCK), pa.int64()))
    frame = pa.Table.from_batches([features, padding]).to_pandas()
    proba = np.asarray(model.predict_proba(frame))
    if proba.ndim != 2 or proba.shape != (len(frame), 2):
        raise ScoringError(
            f"The model's predict_proba returned shape {proba.shape} for "
            f"{len(frame)} rows; scoring needs a binary classifier (shape (n, 2))."
        )
    return np.ascontiguousarray(proba[:rows, 1], dtype=np.float64)


def _assemble(keys: pa.Array, scores: np.ndarray, output: ModelOutput) -> pa.RecordBatch:
    import pyarrow as pa

    score = pa.array(scores, type=pa.float64())
    arrays = [keys, score, output.decisions(score)]
    names = [output.entity_key, output.score_column, output.decision_column]
    for name, value in output.extra_columns.items():
        arrays.append(pa.repeat(pa.scalar(value), len(keys)))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def scores_schema(entity_type: pa.DataType, output: ModelOutput) -> pa.Schema:
    """The schema of ``score_batches``' output (for empty inputs, which yield no batch).

    :param entity_type: the entity key's type in the features.
    """
    import pyarrow as pa

    fields = [
        pa.field(output.entity_key, entity_type),
        pa.field(output.score_column, pa.float64()),
        pa.field(output.decision_column, pa.string()),
    ]
    fields += [
        pa.field(name, pa.scalar(value).type) for name, value in output.extra_columns.items()
    ]
    return pa.schema(fields)


def _scoring_failed(index: int, exc: BaseException) -> ScoringError:
    return ScoringError(
        f"Scoring batch {index} failed: {type(exc).__name__}: {exc}. Check the batch's "
        "values against the model's training data, or the model artifact."
    )


# ---------------------------------------------------------------- in this process


def _score_in_process(
    batches: Iterable[pa.RecordBatch], model: Any, feature_names: list[str], output: ModelOutput
) -> Iterator[ScoredBatch]:
    for index, batch in enumerate(batches):
        _check_batch(batch, feature_names, output.entity_key, index)
        start = time.perf_counter()
        try:
            scores = probabilities(model, batch.select(feature_names))
        except (ScoringError, MemoryError):  # MemoryError: retryable, not the model's fault
            raise
        except Exception as exc:
            raise _scoring_failed(index, exc) from exc
        seconds = time.perf_counter() - start
        yield ScoredBatch(_assemble(batch.column(output.entity_key), scores, output), seconds)


# ---------------------------------------------------------------- in worker processes

#: A worker process's model (or the error loading it), set once by ``_init_worker``.
_WORKER: dict[str, Any] = {}


def _init_worker(artifact: bytes) -> None:
    """Pool initializer: load the model once, pin native thread pools to one thread."""
    try:
        _WORKER["model"] = load_model(artifact)
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(limits=1)
    except Exception as exc:  # reported by the first task, as a ScoringError
        _WORKER["error"] = exc


def _score_ipc(payload: bytes) -> tuple[np.ndarray, float]:
    """Worker task: features as one Arrow IPC stream → ``(P(class 1), seconds)``."""
    import pyarrow as pa

    if "error" in _WORKER:
        raise _WORKER["error"]
    start = time.perf_counter()
    batch = pa.ipc.open_stream(payload).read_next_batch()
    scores = probabilities(_WORKER["model"], batch)
    return scores, time.perf_counter() - start


def _to_ipc(batch: pa.RecordBatch) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def _score_in_pool(
    batches: Iterable[pa.RecordBatch],
    artifact: bytes,
    feature_names: list[str],
    output: ModelOutput,
    workers: int,
    max_in_flight: int,
) -> Iterator[ScoredBatch]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context(START_METHOD)
    pending: deque[tuple[int, pa.Array, Future[tuple[np.ndarray, float]]]] = deque()
    with _as_plain_process():
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(artifact,)
        )
        try:
            for index, batch in enumerate(batches):
                _check_batch(batch, feature_names, output.entity_key, index)
                payload = _to_ipc(batch.select(feature_names))
                keys = batch.column(output.entity_key)
                pending.append((index, keys, pool.submit(_score_ipc, payload)))
                if len(pending) >= max_in_flight:
                    yield _collect(*pending.popleft(), output)
            while pending:
                yield _collect(*pending.popleft(), output)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _as_plain_process() -> Iterator[None]:
    """Let a task that runs under a Celery worker start the scoring pool.

    - Celery's prefork pool (billiard) marks its processes daemonic and gives them
      billiard's own authkey type; the task process Airflow forks from one inherits both.
      ``multiprocessing`` then refuses to start children ("daemonic processes are not
      allowed to have children") or to send the authkey to the fork server ("Pickling an
      AuthenticationString object is disallowed"). The daemon flag keeps a daemon's
      children from being orphaned when it is terminated: the pool's workers are shut down
      before this block ends.
    - Each new worker re-runs the parent's ``__main__``: in a task process that is the
      ``airflow`` command, whose import fails there (task processes are denied the
      metadata DB settings). The workers only need this module, so ``__main__`` is not
      named to them.

    All three are restored when the block ends.
    """
    import multiprocessing
    from multiprocessing.process import AuthenticationString  # type: ignore[attr-defined]

    config: dict[str, Any] = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    saved = dict(config)
    config["daemon"] = False
    config["authkey"] = AuthenticationString(bytes(saved["authkey"]))
    main = sys.modules["__main__"]
    main_file = vars(main).pop("__file__", None)
    main_spec, main.__spec__ = getattr(main, "__spec__", None), None
    try:
        yield
    finally:
        config.update(saved)
        if main_file is not None:
            main.__file__ = main_file
        main.__spec__ = main_spec


def _collect(
    index: int,
    keys: pa.Array,
    future: Future[tuple[np.ndarray, float]],
    output: ModelOutput,
) -> ScoredBatch:
    try:
        scores, seconds = future.result()
    except ScoringError as exc:
        raise ScoringError(f"Scoring batch {index} failed: {exc}") from exc
    except (BrokenExecutor, MemoryError):  # a worker died (often for memory): retryable
        raise
    except Exception as exc:
        raise _scoring_failed(index, exc) from exc
    return ScoredBatch(_assemble(keys, scores, output), seconds)

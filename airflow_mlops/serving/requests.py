"""Requests' rows scored: raw features or keys looked up, checked, then the model, many
requests at once.

A request is checked in two steps. :func:`check_request` checks its structure alone, in this
order, raising the first problem as an :class:`~airflow_mlops.exceptions.InferenceRequestError`
naming the input: an input named twice or unknown to the model, a missing contract input, a
shape or data length that does not fit (:func:`~airflow_mlops.serving.inputs.tensor_rows`),
inputs with different row counts. :func:`score_requests` then converts the values of several
checked requests together — one Arrow array per input for all of them, one key lookup, one
model call — and checks each input's datatype and values
(:func:`~airflow_mlops.serving.inputs.tensor_to_arrow`). When a joined input fails, its
requests are converted one by one, so the error a request gets names its own rows and the
other requests are scored as if it had not been there. This is what makes micro-batching
cheap: the per-request work is the structural check; the conversion, the lookup and the model
call are paid once per batch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import InferenceRequestError, format_names
from airflow_mlops.serving.protocol import ERROR_OUTPUT

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import pyarrow as pa

    from airflow_mlops.serving.protocol import Tensor
    from airflow_mlops.serving.state import ServingState

    #: Scores checked feature rows: ``ServedModel.predict``.
    Predict = Callable[[pa.Table], tuple[np.ndarray, pa.Array]]


@dataclass(frozen=True)
class ScoredRequest:
    """A request's rows, scored, in request order.

    :param columns: output name → one value per row (score, decision and, with a feature
        table, error).
    :param features: the model's input columns as scored (all-null rows for keys not
        found), for the serving log and the shadow challenger.
    :param keys: the entity key of each row, when the request carried or looked it up.
    """

    columns: dict[str, list[Any]]
    features: pa.Table
    keys: pa.Array | None


@dataclass(frozen=True, eq=False)
class CheckedRequest:
    """A request whose structure :func:`check_request` checked, its values not converted yet.

    :param state: what answers it (requests are scored together only with the same state).
    :param tensors: its inputs by name.
    :param rows: its row count.
    :param lookup: True for a key lookup (only the key column), False for raw features.
    """

    state: ServingState
    tensors: dict[str, Tensor]
    rows: int
    lookup: bool

    @property
    def batch_key(self) -> ServingState:
        """Requests are batched only with those of the same served state (by identity)."""
        return self.state


def check_request(state: ServingState, inputs: Sequence[Tensor]) -> CheckedRequest:
    """``inputs`` checked in structure against ``state``'s model (and feature table).

    A request carrying only the key column (and the model does not read the key) is a key
    lookup; any other is raw features, where the key is optional and ignored.

    :raises InferenceRequestError: for the first structural problem (module docstring).
    """
    from airflow_mlops.serving.inputs import tensor_rows

    model, index = state.model, state.index
    tensors = _by_name(inputs)
    names = model.contract.names
    key = state.key_column
    unknown = [name for name in tensors if name not in names and name != key]
    if unknown:
        raise InferenceRequestError(
            f"Input {unknown[0]!r} is not an input of model {model.name!r}; its inputs "
            f"are {format_names(names)}"
            + (f", or {key!r} alone to look the features up." if index else "."),
            input_name=unknown[0],
        )
    lookup = index is not None and len(tensors) == 1 and key in tensors and key not in names
    if not lookup:
        _check_complete(state, tensors)
    rows = {name: tensor_rows(tensor) for name, tensor in tensors.items()}
    counts = set(rows.values())
    if len(counts) > 1:
        described = ", ".join(f"{name} has {count}" for name, count in rows.items())
        first = next(name for name, count in rows.items() if count != next(iter(rows.values())))
        raise InferenceRequestError(
            f"The inputs have different row counts ({described}); send the same number of "
            "rows for every input.",
            input_name=first,
        )
    return CheckedRequest(state, tensors, counts.pop(), lookup)


def wanted_outputs(state: ServingState, outputs: Sequence[str] | None) -> list[str]:
    """The outputs a request asks for, each once, in its order (all by default).

    :raises InferenceRequestError: an output the served model does not have."""
    available = state.outputs
    if outputs is None:
        return list(available)
    wanted = list(dict.fromkeys(outputs))
    unknown = [output for output in wanted if output not in available]
    if unknown:
        raise InferenceRequestError(
            f"Model {state.model.name!r} has no output {unknown[0]!r}; its outputs are "
            f"{format_names(available)}: request those, or omit 'outputs' for all.",
            input_name=unknown[0],
        )
    return wanted


def score_alone(request: CheckedRequest) -> ScoredRequest:
    """``request`` scored on its own (no micro-batching).

    :raises InferenceRequestError: for its values (module docstring).
    """
    result = score_requests([request])[0]
    if isinstance(result, InferenceRequestError):
        raise result
    return result


def score_requests(
    requests: Sequence[CheckedRequest], predict: Predict | None = None
) -> list[ScoredRequest | InferenceRequestError]:
    """Each request's outputs (score, decision, error) in request order, with the features
    they were scored on — or the :class:`InferenceRequestError` of its values.

    :param requests: checked requests of one served state (one model, one partition).
    :param predict: scores feature rows (default the state's ``model.predict``).
    :raises Exception: whatever the model raised: it fails every request of the call.
    """
    state = requests[0].state
    predict = predict or state.model.predict
    failed: dict[int, InferenceRequestError] = {}
    raw = [request for request in requests if not request.lookup]
    looked = [request for request in requests if request.lookup]
    features = _raw_features(state, raw, failed) if raw else None
    raw_keys = {id(request): _raw_keys(request, failed) for request in raw}
    keys = _lookup_keys(state, looked, failed) if looked else None
    if failed:  # the others scored without them (rare: only for wrong values)
        rest = [request for request in requests if id(request) not in failed]
        scored = iter(score_requests(rest, predict) if rest else ())
        return [failed.get(id(request)) or next(scored) for request in requests]
    results: dict[int, ScoredRequest] = {}
    if features is not None:
        results.update(_scored_raw(state, raw, features, raw_keys, predict))
    if keys is not None:
        results.update(_scored_lookups(state, looked, keys, predict))
    return [results[id(request)] for request in requests]


def _by_name(inputs: Sequence[Tensor]) -> dict[str, Tensor]:
    tensors: dict[str, Tensor] = {}
    for tensor in inputs:
        if tensor.name in tensors:
            raise InferenceRequestError(
                f"Input {tensor.name!r} is given twice; send each input once.",
                input_name=tensor.name,
            )
        tensors[tensor.name] = tensor
    if not tensors:
        raise InferenceRequestError("The request has no inputs; send the model's inputs.")
    return tensors


def _check_complete(state: ServingState, tensors: dict[str, Tensor]) -> None:
    model, index, key = state.model, state.index, state.key_column
    names = model.contract.names
    missing = [name for name in names if name not in tensors]
    if not missing:
        return
    if index is None and set(tensors) == {key}:
        raise InferenceRequestError(
            f"Input {key!r} alone asks for a feature lookup, but this server serves no "
            f"feature table: send the model's inputs ({format_names(names)}), or start the "
            "server with a feature table.",
            input_name=key,
        )
    lookup = f", or only {key!r} to look them up" if index is not None else ""
    raise InferenceRequestError(
        f"Input {missing[0]!r} is missing: model {model.name!r} needs "
        f"{len(missing)} more input(s) ({format_names(missing)}). Send every input of its "
        f"contract{lookup}.",
        input_name=missing[0],
    )


def _column(
    requests: Sequence[CheckedRequest], field: pa.Field, failed: dict[int, InferenceRequestError]
) -> pa.Array | None:
    """Input ``field.name`` of every request as one Arrow array of ``field``'s type (None when
    a request's values fail: each such request's error is noted in ``failed``)."""
    import pyarrow as pa

    from airflow_mlops.serving.inputs import tensor_to_arrow

    tensors = [request.tensors[field.name] for request in requests]
    if len(tensors) > 1 and len({tensor.datatype for tensor in tensors}) == 1:
        try:
            return tensor_to_arrow(_joined(tensors), field)
        except InferenceRequestError:
            pass  # find the requests at fault, one by one
    arrays = []
    for request, tensor in zip(requests, tensors, strict=True):
        try:
            arrays.append(tensor_to_arrow(tensor, field))
        except InferenceRequestError as exc:
            failed.setdefault(id(request), exc)
    if len(arrays) < len(tensors):
        return None
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def _joined(tensors: Sequence[Tensor]) -> Tensor:
    """One tensor holding the values of ``tensors`` (same name and datatype), in order."""
    import numpy as np

    from airflow_mlops.serving.inputs import flat_values
    from airflow_mlops.serving.protocol import Tensor

    parts = [flat_values(tensor.data) for tensor in tensors]
    if all(isinstance(part, np.ndarray) for part in parts):
        data: Any = np.concatenate(parts)
    else:
        data = list(itertools.chain.from_iterable(parts))
    first = tensors[0]
    return Tensor(first.name, first.datatype, (len(data),), data)


def _raw_features(
    state: ServingState,
    requests: Sequence[CheckedRequest],
    failed: dict[int, InferenceRequestError],
) -> pa.Table | None:
    """The raw-feature requests' inputs as one table of the model's input schema."""
    import pyarrow as pa

    schema = state.model.input_schema
    columns = [_column(requests, field, failed) for field in schema]
    if any(column is None for column in columns):
        return None
    return pa.table(columns, schema=schema)


def _lookup_keys(
    state: ServingState,
    requests: Sequence[CheckedRequest],
    failed: dict[int, InferenceRequestError],
) -> pa.Array | None:
    import pyarrow as pa

    index = state.index
    assert index is not None  # lookups are only checked in with a feature table
    return _column(requests, pa.field(index.key_column, index.key_type, nullable=False), failed)


def _scored_raw(
    state: ServingState,
    requests: Sequence[CheckedRequest],
    features: pa.Table,
    keys: dict[int, pa.Array | None],
    predict: Predict,
) -> dict[int, ScoredRequest]:
    scores, decisions = predict(features)
    output, index = state.model.output, state.index
    score_list, decision_list = scores.tolist(), decisions.to_pylist()
    results: dict[int, ScoredRequest] = {}
    for request, start, stop in _spans(requests):
        columns = {
            output.score_column: score_list[start:stop],
            output.decision_column: decision_list[start:stop],
        }
        if index is not None:
            columns[ERROR_OUTPUT] = [""] * request.rows
        rows = features.slice(start, request.rows)
        key = keys[id(request)]
        if key is None and state.key_column in rows.column_names:
            key = rows.column(state.key_column).combine_chunks()
        results[id(request)] = ScoredRequest(columns, rows, key)
    return results


def _raw_keys(request: CheckedRequest, failed: dict[int, InferenceRequestError]) -> pa.Array | None:
    """The entity keys a raw-features request carried as an extra input the model ignores
    (None without one, or when the model reads the key: it is then a feature column)."""
    import pyarrow as pa

    from airflow_mlops.serving.inputs import key_field, tensor_to_arrow

    state = request.state
    key, index = state.key_column, state.index
    tensor = request.tensors.get(key)
    if tensor is None or key in state.model.contract.names:
        return None
    field = pa.field(key, index.key_type) if index is not None else key_field(tensor)
    try:
        return tensor_to_arrow(tensor, field)
    except InferenceRequestError as exc:
        failed.setdefault(id(request), exc)
        return None


def _scored_lookups(
    state: ServingState, requests: Sequence[CheckedRequest], keys: pa.Array, predict: Predict
) -> dict[int, ScoredRequest]:
    import numpy as np
    import pyarrow as pa

    index, model = state.index, state.model
    assert index is not None
    rows, missing = index.lookup(keys)
    found = np.flatnonzero(~missing)
    scores = np.full(len(keys), np.nan)
    decisions: list[Any] = [""] * len(keys)
    if len(found):
        present = rows if len(found) == len(keys) else rows.take(pa.array(found))
        found_scores, found_decisions = predict(present)
        scores[found] = found_scores
        for position, decision in zip(found, found_decisions.to_pylist(), strict=True):
            decisions[position] = decision
    errors = [""] * len(keys)
    if len(found) < len(keys):
        where = f"{index.table} ds={index.partition}"
        wanted = keys.to_pylist()
        for absent in np.flatnonzero(missing).tolist():
            errors[absent] = f"{index.key_column} {wanted[absent]} is not in {where}"
    features, output = rows.select(model.contract.names), model.output
    score_list = scores.tolist()
    results: dict[int, ScoredRequest] = {}
    for request, start, stop in _spans(requests):
        columns = {
            output.score_column: score_list[start:stop],
            output.decision_column: decisions[start:stop],
            ERROR_OUTPUT: errors[start:stop],
        }
        own = features.slice(start, request.rows)
        results[id(request)] = ScoredRequest(columns, own, keys.slice(start, request.rows))
    return results


def _spans(requests: Sequence[CheckedRequest]) -> list[tuple[CheckedRequest, int, int]]:
    """Each request with the first and past-the-end positions of its rows in the batch."""
    spans, start = [], 0
    for request in requests:
        spans.append((request, start, start + request.rows))
        start += request.rows
    return spans

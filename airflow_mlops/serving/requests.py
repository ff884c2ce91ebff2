"""One request's rows scored: raw features or keys looked up, checked, then the model.

Inputs are checked in this order, the first problem raised as an
:class:`~airflow_mlops.exceptions.InferenceRequestError` naming the input: an input named
twice or unknown to the model, a missing contract input, a shape or data length that does
not fit (:func:`~airflow_mlops.serving.inputs.tensor_rows`), inputs with different row
counts, then each input's datatype and values
(:func:`~airflow_mlops.serving.inputs.tensor_to_arrow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import InferenceRequestError, format_names

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import pyarrow as pa

    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.serving.model import ServedModel
    from airflow_mlops.serving.protocol import Tensor

    #: Scores checked feature rows: ``ServedModel.predict`` or a micro-batcher before it.
    Predict = Callable[[pa.Table], tuple[np.ndarray, pa.Array]]

#: The output naming, for each row whose key was looked up, why it has no score ("" if none).
ERROR_OUTPUT = "error"


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


def score_request(
    model: ServedModel,
    index: FeatureIndex | None,
    inputs: Sequence[Tensor],
    predict: Predict | None = None,
) -> ScoredRequest:
    """The outputs (score, decision, error) of a request's rows, in request order, with
    the features they were scored on.

    A request carrying only the key column (and the model does not read the key) is a key
    lookup in ``index``; any other is raw features, where the key is optional and ignored.
    ``predict`` scores the checked rows (default ``model.predict``).

    :raises InferenceRequestError: for the problems listed in the module docstring.
    """
    from airflow_mlops.serving.inputs import tensor_rows

    tensors = _by_name(inputs)
    contract = model.contract
    key = index.key_column if index is not None else model.output.entity_key
    unknown = [name for name in tensors if name not in {*contract.names, key}]
    if unknown:
        raise InferenceRequestError(
            f"Input {unknown[0]!r} is not an input of model {model.name!r}; its inputs "
            f"are {format_names(contract.names)}"
            + (f", or {key!r} alone to look the features up." if index else "."),
            input_name=unknown[0],
        )
    lookup = index is not None and set(tensors) == {key} and key not in contract.names
    if not lookup:
        _check_complete(model, index, key, tensors)
    rows = {name: tensor_rows(tensor) for name, tensor in tensors.items()}
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{name} has {count}" for name, count in rows.items())
        first = next(name for name, count in rows.items() if count != next(iter(rows.values())))
        raise InferenceRequestError(
            f"The inputs have different row counts ({counts}); send the same number of rows "
            "for every input.",
            input_name=first,
        )
    predict = predict or model.predict
    if index is not None and lookup:
        return _looked_up(model, index, tensors[key], predict)
    return _raw(model, index, tensors, predict)


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


def _check_complete(
    model: ServedModel, index: FeatureIndex | None, key: str, tensors: dict[str, Tensor]
) -> None:
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


def _raw(
    model: ServedModel, index: FeatureIndex | None, tensors: dict[str, Tensor], predict: Predict
) -> ScoredRequest:
    import pyarrow as pa

    from airflow_mlops.serving.inputs import tensor_to_arrow

    schema = model.input_schema
    features = pa.table([tensor_to_arrow(tensors[f.name], f) for f in schema], schema=schema)
    scores, decisions = predict(features)
    columns: dict[str, list[Any]] = _columns(model, scores, decisions)
    if index is not None:
        columns[ERROR_OUTPUT] = [""] * features.num_rows
    return ScoredRequest(columns, features, _raw_keys(model, index, tensors, features))


def _raw_keys(
    model: ServedModel, index: FeatureIndex | None, tensors: dict[str, Tensor], features: pa.Table
) -> pa.Array | None:
    """The entity keys a raw-features request carried (an input of the model or an extra
    input the model ignores), else None."""
    import pyarrow as pa

    from airflow_mlops.serving.inputs import key_field, tensor_to_arrow

    key = index.key_column if index is not None else model.output.entity_key
    if key in model.contract.names:
        return features.column(key).combine_chunks()
    tensor = tensors.get(key)
    if tensor is None:
        return None
    field = pa.field(key, index.key_type) if index is not None else key_field(tensor)
    return tensor_to_arrow(tensor, field)


def _looked_up(
    model: ServedModel, index: FeatureIndex, keys: Tensor, predict: Predict
) -> ScoredRequest:
    import numpy as np
    import pyarrow as pa

    from airflow_mlops.serving.inputs import tensor_to_arrow

    field = pa.field(index.key_column, index.key_type, nullable=False)
    wanted = tensor_to_arrow(keys, field)
    rows, missing = index.lookup(wanted)
    found = np.flatnonzero(~missing)
    scores = np.full(len(wanted), np.nan)
    decisions: list[Any] = [""] * len(wanted)
    if len(found):
        present = rows if len(found) == len(wanted) else rows.take(pa.array(found))
        found_scores, found_decisions = predict(present)
        scores[found] = found_scores
        for position, decision in zip(found, found_decisions.to_pylist(), strict=True):
            decisions[position] = decision
    where = f"{index.table} ds={index.partition}"
    errors = [
        f"{index.key_column} {key} is not in {where}" if absent else ""
        for key, absent in zip(wanted.to_pylist(), missing.tolist(), strict=True)
    ]
    output = model.output
    columns = {
        output.score_column: scores.tolist(),
        output.decision_column: decisions,
        ERROR_OUTPUT: errors,
    }
    return ScoredRequest(columns, rows.select(model.contract.names), wanted)


def _columns(model: ServedModel, scores: np.ndarray, decisions: pa.Array) -> dict[str, list[Any]]:
    output = model.output
    return {output.score_column: scores.tolist(), output.decision_column: decisions.to_pylist()}

"""The typed JSON endpoint, ``POST /v2/models/{name}/predict``: a request schema generated from
the served model's input contract, so the OpenAPI page lists the model's real fields.

The body is one row or a list of rows; a row gives every feature of the contract (raw
features, with the key optionally) or only the entity key (the features are looked up in the
feature table). The answer has, per row, the key when given, the score column
(``default_probability``), the decision (``approve``/``decline`` at the model's threshold) and,
for a key not in the table, ``error``. It calls the same :meth:`InferenceService.infer` as
``…/infer``.

The route sits under the model's own path (rather than a bare ``/predict``) so it shares the
protocol routes' auth, 404 and version semantics, and each served model can get its own
schema.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from airflow_mlops.exceptions import InferenceRequestError
from airflow_mlops.serving.protocol import InferenceRequest, Tensor
from airflow_mlops.serving.rest_messages import json_values

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_mlops.contract import FeatureField
    from airflow_mlops.serving.metrics import ObservedService
    from airflow_mlops.serving.protocol import ServedContract

#: The protocol's datatypes that are not numbers → the JSON field's Python type.
_PYTHON_TYPES: dict[str, type] = {"BOOL": bool, "BYTES": str}


def add_predict_route(app: FastAPI, service: ObservedService, served: ServedContract) -> None:
    """Add ``POST /v2/models/{served.model_name}/predict`` to ``app``.

    :param served: the served model's contract, key and outputs (read once, at build time).
    """
    row_model = row_schema(served)
    output = served.output

    async def predict(body: Any) -> dict[str, Any]:
        rows = [r.model_dump(by_alias=True, exclude_unset=True) for r in body]
        request = _inference_request(served, rows)
        response = await service.infer_async(served.model_name, None, request)
        columns = {t.name: json_values(t.data) for t in response.outputs}
        names = [n for n in (output.score_column, output.decision_column, "error") if n in columns]
        key = served.key.name if served.key is not None else None
        predictions = [
            {**({key: row[key]} if key in row else {}), **{n: columns[n][i] for n in names}}
            for i, row in enumerate(rows)
        ]
        return {
            "model_name": response.model_name,
            "model_version": response.model_version,
            "threshold": output.threshold,
            "predictions": predictions,
        }

    body_type = Annotated[
        list[row_model],  # type: ignore[valid-type]
        BeforeValidator(lambda value: [value] if isinstance(value, dict) else value),
        Body(description="one row, or a list of rows"),
    ]
    parameter = inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body_type)
    predict.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    lookup = "" if served.key is None else f", or only {served.key.name!r} (looked up)"
    app.post(
        f"/v2/models/{served.model_name}/predict",
        summary=f"Predict with {served.model_name} (typed rows)",
        description=(
            f"One row or a list of rows: every input of the model's contract{lookup}. Per "
            f"row: {output.score_column!r} and {output.decision_column!r} "
            f"({output.positive!r} above the threshold, else {output.negative!r})."
        ),
    )(predict)


def row_schema(served: ServedContract) -> type[BaseModel]:
    """A pydantic model of one row: the key and the contract's columns, by their names.

    Every field may be left out (a row is either the key alone or the features); a
    non-nullable column may not be ``null``.
    """
    fields: dict[str, Any] = {}
    for i, column in enumerate(_columns(served)):
        python = _python_type(_datatype(column))
        kind: Any = python | None if column.nullable else python
        fields[f"f{i}"] = (kind, Field(None, alias=column.name, description=column.type))
    return create_model(
        f"{served.model_name}_row",
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        **fields,
    )


def _inference_request(served: ServedContract, rows: list[dict[str, Any]]) -> InferenceRequest:
    """Key lookup when the rows give only the key, else raw features (plus the key if every
    row has it).

    :raises InferenceRequestError: no rows, or a row without a feature the others give.
    """
    if not rows:
        raise InferenceRequestError("The request has no rows. Send one row or a list of rows.")
    key = served.key.name if served.key is not None else None
    features = [f for f in _columns(served) if f.name != key]
    wanted = features if key is None or set().union(*rows) - {key} else []
    if served.key is not None and all(key in row for row in rows):
        wanted.insert(0, served.key)
    inputs = []
    for column in wanted:
        missing = [i for i, row in enumerate(rows) if column.name not in row]
        if missing:
            alternative = f", or only {key!r}" if key else ""
            raise InferenceRequestError(
                f"Row {missing[0]} has no {column.name!r}. Give every input of the model's "
                f"contract{alternative}.",
                input_name=column.name,
            )
        inputs.append(
            Tensor(column.name, _datatype(column), (len(rows),), [row[column.name] for row in rows])
        )
    return InferenceRequest(tuple(inputs))


def _columns(served: ServedContract) -> list[FeatureField]:
    """The key (when it is not an input itself), then the contract's columns."""
    fields = list(served.contract.fields)
    if served.key is not None and served.key.name not in served.contract.names:
        fields.insert(0, served.key)
    return fields


def _datatype(column: FeatureField) -> str:
    from airflow_mlops.contract import parse_arrow_type
    from airflow_mlops.serving.inputs import oip_datatype

    return oip_datatype(parse_arrow_type(column.type))


def _python_type(datatype: str) -> type:
    return _PYTHON_TYPES.get(datatype, float if datatype.startswith("FP") else int)

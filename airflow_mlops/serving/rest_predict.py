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
from starlette.concurrency import run_in_threadpool

from airflow_mlops.exceptions import InferenceRequestError
from airflow_mlops.serving.protocol import InferenceRequest, Tensor
from airflow_mlops.serving.rest_messages import json_values

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_mlops.serving.protocol import InferenceService, ServedContract

#: Contract (Arrow) types → the JSON field's Python type and the protocol datatype.
TYPES: dict[str, tuple[type, str]] = {
    "bool": (bool, "BOOL"),
    **{f"int{n}": (int, f"INT{n}") for n in (8, 16, 32, 64)},
    **{f"uint{n}": (int, f"UINT{n}") for n in (8, 16, 32, 64)},
    "float": (float, "FP32"),
    "float32": (float, "FP32"),
    "float64": (float, "FP64"),
    "double": (float, "FP64"),
}
#: Any other type (strings, dates, timestamps) is sent as text.
_TEXT: tuple[type, str] = (str, "BYTES")


def add_predict_route(app: FastAPI, service: InferenceService, served: ServedContract) -> None:
    """Add ``POST /v2/models/{served.model_name}/predict`` to ``app``.

    :param served: the served model's contract, key and outputs (read once, at build time).
    """
    row_model = row_schema(served)
    output = served.output

    async def predict(body: Any) -> dict[str, Any]:
        rows = [r.model_dump(by_alias=True, exclude_unset=True) for r in body]
        request = _inference_request(served, rows)
        response = await run_in_threadpool(service.infer, served.model_name, None, request)
        columns = {t.name: json_values(t.data) for t in response.outputs}
        names = [n for n in (output.score_column, output.decision_column, "error") if n in columns]
        key = served.key.name
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
    app.post(
        f"/v2/models/{served.model_name}/predict",
        summary=f"Predict with {served.model_name} (typed rows)",
        description=(
            f"One row or a list of rows: every input of the model's contract, or only "
            f"{served.key.name!r} (its features are looked up). Per row: "
            f"{output.score_column!r} and {output.decision_column!r} "
            f"({output.positive!r} above the threshold, else {output.negative!r})."
        ),
    )(predict)


def row_schema(served: ServedContract) -> type[BaseModel]:
    """A pydantic model of one row: the key and the contract's columns, by their names.

    Every field may be left out (a row is either the key alone or the features); a
    non-nullable column may not be ``null``.
    """
    fields: dict[str, Any] = {}
    columns = [served.key, *(f for f in served.contract.fields if f.name != served.key.name)]
    for i, column in enumerate(columns):
        python = TYPES.get(column.type, _TEXT)[0]
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
    key = served.key.name
    given = set().union(*rows)
    wanted = [f for f in served.contract.fields if f.name != key] if given - {key} else []
    if all(key in row for row in rows):
        wanted.insert(0, served.key)
    inputs = []
    for column in wanted:
        missing = [i for i, row in enumerate(rows) if column.name not in row]
        if missing:
            raise InferenceRequestError(
                f"Row {missing[0]} has no {column.name!r}. Give every input of the model's "
                f"contract, or only {key!r}.",
                input_name=column.name,
            )
        datatype = TYPES.get(column.type, _TEXT)[1]
        values = [row[column.name] for row in rows]
        if datatype == "BYTES":
            values = [v if v is None else str(v) for v in values]
        inputs.append(Tensor(column.name, datatype, (len(rows),), values))
    return InferenceRequest(tuple(inputs))

"""ModelOutput: a record's ``output`` section read once, with its defaults, and checked."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.models import ModelOutput


def record(**output: Any) -> Any:
    return {"name": "credit", "version": "v0003", "output": output}


def test_from_record_reads_the_output_and_names_the_model() -> None:
    spec = {"entity_key": "customer_id", "threshold": 0.3, "score": "p", "positive": "decline"}

    output = ModelOutput.from_record(record(**spec, negative="approve"))

    assert output == ModelOutput(
        entity_key="customer_id",
        threshold=0.3,
        score_column="p",
        decision_column="decision",
        positive="decline",
        negative="approve",
        extra_columns={"model_name": "credit", "model_version": "v0003"},
    )


def test_from_record_defaults_and_threshold_override() -> None:
    output = ModelOutput.from_record(record(entity_key="id", threshold=0.3), threshold=0.6)

    assert (output.threshold, output.score_column) == (0.6, "score")
    assert (output.positive, output.negative) == ("positive", "negative")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"threshold": 1.5},
            "The 'threshold' parameter of ModelOutput must be a float in [0, 1]. Got 1.5 instead.",
            id="threshold",
        ),
        pytest.param(
            {"threshold": True},
            "The 'threshold' parameter of ModelOutput must be a float in [0, 1]. Got True instead.",
            id="threshold-bool",
        ),
        pytest.param(
            {"positive": ""},
            "The 'positive' parameter of ModelOutput must be a non-empty string. Got '' instead.",
            id="empty-decision",
        ),
        pytest.param(
            {"score_column": "id"},
            "must have distinct names. Got id more than once.",
            id="duplicate-column",
        ),
        pytest.param(
            {"extra_columns": {"model": None}},
            "The 'extra_columns' parameter of ModelOutput must be a mapping of names to "
            "str/int/float constants. Got {'model': None} instead.",
            id="extra-column-value",
        ),
    ],
)
def test_bad_outputs_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentError, match=re.escape(message)):
        ModelOutput(**{"entity_key": "id", "threshold": 0.5, **fields})

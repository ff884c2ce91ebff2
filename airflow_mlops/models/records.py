"""The model registry's records: their shape, name and version rules, library versions,
field checks, and how a record's ``output`` section is read.

What :class:`airflow_mlops.models.registry.ModelRegistry` validates before it writes a record,
how it compares the libraries a model was saved with to the running ones, and
:class:`ModelOutput`: the columns and decision rule scoring writes a model's scores with.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from airflow_mlops.checks import argument_error, check_number
from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError, format_names

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pyarrow as pa


class OutputSpec(TypedDict, total=False):
    """A record's ``output`` section: how to read the model's scores.

    The registry stores the JSON mapping it is given; these are the keys scoring reads
    (:meth:`ModelOutput.from_record`), each optional but ``entity_key`` and ``threshold``.
    """

    entity_key: str
    """The column that identifies a scored row (it joins features, labels and scores)."""
    score: str
    """The score column's name (default ``"score"``)."""
    threshold: float
    """The decision threshold in [0, 1]: a score above it gets the ``positive`` decision."""
    positive: str
    """The decision above the threshold (default ``"positive"``)."""
    negative: str
    """The decision at or below it (default ``"negative"``)."""


class ModelRecord(TypedDict):
    """A registered version's record, ``<root>/<name>/<version>/model.json``."""

    name: str
    """The model's name."""
    version: str
    """The version, ``v0001`` onwards."""
    sha256: str
    """SHA-256 of the joblib artifact (hex): checked before the artifact is unpickled."""
    size: int
    """The artifact's size in bytes."""
    created_at: str
    """When it was registered (ISO 8601, UTC)."""
    model_class: str
    """The final estimator's qualified class, e.g. ``sklearn.linear_model.…``."""
    libraries: dict[str, str]
    """Versions of Python, scikit-learn, joblib and numpy it was saved with."""
    input_contract: dict[str, Any]
    """The input feature contract, as :meth:`FeatureContract.to_json` writes it."""
    output: OutputSpec
    """How to read its scores."""
    metrics: dict[str, float]
    """Evaluation metrics, e.g. ``{"cv_roc_auc_mean": 0.81}``."""
    params: dict[str, Any]
    """Training parameters (JSON)."""
    training_data: dict[str, Any]
    """Where it was trained, e.g. ``{"table": …, "partitions": […]}``."""
    tags: dict[str, str]
    """Free-form string tags."""
    runtimes: NotRequired[dict[str, Any]]
    """Checks of faster runtimes against its own outputs; absent from older records."""


@dataclass(frozen=True)
class ModelOutput:
    """How a model's scores are written: the output columns and the decision rule.

    A scored batch holds ``entity_key`` (as read), ``score_column`` (float64,
    ``P(class 1)``), ``decision_column`` (``positive`` if the score is above ``threshold``,
    else ``negative``), then ``extra_columns`` as constant columns.

    :param entity_key: the column identifying a row, read with the features.
    :param threshold: the decision threshold, a float in [0, 1].
    :param score_column: the score column's name.
    :param decision_column: the decision column's name.
    :param positive: the decision above the threshold.
    :param negative: the decision at or below it.
    :param extra_columns: constant columns (name → str, int or float), e.g. model name and
        version.
    :raises ArgumentError: for a threshold outside [0, 1], an empty name or decision, output
        columns named twice, or an extra column that is not a str, int or float.
    """

    entity_key: str
    threshold: float
    score_column: str = "score"
    decision_column: str = "decision"
    positive: str = "positive"
    negative: str = "negative"
    extra_columns: Mapping[str, str | int | float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_number(self.threshold, "threshold", "ModelOutput", low=0.0, high=1.0)
        for name in ("entity_key", "score_column", "decision_column", "positive", "negative"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text:
                raise argument_error(name, "ModelOutput", "a non-empty string", text)
        columns = [self.entity_key, self.score_column, self.decision_column, *self.extra_columns]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ArgumentError(
                "ModelOutput's columns (entity key, score, decision, extra columns) must have "
                f"distinct names. Got {format_names(duplicates)} more than once."
            )
        constants = (str, int, float)
        bad = {k: v for k, v in self.extra_columns.items() if not isinstance(v, constants)}
        if bad:
            expected = "a mapping of names to str/int/float constants"
            raise argument_error("extra_columns", "ModelOutput", expected, bad)

    @classmethod
    def from_record(cls, record: ModelRecord, threshold: float | None = None) -> ModelOutput:
        """How the version ``record`` describes writes its scores.

        The record's ``output`` gives the entity key, threshold, score column and decisions
        (absent keys take the defaults above); the ``model_name`` and ``model_version``
        columns say which model scored.

        :param threshold: a threshold overriding the record's.
        :raises KeyError: when ``output`` has no ``entity_key``, or no ``threshold`` and none
            is given.
        """
        spec: Mapping[str, Any] = record["output"]
        named = {attribute: spec[key] for key, attribute in _OUTPUT_KEYS if key in spec}
        return cls(
            entity_key=spec["entity_key"],
            threshold=spec["threshold"] if threshold is None else threshold,
            **named,
            extra_columns={"model_name": record["name"], "model_version": record["version"]},
        )

    def decisions(self, scores: pa.Array) -> pa.Array:
        """``positive`` where a score is above :attr:`threshold`, else ``negative`` (strings)."""
        import pyarrow.compute as pc

        return pc.if_else(pc.greater(scores, self.threshold), self.positive, self.negative)


#: ``output`` keys of a record, and the :class:`ModelOutput` attributes they set
_OUTPUT_KEYS = (("score", "score_column"), ("positive", "positive"), ("negative", "negative"))


NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
VERSION_PATTERN = re.compile(r"^v(\d{4,})$")


def validate_name(value: object, what: str = "A model name") -> str:
    """``value`` if it is a valid model or alias name, else :class:`ArgumentError`."""
    if isinstance(value, str) and NAME_PATTERN.match(value) and ".." not in value:
        return value
    raise ArgumentError(
        f"{what} must start with a letter or underscore and contain only letters, digits "
        f"and '_.-' (at most 128 characters, no '..'). Got {value!r} instead."
    )


def validate_version(value: object) -> str:
    """``value`` if it looks like a registry version (``v0001``), else :class:`ArgumentError`."""
    if isinstance(value, str) and VERSION_PATTERN.match(value):
        return value
    raise ArgumentError(
        f"A model version looks like 'v0001' (v and at least 4 digits). Got {value!r} instead."
    )


def library_versions() -> dict[str, str]:
    """The versions of the libraries a pickled pipeline depends on, in this process."""
    import joblib
    import numpy
    import sklearn

    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": numpy.__version__,
    }


def check_model(model: Any, contract: FeatureContract) -> None:
    if not callable(getattr(model, "predict_proba", None)):
        raise ArgumentError(
            "The 'model' parameter of ModelRegistry.register must be a fitted classifier or "
            f"pipeline with predict_proba. Got a {type(model).__name__} instead."
        )
    if not isinstance(contract, FeatureContract):
        raise ArgumentError(
            "The 'input_contract' parameter of ModelRegistry.register must be a "
            f"FeatureContract. Got {type(contract).__name__} instead."
        )
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None:
        return
    fitted_names, declared = [str(n) for n in fitted], contract.names
    if fitted_names == declared:
        return
    missing = [n for n in fitted_names if n not in declared]
    extra = [n for n in declared if n not in fitted_names]
    parts = []
    if missing:
        parts.append(f"not in the contract: {format_names(missing)}")
    if extra:
        parts.append(f"not used by the model: {format_names(extra)}")
    if not parts:
        parts.append(
            f"same columns in another order: model {format_names(fitted_names)}, "
            f"contract {format_names(declared)}"
        )
    raise ArgumentError(
        f"The model's feature_names_in_ do not match its input_contract ({'; '.join(parts)}). "
        "Declare the contract with the columns the model was fitted on, in that order."
    )


def final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def qualified_class(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def as_list(aliases: Sequence[str]) -> list[str]:
    if isinstance(aliases, str):
        raise ArgumentError(
            "The 'aliases' parameter of ModelRegistry.register must be a list of names. "
            f"Got the string {aliases!r} instead; write [{aliases!r}]."
        )
    return list(aliases)


def as_mapping(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        if not hasattr(value, "items"):
            raise TypeError(type(value).__name__)
        return dict(json.loads(json.dumps(dict(value))))
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            f"The {what!r} parameter of ModelRegistry.register must be a JSON-serialisable "
            f"mapping. Got {value!r} instead ({exc})."
        ) from exc


def as_metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
    values = as_mapping(metrics, "metrics")
    bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise ArgumentError(
            "The 'metrics' parameter of ModelRegistry.register must map names to numbers. "
            f"Not numbers: {format_names(f'{k}={values[k]!r}' for k in bad)}."
        )
    return {k: float(v) for k, v in values.items()}


def as_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    values = as_mapping(tags, "tags")
    bad = [k for k, v in values.items() if not isinstance(v, str)]
    if bad:
        raise ArgumentError(
            "The 'tags' parameter of ModelRegistry.register must map names to strings. "
            f"Not strings: {format_names(f'{k}={values[k]!r}' for k in bad)}."
        )
    return values


def comparable(lib: str, version: str | None) -> str | None:
    """Python is compared on major.minor, the libraries on their full version."""
    if version is None or lib != "python":
        return version
    return ".".join(version.split(".")[:2])

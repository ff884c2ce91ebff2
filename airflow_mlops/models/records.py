"""The model registry's records: name and version rules, library versions, field checks.

What :class:`airflow_mlops.models.registry.ModelRegistry` validates before it writes a record,
and how it compares the libraries a model was saved with to the running ones.
"""

from __future__ import annotations

import json
import platform
import re
from typing import TYPE_CHECKING, Any

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError, format_names

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


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

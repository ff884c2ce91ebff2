"""Model artifacts as bytes: joblib dump and load, one place for both.

Loading unpickles, and unpickling runs code: callers pass only bytes whose SHA-256 they
have verified (the registry does, before anything reaches :func:`load_model`).
"""

from __future__ import annotations

import io
from typing import Any

from airflow_mlops.exceptions import ArgumentError, ModelLoadError


def dump_model(model: Any) -> bytes:
    """``model`` as joblib bytes."""
    import joblib

    buffer = io.BytesIO()
    try:
        joblib.dump(model, buffer)
    except Exception as exc:  # pickling runs arbitrary __reduce__ code
        raise ArgumentError(
            f"The model could not be serialised with joblib ({exc!r}). Register a plain "
            "scikit-learn estimator or pipeline (no lambdas, open files or connections)."
        ) from exc
    return buffer.getvalue()


def load_model(payload: bytes, *, what: str = "The model artifact") -> Any:
    """The model in ``payload``: joblib bytes whose checksum the caller has verified."""
    import joblib

    try:
        return joblib.load(io.BytesIO(payload))
    except Exception as exc:  # unpickling may raise anything
        raise ModelLoadError(
            f"{what} ({len(payload):,} bytes) passed its checksum but could not be "
            f"unpickled ({exc!r}). Check the installed libraries against its record, or "
            "re-register the model from a clean joblib dump."
        ) from exc

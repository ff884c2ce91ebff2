"""Compiled tree models: a faster runtime, chosen only after checking it agrees.

The final ``HistGradientBoostingClassifier`` of a pipeline is imported with treelite and
compiled with tl2cgen to a shared library. :func:`compile_tree_model` compares the compiled
probabilities with scikit-learn's on check rows (and on copies with missing values, to
exercise NaN routes) and returns the original model whenever anything is unsupported,
missing or different: scikit-learn is the always-correct fallback. The column transformer
stays scikit-learn's, and for Arrow input also gets a numpy form
(:mod:`airflow_mlops.models.column_transform`) when that is bit-identical on the check rows.
Needs the optional ``accel`` extra (treelite, tl2cgen) and gcc.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from airflow_mlops.models.column_transform import ArrowColumnTransformer

#: Largest ``|P_compiled - P_scikit-learn|`` that ``compile_tree_model`` accepts.
COMPILED_TOLERANCE = 1e-12
#: The compiled runtime's name, and its key in a registry record's ``runtimes``.
COMPILED_RUNTIME = "tl2cgen"
#: Rows of a deterministic sample that the registration and scoring checks compare.
CHECK_ROWS = 2_000


@dataclass(frozen=True)
class CompilationCheck:
    """What ``compile_tree_model`` chose, and the evidence.

    :ivar runtime: ``"tl2cgen"`` (compiled) or ``"scikit-learn"`` (the fallback).
    :ivar rows_checked: rows compared (the check rows plus copies with missing values).
    :ivar max_abs_diff: largest probability difference seen (None if not compared).
    :ivar reason: why the fallback was chosen, or what was verified.
    :ivar decisions_differing: check rows whose decision at ``threshold`` differs (None
        without a threshold or a comparison); 0 whenever ``runtime`` is ``"tl2cgen"``.
    :ivar preprocess: what computes the column transformer for Arrow input: ``"numpy"``
        (verified bit-identical to scikit-learn, see ``reason``), ``"scikit-learn"`` or
        ``"none"`` (no preprocessing steps). Not in registry records (``reason`` says it).
    """

    runtime: str
    rows_checked: int
    max_abs_diff: float | None
    tolerance: float
    reason: str
    decisions_differing: int | None = None
    preprocess: str = "scikit-learn"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class CompiledTreeModel:
    """A pipeline whose final ``HistGradientBoostingClassifier`` runs as compiled C code.

    The trees are imported by treelite and compiled by tl2cgen into a shared library; the
    preceding steps (column transformer) still run in scikit-learn for ``predict_proba``
    (the scikit-learn contract), while :meth:`arrow_matrix` computes them from Arrow columns
    with numpy when a verified ``arrow_preprocess`` exists. Pickles with the library's bytes,
    so worker processes load it like any model. Native threads follow the OpenMP limit in
    force at the first call (one per scoring worker). Build it with
    :func:`compile_tree_model`, which verifies it.
    """

    def __init__(
        self,
        preprocess: Any | None,
        library: bytes,
        arrow_preprocess: ArrowColumnTransformer | None = None,
    ) -> None:
        self.preprocess = preprocess
        self.library = library
        self.arrow_preprocess = arrow_preprocess
        self._predictor: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "preprocess": self.preprocess,
            "library": self.library,
            "arrow_preprocess": self.arrow_preprocess,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["preprocess"], state["library"], state.get("arrow_preprocess")
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        import numpy as np

        matrix = self.preprocess.transform(X) if self.preprocess is not None else X
        positive = self.positive_probability(np.asarray(matrix, dtype=np.float64))
        return np.column_stack([1.0 - positive, positive])

    def arrow_matrix(self, batch: pa.RecordBatch) -> np.ndarray | None:
        """``batch`` transformed by the verified numpy column transformer, or None when there
        is none or it leaves this batch to scikit-learn (then call :meth:`predict_proba` on
        the batch as pandas)."""
        if self.arrow_preprocess is None:
            return None
        return self.arrow_preprocess.transform(batch)

    def positive_probability(self, matrix: np.ndarray) -> np.ndarray:
        """``P(class 1)`` for rows already transformed by the preprocessing steps."""
        import numpy as np
        import tl2cgen

        if self._predictor is None:
            self._predictor = self._load()
        dmatrix = tl2cgen.DMatrix(np.ascontiguousarray(matrix, dtype=np.float64))
        return np.asarray(self._predictor.predict(dmatrix), dtype=np.float64).reshape(-1)

    def _load(self) -> Any:
        import os
        import tempfile

        import tl2cgen

        handle, path = tempfile.mkstemp(prefix="airflow_mlops_trees_", suffix=".so")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(self.library)
            return tl2cgen.Predictor(path, nthread=_openmp_threads())
        finally:
            os.remove(path)  # the loaded library stays mapped


def _openmp_threads() -> int:
    import os

    from threadpoolctl import threadpool_info

    limits = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "openmp"]
    return min(limits) if limits else os.cpu_count() or 1


def compile_tree_model(
    model: Any,
    check_frame: pd.DataFrame,
    *,
    tolerance: float = COMPILED_TOLERANCE,
    threshold: float | None = None,
    toolchain: str = "gcc",
) -> tuple[Any, CompilationCheck]:
    """``model`` compiled with treelite + tl2cgen if that verifiably gives its outputs.

    Meant for registration time. The compiled model is kept only if, on ``check_frame``
    plus copies of it with each numeric input set to NaN in turn (the trees' missing-value
    routes), every ``P(class 1)`` is within ``tolerance`` of scikit-learn's (and, with
    ``threshold``, every decision is the same). Otherwise — unsupported model, treelite or
    tl2cgen or the C compiler missing, a difference — ``model`` itself is returned, with the
    reason. Supported: a ``HistGradientBoostingClassifier`` with two classes and no
    categorical splits, alone or last in a ``Pipeline``.

    A compiled model's preprocessing steps also get their numpy form for Arrow input
    (:func:`~airflow_mlops.models.column_transform.verified_arrow_transformer`) if it is
    bit-identical to scikit-learn's on ``check_frame`` (as Arrow) and its missing-value copies;
    the check's ``preprocess`` and ``reason`` say whether it was kept, and why not.
    """
    preprocess, final = _split_pipeline(model)

    def fallback(reason: str) -> tuple[Any, CompilationCheck]:
        return model, CompilationCheck("scikit-learn", 0, None, tolerance, reason)

    unsupported = _unsupported_reason(final)
    if unsupported:
        return fallback(unsupported)
    if len(check_frame) == 0:
        return fallback("no check rows: nothing to compare the compiled model with")
    try:
        matrix = _with_missing_values(
            preprocess.transform(check_frame) if preprocess is not None else check_frame
        )
        expected = final.predict_proba(matrix)[:, 1]
        compiled = CompiledTreeModel(preprocess, _compile_library(final, toolchain))
        actual = compiled.positive_probability(matrix)
    except Exception as exc:  # any failure means: keep scikit-learn
        return fallback(f"compilation or check failed: {type(exc).__name__}: {exc}")
    chosen, check = _verdict(model, compiled, expected, actual, tolerance, threshold)
    if chosen is not compiled:
        return chosen, check
    return compiled, _with_arrow_preprocess(compiled, check, check_frame)


def _with_arrow_preprocess(
    compiled: CompiledTreeModel, check: CompilationCheck, check_frame: pd.DataFrame
) -> CompilationCheck:
    """Give ``compiled`` the numpy column transformer if it verifies on ``check_frame``; the
    check says which runs."""
    import dataclasses

    from airflow_mlops.models.column_transform import verified_arrow_transformer

    if compiled.preprocess is None:
        return dataclasses.replace(check, preprocess="none")
    transformer, why = verified_arrow_transformer(compiled.preprocess, check_frame)
    compiled.arrow_preprocess = transformer
    if transformer is None:
        reason = f"{check.reason}; the column transformer stays scikit-learn's: {why}"
        return dataclasses.replace(check, reason=reason, preprocess="scikit-learn")
    reason = f"{check.reason}; the column transformer runs in numpy, {why}"
    return dataclasses.replace(check, reason=reason, preprocess="numpy")


def registration_check(
    model: Any, check_frame: pd.DataFrame, *, threshold: float | None
) -> dict[str, Any]:
    """``{"tl2cgen": {"verified", "tolerance", "rows_checked", "max_abs_diff",
    "decisions_differing", "reason"}}``: the JSON entry for a registry record's ``runtimes``.

    Runs :func:`compile_tree_model` on ``check_frame`` and keeps only its verdict (the
    library is machine-specific: scoring compiles again). Never raises: a failure is an
    unverified runtime with its reason.
    """
    try:
        _, check = compile_tree_model(model, check_frame, threshold=threshold)
    except Exception as exc:  # the check must never fail a training run
        reason = f"check failed: {type(exc).__name__}: {exc}"
        check = CompilationCheck("scikit-learn", 0, None, COMPILED_TOLERANCE, reason)
    return {COMPILED_RUNTIME: {"verified": check.runtime == COMPILED_RUNTIME, **_evidence(check)}}


def runtime_summary(check: CompilationCheck) -> dict[str, Any]:
    """The runtime ``check`` chose (``"tl2cgen"`` or ``"sklearn"``) and its evidence, JSON-safe."""
    name = COMPILED_RUNTIME if check.runtime == COMPILED_RUNTIME else "sklearn"
    return {"name": name, **_evidence(check)}


def unverified_reason(record: Mapping[str, Any]) -> str | None:
    """Why a registry record does not allow the compiled runtime; None if it does."""
    runtimes = record.get("runtimes")  # absent from records of older versions
    entry = runtimes.get(COMPILED_RUNTIME) if isinstance(runtimes, dict) else None
    if not isinstance(entry, dict):
        return (
            f"the model's record has no {COMPILED_RUNTIME} check (registered without "
            "runtime checks)"
        )
    if entry.get("verified") is not True:
        return f"{COMPILED_RUNTIME} was not verified at registration: {entry.get('reason')}"
    return None


def _evidence(check: CompilationCheck) -> dict[str, Any]:
    diff = check.max_abs_diff
    return {
        "tolerance": check.tolerance,
        "rows_checked": check.rows_checked,
        "max_abs_diff": diff if diff is not None and math.isfinite(diff) else None,
        "decisions_differing": check.decisions_differing,
        "reason": check.reason,
    }


def _split_pipeline(model: Any) -> tuple[Any | None, Any]:
    steps = getattr(model, "steps", None)
    if not steps:
        return None, model
    if len(steps) == 1:
        return None, steps[0][1]
    return model[:-1], steps[-1][1]


def _unsupported_reason(final: Any) -> str | None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not isinstance(final, HistGradientBoostingClassifier):
        return f"{type(final).__name__} is not a HistGradientBoostingClassifier"
    if len(final.classes_) != 2:
        return f"{len(final.classes_)} classes; only binary classifiers are compiled"
    if getattr(final, "is_categorical_", None) is not None and final.is_categorical_.any():
        return "native categorical splits are not compiled"
    try:
        import tl2cgen  # noqa: F401
        import treelite  # noqa: F401
    except ImportError as exc:
        return f"treelite/tl2cgen not installed ({exc})"
    return None


def _with_missing_values(matrix: Any) -> np.ndarray:
    """``matrix`` followed by copies with column j set to NaN in every row, for each j."""
    import numpy as np

    base = np.asarray(matrix, dtype=np.float64)
    copies = [base]
    for column in range(base.shape[1]):
        copy = base.copy()
        copy[:, column] = np.nan
        copies.append(copy)
    return np.vstack(copies)


def _compile_library(final: Any, toolchain: str) -> bytes:
    import os
    import tempfile

    import tl2cgen
    import treelite

    trees = treelite.sklearn.import_model(final)
    with tempfile.TemporaryDirectory(prefix="airflow_mlops_compile_") as workdir:
        path = os.path.join(workdir, "trees.so")
        tl2cgen.export_lib(
            trees, toolchain=toolchain, libpath=path,
            params={"parallel_comp": os.cpu_count() or 1},
        )  # fmt: skip
        with open(path, "rb") as file:
            return file.read()


def _verdict(
    model: Any,
    compiled: CompiledTreeModel,
    expected: np.ndarray,
    actual: np.ndarray,
    tolerance: float,
    threshold: float | None,
) -> tuple[Any, CompilationCheck]:
    import numpy as np

    rows = len(expected)
    if actual.shape != expected.shape:
        reason = f"compiled output has shape {actual.shape}, scikit-learn's {expected.shape}"
        return model, CompilationCheck("scikit-learn", rows, None, tolerance, reason)
    diff = float(np.max(np.abs(actual - expected))) if rows else 0.0
    flipped = None
    if threshold is not None:
        flipped = int(np.count_nonzero((actual > threshold) != (expected > threshold)))

    def check(runtime: str, reason: str) -> CompilationCheck:
        return CompilationCheck(runtime, rows, diff, tolerance, reason, flipped)

    if not np.isfinite(diff) or diff > tolerance:
        reason = f"compiled probabilities differ by up to {diff!r} (tolerance {tolerance!r})"
        return model, check("scikit-learn", reason)
    if flipped:
        reason = f"{flipped} decision(s) at threshold {threshold} differ"
        return model, check("scikit-learn", reason)
    reason = f"{rows} rows (with missing-value copies) within {tolerance!r} of scikit-learn"
    return compiled, check("tl2cgen", reason)

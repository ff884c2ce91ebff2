"""Which runtime scores a model: the compiled tree runtime when the registry verified it and a
check here agrees, else scikit-learn. Batch scoring (:mod:`airflow_mlops.scoring.job`) and
online serving choose it the same way, so they score with the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from airflow_mlops.models.accelerate import CompilationCheck
    from airflow_mlops.models.records import ModelRecord


def compiled_runtime(
    model: Callable[[], Any],
    record: ModelRecord,
    check_rows: Callable[[], pd.DataFrame],
    *,
    requested: str,
    threshold: float,
) -> tuple[Any | None, CompilationCheck]:
    """The model compiled by tl2cgen, if ``requested="auto"``, its record allows it and it
    verifies on ``check_rows``; else ``None``, with the check saying why (scikit-learn).

    The shared library is machine-specific, so it is compiled here and checked against
    scikit-learn (never stored).

    :param model: gives the verified, unpickled model (called only when compiling).
    :param record: the version's registry record (its ``runtimes`` check).
    :param check_rows: gives the rows to check on, as scoring gives them to models (called
        only when compiling).
    :param requested: ``"auto"`` or ``"sklearn"``.
    :param threshold: the decision threshold; a flipped decision refuses the compiled model.
    """
    from airflow_mlops.models.accelerate import (
        COMPILED_RUNTIME,
        COMPILED_TOLERANCE,
        CompilationCheck,
        compile_tree_model,
        unverified_reason,
    )

    if requested == "sklearn":
        reason: str | None = "runtime='sklearn' was requested"
    else:
        reason = unverified_reason(record)
    if reason is not None:
        return None, CompilationCheck("scikit-learn", 0, None, COMPILED_TOLERANCE, reason)
    compiled, check = compile_tree_model(model(), check_rows(), threshold=threshold)
    return (compiled if check.runtime == COMPILED_RUNTIME else None), check

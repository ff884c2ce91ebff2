"""Drift statistics on binned distributions.

Only the population stability index for now: ``psi`` compares two histograms that share
the same bins (``histogram_counts`` makes them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def histogram_counts(values: npt.ArrayLike, edges: npt.ArrayLike) -> np.ndarray:
    """Counts of ``values`` per bin; bins are ``[e0, e1), … [e(n-1), en]`` (last one closed).

    Values outside ``[edges[0], edges[-1]]`` and NaN are not counted.
    """
    import numpy as np

    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=np.asarray(edges))
    return counts.astype(np.int64)


def psi(
    expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike, *, epsilon: float = 1e-4
) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` over bin proportions.

    Counts are turned into proportions of their totals; proportions below ``epsilon``
    (empty bins, which would make the index infinite) are raised to ``epsilon`` in both
    histograms, without renormalising. Identical histograms give exactly 0; every term is
    non-negative. Common reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 large shift.

    :param expected_counts: counts per bin of the reference distribution.
    :param actual_counts: counts per bin of the compared distribution, same bins.
    :param epsilon: floor for proportions, in ``(0, 1)``.
    """
    import numpy as np

    if not (isinstance(epsilon, int | float) and 0 < epsilon < 1):
        raise ArgumentError(f"The 'epsilon' parameter of psi must be in (0, 1). Got {epsilon!r}.")
    expected = np.asarray(expected_counts, dtype=np.float64)
    actual = np.asarray(actual_counts, dtype=np.float64)
    if expected.ndim != 1 or expected.shape != actual.shape or expected.size == 0:
        raise ArgumentError(
            "psi needs two 1-d count arrays over the same bins. Got shapes "
            f"{expected.shape} and {actual.shape}."
        )
    for name, counts in (("expected_counts", expected), ("actual_counts", actual)):
        if not np.all(np.isfinite(counts)) or np.any(counts < 0) or counts.sum() <= 0:
            raise ArgumentError(
                f"The '{name}' parameter of psi must be finite non-negative counts with a "
                "positive total. Got " + np.array2string(counts, threshold=10) + "."
            )
    e = np.maximum(expected / expected.sum(), epsilon)
    a = np.maximum(actual / actual.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))

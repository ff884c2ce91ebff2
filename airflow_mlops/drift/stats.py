"""Drift statistics: two distributions compared, the effect size and the test.

Plain functions on numbers and count vectors (the reference profiles and ``compare`` in
:mod:`airflow_mlops.drift.profile` feed them): the population stability index ``psi`` on two
histograms over the same bins (``histogram_counts`` makes them), the Kolmogorov–Smirnov
statistic of two bucketed distributions and its p-value, Wasserstein, chi-square / G /
Fisher tests and Jensen–Shannon for categories, Benjamini–Hochberg correction and the
warn/fail verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def ks_from_counts(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Kolmogorov–Smirnov statistic of two histograms over the same ordered buckets.

    ``max |F_ref - F_cur|`` taken at the bucket boundaries, so it never exceeds the statistic
    of the underlying data and falls short of it by at most the largest single-bucket
    proportion of either side (:func:`ks_bucket_error_bound`).
    """
    import numpy as np

    ref = np.cumsum(np.asarray(reference_counts, dtype=np.float64))
    cur = np.cumsum(np.asarray(current_counts, dtype=np.float64))
    return float(np.max(np.abs(ref / ref[-1] - cur / cur[-1])))


def ks_bucket_error_bound(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """How far :func:`ks_from_counts` can fall below the KS statistic of the raw data."""
    import numpy as np

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    return float(max(np.max(ref / ref.sum()), np.max(cur / cur.sum())))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided KS p-value from Smirnov's asymptotic distribution, as ``scipy.stats.ks_2samp``
    computes it with ``method="asymp"`` (``kstwo.sf(d, round(n·m / (n + m)))``).

    scipy uses this for samples over 10,000; the sketch path of
    :func:`airflow_mlops.drift.compare.compare` only runs on columns larger than the profile's
    ``sample_size`` (100,000 by default), so it rarely meets smaller ones.
    """
    import numpy as np
    from scipy.stats import kstwo

    en = max(np.round(float(n) * float(m) / (float(n) + float(m))), 1.0)
    return float(np.clip(kstwo.sf(statistic, en), 0.0, 1.0))


def wasserstein_from_counts(
    points: npt.ArrayLike, reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> float:
    """First Wasserstein distance between two weighted point sets on the same ``points``."""
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(points, points, reference_counts, current_counts))


def chi2_homogeneity(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, *, g_test: bool = False
) -> tuple[float, float]:
    """Chi-square (or G) test that two count vectors come from one distribution.

    The 2×k contingency table without its empty categories; fewer than two categories left
    means nothing to test: ``(0.0, 1.0)``.
    """
    import numpy as np
    from scipy.stats import chi2_contingency

    table = np.array([reference_counts, current_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False, lambda_="log-likelihood" if g_test else None)
    return float(result.statistic), float(result.pvalue)


def fisher_2x2(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float]:
    """Fisher's exact test on two categories: ``(odds ratio, p-value)``."""
    import numpy as np
    from scipy.stats import fisher_exact

    table = np.array([reference_counts, current_counts], dtype=np.int64)
    result = fisher_exact(table)
    return float(result.statistic), float(result.pvalue)


def jensen_shannon(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Jensen–Shannon distance (square root of the divergence, base 2): 0 same, 1 disjoint."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    return float(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2.0))


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (the step-up FDR procedure); ``None`` is skipped.

    With the ``m`` non-missing p-values sorted ascending, the ``i``-th adjusted value is
    ``min over j >= i of p_(j) · m / j``, capped at 1 — what
    ``scipy.stats.false_discovery_control(method="bh")`` returns.
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 1.0
    m = len(present)
    for rank, (p, index) in reversed(list(enumerate(sorted(present), start=1))):
        running = min(running, p * m / rank)
        adjusted[index] = running
    return adjusted


def verdict(effect_size: float, thresholds: tuple[float, float]) -> str:
    """``"fail"`` at or above the fail threshold, ``"warn"`` at or above warn, else ``"ok"``."""
    warn, fail = thresholds
    if effect_size >= fail:
        return "fail"
    return "warn" if effect_size >= warn else "ok"


def check_thresholds(thresholds: object, *, what: str) -> tuple[float, float]:
    """``thresholds`` as a validated ``(warn, fail)`` pair with ``0 <= warn <= fail``."""
    if (
        isinstance(thresholds, tuple | list)
        and len(thresholds) == 2
        and all(isinstance(t, int | float) and not isinstance(t, bool) for t in thresholds)
        and 0 <= thresholds[0] <= thresholds[1]
    ):
        return float(thresholds[0]), float(thresholds[1])
    raise ArgumentError(
        f"The thresholds of {what} must be a pair (warn, fail) of numbers with "
        f"0 <= warn <= fail. Got {thresholds!r} instead."
    )

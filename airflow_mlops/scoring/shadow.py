"""Champion/challenger shadow scoring: which rows to shadow, and how the two models compare.

``shadow_mask`` picks a deterministic share of entities (the same keys give the same rows on
every rerun and in every process); ``ShadowComparison`` accumulates the comparison batch by
batch in memory that does not grow with the row count.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_int, check_number
from airflow_mlops.drift.stats import histogram_counts, psi
from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from airflow_mlops.models.records import ModelOutput

_MASK64 = (1 << 64) - 1


def _splitmix64_int(x: int) -> int:
    """splitmix64's finaliser on one Python int (used for the seed)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic)."""
    import numpy as np

    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def key_hashes(keys: pa.Array | pa.ChunkedArray, *, seed: int = 0) -> np.ndarray:
    """A uint64 hash per key, stable across runs, processes and machines.

    Integer keys: splitmix64 of the key's 64-bit two's-complement value xor a seed-derived
    word (vectorised). String keys: BLAKE2b-64 of the UTF-8 bytes keyed by the seed (a
    Python loop, ≈ 1 µs a key). Null keys hash to 0.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    seed_word = np.uint64(_splitmix64_int(seed & _MASK64))
    if pt.is_integer(keys.type):
        values = keys.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        hashes = _splitmix64(values.view(np.uint64) ^ seed_word)
    elif pt.is_string(keys.type) or pt.is_large_string(keys.type):
        salt = seed.to_bytes(16, "little", signed=True)
        hashes = np.fromiter(
            (
                0
                if key is None
                else int.from_bytes(
                    hashlib.blake2b(key.encode(), digest_size=8, key=salt).digest(), "little"
                )
                for key in keys.to_pylist()
            ),
            dtype=np.uint64,
            count=len(keys),
        )
    else:
        raise ArgumentError(
            f"Shadow keys must be an integer or string column. Got {keys.type}; cast the "
            "entity key to int64 or string."
        )
    if keys.null_count:
        hashes[np.asarray(keys.is_null())] = 0
    return hashes


def shadow_mask(
    keys: pa.Array | pa.ChunkedArray, fraction: float, *, seed: int = 0
) -> pa.BooleanArray:
    """Which rows go to the challenger: deterministic per key, about ``fraction`` of them.

    A key is chosen when the top 53 bits of its hash (:func:`key_hashes`), read as a number
    in ``[0, 1)``, are below ``fraction``: 1.0 chooses every non-null key, 0.0 none. Null
    keys are never chosen. Changing ``seed`` draws a different, independent sample.

    :param keys: the entity key column (integer or string).
    :param fraction: share of keys to choose, in ``[0, 1]``.
    :param seed: a non-negative integer.
    """
    import numpy as np
    import pyarrow as pa

    fraction = check_number(fraction, "fraction", "shadow_mask", low=0.0, high=1.0)
    seed = check_int(seed, "seed", "shadow_mask", min_value=0)
    uniform = (key_hashes(keys, seed=seed) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    chosen = uniform < fraction
    if keys.null_count:
        chosen &= ~np.asarray(keys.is_null())
    return pa.array(chosen, type=pa.bool_())


def _as_numpy(values: Any) -> np.ndarray:
    import numpy as np

    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return np.asarray(values)


def _percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


class ShadowComparison:
    """Compares champion and challenger outputs on the same rows, batch by batch.

    Memory is fixed: running sums, a histogram of ``|delta|`` with ``delta_bins`` equal bins
    over ``[0, 1]`` (p95 is the upper edge of the bin holding the 95th percentile, so it
    over-states the exact inverted-CDF percentile by less than ``1 / delta_bins``), two score
    histograms with ``psi_bins`` equal bins over ``[0, 1]`` for the PSI, and one latency
    entry per batch and model (batches are few).

    :param delta_bins: bins of the ``|delta|`` histogram (resolution ``1 / delta_bins``).
    :param psi_bins: bins of the score histograms the PSI is computed on.
    """

    def __init__(self, *, delta_bins: int = 100_000, psi_bins: int = 20) -> None:
        import numpy as np

        self.delta_bins = check_int(delta_bins, "delta_bins", "ShadowComparison")
        psi_bins = check_int(psi_bins, "psi_bins", "ShadowComparison")
        self.psi_edges = np.linspace(0.0, 1.0, psi_bins + 1)
        self.rows = 0
        self.agreements = 0
        self._abs_delta_sum = 0.0
        self._delta_counts = np.zeros(delta_bins, dtype=np.int64)
        self._champion_counts = np.zeros(psi_bins, dtype=np.int64)
        self._challenger_counts = np.zeros(psi_bins, dtype=np.int64)
        self._latencies: dict[str, list[tuple[float, int]]] = {}

    def update(
        self,
        champion_scores: Any,
        challenger_scores: Any,
        champion_decisions: Any,
        challenger_decisions: Any,
    ) -> None:
        """Add one batch of paired outputs (Arrow arrays, numpy arrays or lists, same rows)."""
        import numpy as np

        champion = _as_numpy(champion_scores).astype(np.float64, copy=False)
        challenger = _as_numpy(challenger_scores).astype(np.float64, copy=False)
        champion_dec = _as_numpy(champion_decisions)
        challenger_dec = _as_numpy(challenger_decisions)
        lengths = {len(champion), len(challenger), len(champion_dec), len(challenger_dec)}
        if len(lengths) != 1:
            raise ArgumentError(
                "ShadowComparison.update needs four arrays of the same length (one entry per "
                f"row). Got lengths {len(champion)}, {len(challenger)}, {len(champion_dec)}, "
                f"{len(challenger_dec)}."
            )
        for name, scores in (("champion", champion), ("challenger", challenger)):
            if scores.size and not (np.all(scores >= 0.0) and np.all(scores <= 1.0)):
                raise ArgumentError(
                    f"The {name} scores must be probabilities in [0, 1] (no NaN). Got values "
                    f"from {np.nanmin(scores)!r} to {np.nanmax(scores)!r}."
                )
        abs_delta = np.abs(champion - challenger)
        self.rows += len(champion)
        self.agreements += int(np.count_nonzero(champion_dec == challenger_dec))
        self._abs_delta_sum += float(abs_delta.sum())
        bins = np.minimum((abs_delta * self.delta_bins).astype(np.int64), self.delta_bins - 1)
        self._delta_counts += np.bincount(bins, minlength=self.delta_bins)
        self._champion_counts += histogram_counts(champion, self.psi_edges)
        self._challenger_counts += histogram_counts(challenger, self.psi_edges)

    def add_latency(self, model: str, seconds: float, rows: int) -> None:
        """Record that ``model`` scored one batch of ``rows`` rows in ``seconds``."""
        if not (math.isfinite(seconds) and seconds >= 0) or rows < 0:
            raise ArgumentError(
                f"add_latency needs seconds >= 0 and rows >= 0. Got {seconds!r} and {rows!r}."
            )
        self._latencies.setdefault(model, []).append((float(seconds), int(rows)))

    def _p95_abs_delta(self) -> float | None:
        import numpy as np

        if not self.rows:
            return None
        rank = math.ceil(0.95 * self.rows)
        index = int(np.searchsorted(np.cumsum(self._delta_counts), rank))
        return (index + 1) / self.delta_bins

    def report(self) -> dict[str, Any]:
        """The comparison so far, JSON-serialisable, with the bin definitions used."""
        rows = self.rows
        latency = {}
        for model, entries in self._latencies.items():
            seconds = [s for s, _ in entries]
            total_rows = sum(r for _, r in entries)
            latency[model] = {
                "batches": len(entries),
                "rows": total_rows,
                "seconds": math.fsum(seconds),
                "batch_seconds_p50": _percentile(seconds, 50),
                "batch_seconds_p95": _percentile(seconds, 95),
            }
        has_scores = bool(self._champion_counts.sum() and self._challenger_counts.sum())
        return {
            "rows_compared": rows,
            "mean_abs_delta": self._abs_delta_sum / rows if rows else None,
            "p95_abs_delta": self._p95_abs_delta(),
            "decision_agreement_rate": self.agreements / rows if rows else None,
            "psi": psi(self._champion_counts, self._challenger_counts) if has_scores else None,
            "latency": latency,
            "bins": {
                "abs_delta": {
                    "range": [0.0, 1.0],
                    "bins": self.delta_bins,
                    "resolution": 1.0 / self.delta_bins,
                    "p95_rule": "upper edge of the bin holding the ceil(0.95 * n)-th |delta|",
                },
                "score": {
                    "edges": [float(e) for e in self.psi_edges],
                    "champion_counts": [int(c) for c in self._champion_counts],
                    "challenger_counts": [int(c) for c in self._challenger_counts],
                    "psi_expected": "champion",
                    "psi_epsilon": 1e-4,
                },
            },
        }


class ShadowScorer:
    """Scores a challenger on a deterministic sample of the rows the champion scored.

    Fed batch by batch beside the champion (:meth:`observe`), it scores the sampled rows
    in this process, compares them with the champion's outputs for the same rows and
    writes the challenger's outputs to ``sink`` (a Parquet file). It never touches the
    champion's output; its own failure is recorded in :attr:`error` and stops shadowing,
    nothing more.

    :param model: the challenger (already verified and loaded).
    :param sink: a :class:`pyarrow.parquet.ParquetWriter`-like object with ``write_batch``.
    :param fraction: the share of entities scored (by a seeded hash of the entity key).
    :param feature_names: the challenger's input columns, in its contract's order.
    :param output: the challenger's output columns; the champion's outputs are compared by
        the same score and decision column names.
    """

    def __init__(
        self,
        model: Any,
        *,
        sink: Any,
        fraction: float,
        seed: int,
        feature_names: list[str],
        output: ModelOutput,
    ) -> None:
        self.model = model
        self.sink = sink
        self.fraction = fraction
        self.seed = seed
        self.feature_names = feature_names
        self.output = output
        self.comparison = ShadowComparison()
        self.error: str | None = None
        self.rows_written = 0

    def observe(self, features: pa.RecordBatch, champion: pa.RecordBatch, seconds: float) -> None:
        """Shadow one batch: ``features`` in, the champion's ``champion`` outputs for them."""
        if self.error is not None:
            return
        from airflow_mlops.scoring.batches import score_batches

        score, decision = self.output.score_column, self.output.decision_column
        try:
            self.comparison.add_latency("champion", seconds, champion.num_rows)
            mask = shadow_mask(
                features.column(self.output.entity_key), self.fraction, seed=self.seed
            )
            sample = features.filter(mask)
            if not sample.num_rows:
                return
            (scored,) = score_batches(
                [sample], model=self.model, feature_names=self.feature_names, output=self.output
            )
            paired = champion.filter(mask)
            self.comparison.add_latency("challenger", scored.seconds, sample.num_rows)
            self.comparison.update(
                paired.column(score),
                scored.batch.column(score),
                paired.column(decision),
                scored.batch.column(decision),
            )
            self.sink.write_batch(scored.batch)
            self.rows_written += scored.batch.num_rows
        except Exception as exc:  # the challenger must never fail the champion
            self.error = f"{type(exc).__name__}: {exc}"

    def report(self) -> dict[str, Any]:
        """The comparison, plus ``status`` (``ok`` or ``failed``) and any error."""
        return {
            "status": "failed" if self.error else "ok",
            "error": self.error,
            "fraction": self.fraction,
            "seed": self.seed,
            **self.comparison.report(),
        }

"""Benchmark: one model call, ``scoring.batches.probabilities(model, batch)``, on the demo model.

The demo pipeline (``airflow_mlops.demo.synthetic``: 5,000 synthetic customers, the demo's
champion grid point) compiled by ``compile_tree_model`` on its first 2,000 rows, then
scored on batches of 1, 16, 64 and 256 other rows:

- ``before``: the compiled trees behind scikit-learn's column transformer (the batch padded
  to 64 rows, converted to pandas, ``ColumnTransformer.transform``, the trees);
- ``after``: the same compiled model with its verified numpy column transformer (Arrow
  columns → numpy → the trees, no pandas, no scikit-learn call).

The two are called alternately, ``--calls`` times each per batch size; the table gives the
best and the median call in milliseconds and checks that both gave the same bits. The
compiled trees run on as many OpenMP threads as the limit in force (``OMP_NUM_THREADS``,
else one per core): on a busy machine a parallel region waits for a descheduled thread, so
medians there say more with ``OMP_NUM_THREADS=1``.

    .venv/bin/python benchmarks/model_call.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/model_call.py --calls 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

SIZES = (1, 16, 64, 256)


def _timed(model: Any, batch: Any) -> tuple[float, bytes]:
    from airflow_mlops.scoring.batches import probabilities

    start = time.perf_counter()
    scores = probabilities(model, batch)
    return time.perf_counter() - start, scores.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per model and size")
    args = parser.parse_args()

    from airflow_mlops.demo.credit_model import INPUT_CONTRACT
    from airflow_mlops.demo.synthetic import fitted_demo_model, synthetic_customers
    from airflow_mlops.models.accelerate import CompiledTreeModel, compile_tree_model

    customers = synthetic_customers(5_000)
    model = fitted_demo_model(customers)
    check = customers.slice(0, 2_000).select(INPUT_CONTRACT.names).to_pandas()
    after, verdict = compile_tree_model(model, check, threshold=0.3)
    if verdict.preprocess != "numpy":
        raise SystemExit(f"not compiled with the numpy column transformer: {verdict.reason}")
    before = CompiledTreeModel(after.preprocess, after.library)
    rows = customers.slice(2_000).select(INPUT_CONTRACT.names).combine_chunks().to_batches()[0]

    from threadpoolctl import threadpool_info

    threads = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "openmp"]
    print(
        f"probabilities(model, batch), demo model, {args.calls} calls each (ms), "
        f"OpenMP threads {min(threads) if threads else '?'}, {os.cpu_count()} CPUs\n"
    )
    print("| rows | before best | before median | after best | after median | same bits |")
    print("|-----:|------------:|--------------:|-----------:|-------------:|:---------:|")
    for size in SIZES:
        batch = rows.slice(0, size)
        times: dict[str, list[float]] = {"before": [], "after": []}
        outputs = set()
        for _ in range(args.calls):
            for name, scorer in (("before", before), ("after", after)):
                seconds, bits = _timed(scorer, batch)
                times[name].append(seconds * 1e3)
                outputs.add(bits)
        cells = [f"{f(times[n]):.3f}" for n in times for f in (min, statistics.median)]
        print(f"| {size} | {' | '.join(cells)} | {'yes' if len(outputs) == 1 else 'NO'} |")


if __name__ == "__main__":
    main()

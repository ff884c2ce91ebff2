"""``airflow-mlops serve`` in one process or in two (``--workers 2``), REST at 64 connections.

A supplement to ``benchmarks/serving.py`` (run that first: it builds the served world and the
request bodies in ``var/bench/serving``): the same server, the same wrk load and bodies, one
worker against two, raw-feature and key-lookup requests, paired rounds (each server idle
while the other is measured), 3 s of warm-up then 10 s measured per cell.

.. code-block:: bash

    .venv/bin/python benchmarks/serving.py --write-docs
    .venv/bin/python benchmarks/serving_workers.py --write-docs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import date
from pathlib import Path
from typing import Any

from benchdocs import publish
from serving_load import run_wrk
from serving_servers import start_ours, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Online serving: one process or two"
CONNECTIONS = 64


def measure(servers: list[Any], workdir: Path, rounds: int, seconds: float) -> dict[str, Any]:
    """(flavor → server → list of (req/s, p99 ms)) over ``rounds`` interleaved rounds."""
    results: dict[str, Any] = {}
    for _ in range(rounds):
        for flavor in ("ours-raw", "ours-key"):
            bodies = workdir / f"bodies-{flavor}.jsonl"
            for server in servers:
                run_wrk(server.http_port, flavor, bodies, CONNECTIONS, 3)  # warm-up
                run = run_wrk(server.http_port, flavor, bodies, CONNECTIONS, seconds)
                cell = (run["requests"] / run["seconds"], run["p99_us"] / 1000, run["errors"])
                results.setdefault(flavor, {}).setdefault(server.name, []).append(cell)
    return results


def render(results: dict[str, Any], rounds: int, command: str) -> str:
    lines = [
        f"{SECTION}\n",
        "The world, bodies and wrk load of *Online serving* above; ours with its defaults in one "
        f"process and with `--workers 2`, REST, {CONNECTIONS} connections, {rounds} interleaved "
        "rounds of 10 s (medians).\n",
        "| requests | workers | req/s | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for flavor, servers in results.items():
        for name, cells in servers.items():
            workers = 1 if name == "ours" else int(name.split("-")[1].rstrip("w"))
            rate = statistics.median(c[0] for c in cells)
            p99 = statistics.median(c[1] for c in cells)
            errors = sum(sum(c[2].values()) for c in cells)
            kind = "raw features" if flavor == "ours-raw" else "key lookup"
            lines.append(f"| {kind} | {workers} | {rate:,.0f} | {p99:.0f} | {errors} |")
    raw = {
        name: statistics.median(c[0] for c in cells) for name, cells in results["ours-raw"].items()
    }
    one, two = raw.get("ours"), raw.get("ours-2w")
    gain = f"{two / one:.2f}×" if one and two else "—"
    lines.append(
        "\nEach worker is a process with its own GIL, batcher, serving log and shadow; on this "
        f"2-core machine two of them answered {gain} the raw-feature requests of one: two workers "
        "and the load generator share the same two cores, so a second worker pays only when "
        "one process cannot keep a core busy. Compare with MLServer's rows of *Online "
        "serving* (same bodies and load, measured in an earlier run). Defaults otherwise: "
        "access log and serving log on, micro-batching on."
    )
    lines.append(f"\nCommand: `{command}` (after `benchmarks/serving.py`), {date.today()}.\n")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench" / "serving"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    world_file = workdir / "world.json"
    if not world_file.exists():
        raise SystemExit(f"No served world in {workdir}: run benchmarks/serving.py first.")
    world = json.loads(world_file.read_text())
    servers = []
    try:
        servers = [start_ours(workdir, world), start_ours(workdir, world, workers=2)]
        for server in servers:
            wait_ready(server)
        results = measure(servers, workdir, args.rounds, args.seconds)
    finally:
        for server in servers:
            stop(server)
    section = render(
        results, args.rounds, ".venv/bin/python benchmarks/serving_workers.py --write-docs"
    )
    return publish(SECTION, section, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())

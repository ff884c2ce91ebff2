"""Benchmark: online serving, single-row requests at 1, 16 and 64 concurrent connections over
REST and gRPC, ours against MLServer and the seed's FastAPI toy, all in one run.

Servers (``serving_servers``), each a real process on 127.0.0.1, all started before the
first measurement and idle while another is measured:

- ``ours``: ``airflow-mlops serve`` (defaults: micro-batching 2 ms, access log on), asked with
  raw features (``ours-raw``) and with only the key (``ours-key``);
- ``mlserver`` / ``mlserver-batch``: MLServer 1.7.1 + mlserver-sklearn 1.7.1 on the registry's
  artifact, default settings / adaptive batching (32 rows, 2 ms), ``parallel_workers: 0``;
- ``toy``: the seed's FastAPI microservice (``seed_toy.py``), REST only;
- ``floor`` / ``floor-batched``: a constant answer, without and with ours' micro-batchers
  (``serving_floor.py``), at the most connections only: what the protocol stacks and the
  batching cost on this machine, the ceiling of any server built on them.

Load (``serving_load``): REST by wrk (one thread, closed loop, Lua script for the bodies and
percentiles), gRPC by ``serving_grpc_load.py`` (grpc.aio, N concurrent calls, closed loop);
each cell a warm-up run, then the measured run. Cells run interleaved: for each round, for
each connection count and protocol, every server in turn, so ratios are paired in time.
Also the feature index's memory for 1,000,000 keys (``serving_world.index_memory``, in a
fresh interpreter).

    .venv/bin/python benchmarks/serving.py                 # 10 s cells after 3 s warm-up
    .venv/bin/python benchmarks/serving.py --seconds 2 --warmup 1 --connections 16  # smoke
    .venv/bin/python benchmarks/serving.py --write-docs    # rewrite docs/benchmarks.md's section
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchdocs import child_result, publish
from serving_load import check_answers, need_wrk, run_grpc, run_wrk, write_bodies, wrk_version
from serving_report import SECTION, render, summarise
from serving_servers import all_servers, cpu_seconds, mlserver_venv, mlserver_version
from serving_world import build, index_memory, model_call_costs

ROOT = Path(__file__).resolve().parent.parent
#: (server, request flavor) per protocol, in the order they run
TARGETS = {
    "rest": [
        ("ours", "ours-raw"),
        ("ours", "ours-key"),
        ("mlserver", "mlserver"),
        ("mlserver-batch", "mlserver"),
        ("toy", "toy"),
        ("floor", "ours-raw"),
        ("floor-batched", "ours-raw"),
    ],
    "grpc": [
        ("ours", "ours-raw"),
        ("ours", "ours-key"),
        ("mlserver", "mlserver"),
        ("mlserver-batch", "mlserver"),
        ("floor", "ours-raw"),
        ("floor-batched", "ours-raw"),
    ],
}
#: measured at the most connections only (what they bound is the goal's cell)
FLOORS = ("floor", "floor-batched")


def machine_busy() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def settle(servers: list[Any], limit: float = 60.0) -> float:
    """Wait until every server is idle (under 0.05 cores over 0.5 s), at most ``limit``
    seconds: a server that fell behind still works through the requests of a finished run
    (their clients are gone), which would load the next cell. The seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = [cpu_seconds(server.process.pid) for server in servers]
        time.sleep(0.5)
        after = [cpu_seconds(server.process.pid) for server in servers]
        if all(b - a < 0.025 for a, b in zip(before, after, strict=True)):
            break
    return time.monotonic() - start


def measure(
    server: Any, protocol: str, flavor: str, connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One cell: a warm-up run, then the measured run, with the server's, the load
    generator's and the rest of the machine's CPU over the measured run."""
    rows = Path(args.world["rows"])
    if protocol == "rest":
        bodies = args.bodies[flavor]

        def run(seconds: float) -> dict[str, Any]:
            return run_wrk(server.http_port, flavor, bodies, connections, seconds)
    else:

        def run(seconds: float) -> dict[str, Any]:
            return run_grpc(server.grpc_port, flavor, rows, connections, seconds)

    run(args.warmup)
    server_cpu = cpu_seconds(server.process.pid)
    client_cpu = _children_cpu()
    busy, total = machine_busy()
    start = time.perf_counter()
    result = run(args.seconds)
    elapsed = time.perf_counter() - start
    busy_after, total_after = machine_busy()
    result["server_cpu_s"] = cpu_seconds(server.process.pid) - server_cpu
    result["client_cpu_s"] = _children_cpu() - client_cpu
    machine_cores = (busy_after - busy) / (total_after - total) * (os.cpu_count() or 1)
    own = (result["server_cpu_s"] + result["client_cpu_s"]) / elapsed
    result["other_cores"] = max(0.0, machine_cores - own)
    result["rps"] = result["requests"] / result["seconds"]
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_rounds(servers: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = []
    for round_ in range(args.repeat):
        for connections in args.connections:
            for protocol, targets in TARGETS.items():
                for name, flavor in targets:
                    if name in FLOORS and connections != max(args.connections):
                        continue
                    settled = settle(list(servers.values()))
                    result = measure(servers[name], protocol, flavor, connections, args)
                    cell = {
                        "settle_s": settled,
                        "round": round_,
                        "server": name,
                        "flavor": flavor,
                        "protocol": protocol,
                        "connections": connections,
                        **result,
                    }
                    cells.append(cell)
                    print(
                        f"round {round_ + 1} {protocol} c={connections} {name} {flavor}: "
                        f"{cell['rps']:.0f} req/s, p50 {cell['p50_us'] / 1000:.1f} ms, p99 "
                        f"{cell['p99_us'] / 1000:.1f} ms, errors {cell['errors']}, timeouts "
                        f"{cell['timeouts']}, other load {cell['other_cores']:.2f} cores "
                        f"(waited {settled:.1f} s for idle servers)",
                        file=sys.stderr,
                        flush=True,
                    )
    return cells


def index_figures(script: str, rows: int, workdir: Path) -> list[dict[str, Any]]:
    """The index memory child, sorted keys then shuffled keys, each in a fresh interpreter."""
    base = ["index", "--index-rows", str(rows), "--workdir", str(workdir)]
    return [
        child_result(script, [*base, *(["--shuffled"] if shuffled else [])], "index memory")
        for shuffled in (False, True)
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per cell")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 16, 64],
        help="comma-separated connection counts (default 1,16,64)",
    )
    parser.add_argument(
        "--mlserver-omp-threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS for MLServer (default 1; 0 leaves its default, which collapses "
        "under concurrent requests on this 2-core machine)",
    )
    parser.add_argument("--customers", type=int, default=100_000, help="served partition rows")
    parser.add_argument("--index-rows", type=int, default=1_000_000, help="index memory keys")
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench" / "serving"))
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/benchmarks.md")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="render the last run's report (WORKDIR/bench_report.json) without measuring",
    )
    parser.add_argument("--child", choices=("index", "costs"), help=argparse.SUPPRESS)
    parser.add_argument("--shuffled", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir).resolve()
    if args.child == "index":
        print(json.dumps(index_memory(workdir, args.index_rows, shuffled=args.shuffled)))
        return 0
    if args.child == "costs":
        print(json.dumps(model_call_costs(json.loads((workdir / "world.json").read_text()))))
        return 0
    if args.render_only:
        report = json.loads((workdir / "bench_report.json").read_text())
        return publish(SECTION, render(report, report["command"]), args.write_docs)
    wrk = need_wrk()
    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bin_dir = mlserver_venv()
    print("building the served world", file=sys.stderr, flush=True)
    args.world = build(workdir, args.customers)
    (workdir / "world.json").write_text(json.dumps(args.world))
    costs = child_result(
        str(Path(__file__).resolve()), ["costs", "--workdir", str(workdir)], "costs"
    )
    rows = json.loads(Path(args.world["rows"]).read_text())
    flavors = ("ours-raw", "ours-key", "mlserver", "toy")
    args.bodies = {flavor: write_bodies(workdir, rows, flavor) for flavor in flavors}
    index = index_figures(str(Path(__file__).resolve()), args.index_rows, workdir)
    with all_servers(workdir, args.world, bin_dir, args.mlserver_omp_threads) as started_servers:
        servers = {server.name: server for server in started_servers}
        checks = {
            f"{name} {flavor}": check_answers(servers[name], flavor, rows, args.world["rows"])
            for name, flavor in TARGETS["rest"]
            if name not in FLOORS
        }
        cells = run_rounds(servers, args)
    report = {
        "world": args.world,
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "connections": args.connections,
            "mlserver_omp_threads": args.mlserver_omp_threads,
        },
        "checks": checks,
        "cells": cells,
        "summary": summarise(cells),
        "index": index,
        "model_call": costs,
        "versions": {"wrk": wrk_version(wrk), "mlserver": mlserver_version(bin_dir)},
        "minutes": (time.monotonic() - started) / 60,
    }
    report["command"] = shlex.join(
        [".venv/bin/python", "benchmarks/serving.py", *(argv or sys.argv[1:])]
    )
    (workdir / "bench_report.json").write_text(json.dumps(report, indent=2))
    return publish(SECTION, render(report, report["command"]), args.write_docs)


if __name__ == "__main__":
    sys.exit(main())

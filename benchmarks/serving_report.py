"""The serving benchmark's figures: medians per cell, paired ratios, goals, and the
``## Online serving`` section of docs/benchmarks.md."""

from __future__ import annotations

import datetime
import statistics
from collections import defaultdict
from importlib import metadata
from typing import Any

from benchdocs import machine

SECTION = "## Online serving"
GOAL_VS_MLSERVER, GOAL_KEY_COST, GOAL_INDEX = 5.0, 1.2, 2.0
MLSERVERS = ("mlserver", "mlserver-batch")
LABELS = {
    "ours-raw": "ours, raw features",
    "ours-key": "ours, key lookup",
    "mlserver": "MLServer (default)",
    "mlserver-batch": "MLServer (adaptive batching)",
    "toy": "seed toy",
    "floor": "floor: constant answer",
    "floor-batched": "floor: constant answer, micro-batched",
}
MIB = 1024**2


def _label(cell: dict[str, Any]) -> str:
    return LABELS[cell["flavor"] if cell["server"] == "ours" else cell["server"]]


def summarise(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (protocol, connections, target) and the paired ratios per round."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[(cell["protocol"], cell["connections"], _label(cell))].append(cell)
    rows = []
    for (protocol, connections, label), group in groups.items():
        requests = [max(c["requests"], 1) for c in group]
        rows.append(
            {
                "protocol": protocol,
                "connections": connections,
                "target": label,
                "runs": len(group),
                "rps": statistics.median(c["rps"] for c in group),
                "p50_ms": statistics.median(c["p50_us"] for c in group) / 1000,
                "p99_ms": statistics.median(c["p99_us"] for c in group) / 1000,
                "errors": sum(sum(c["errors"].values()) for c in group),
                "timeouts": sum(c["timeouts"] for c in group),
                "server_cpu_ms": statistics.median(
                    c["server_cpu_s"] / n * 1000 for c, n in zip(group, requests, strict=True)
                ),
                "client_cpu_share": statistics.median(
                    c["client_cpu_s"] / c["seconds"] for c in group
                ),
                "other_cores": statistics.median(c["other_cores"] for c in group),
            }
        )
    return {"rows": rows, "ratios": _ratios(cells)}


def _ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per protocol and connection count, within each round: ours (raw) ÷ the better
    MLServer setting of that round, ours ÷ the toy, raw ÷ key-lookup throughput; medians."""
    rounds: dict[tuple[str, int], list[dict[str, dict[str, Any]]]] = defaultdict(list)
    by_round: dict[tuple[str, int, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for cell in cells:
        by_round[(cell["protocol"], cell["connections"], cell["round"])][_label(cell)] = cell
    for (protocol, connections, _), targets in sorted(by_round.items()):
        rounds[(protocol, connections)].append(targets)
    out = []
    for (protocol, connections), group in rounds.items():
        paired: dict[str, list[float]] = defaultdict(list)
        best_names = []
        for targets in group:
            raw, key = targets[LABELS["ours-raw"]], targets[LABELS["ours-key"]]
            best = max((targets[LABELS[m]] for m in MLSERVERS), key=lambda c: c["rps"])
            best_names.append(_label(best))
            paired["vs_mlserver"].append(raw["rps"] / max(best["rps"], 1e-9))
            paired["p99_vs_mlserver"].append(raw["p99_us"] / max(best["p99_us"], 1e-9))
            paired["key_cost"].append(raw["rps"] / max(key["rps"], 1e-9))
            paired["key_cpu_cost"].append(
                (key["server_cpu_s"] / max(key["requests"], 1))
                / (raw["server_cpu_s"] / max(raw["requests"], 1))
            )
            if LABELS["toy"] in targets:
                paired["vs_toy"].append(raw["rps"] / max(targets[LABELS["toy"]]["rps"], 1e-9))
            if LABELS["floor-batched"] in targets:
                floor = targets[LABELS["floor-batched"]]["rps"]
                paired["vs_floor"].append(raw["rps"] / max(floor, 1e-9))
                paired["goal_vs_floor"].append(GOAL_VS_MLSERVER * best["rps"] / max(floor, 1e-9))
        out.append(
            {
                "protocol": protocol,
                "connections": connections,
                "best_mlserver": statistics.mode(best_names),
                **{name: statistics.median(values) for name, values in paired.items()},
            }
        )
    return out


def goals(report: dict[str, Any]) -> list[tuple[bool, str]]:
    """(met, text) for each goal of the issue."""
    checks = []
    top = max(report["settings"]["connections"])
    for ratio in report["summary"]["ratios"]:
        if ratio["connections"] != top:
            continue
        protocol = "REST" if ratio["protocol"] == "rest" else "gRPC"
        met = ratio["vs_mlserver"] >= GOAL_VS_MLSERVER and ratio["p99_vs_mlserver"] < 1
        checks.append(
            (
                met,
                f"{protocol}, {top} connections: ours (raw features) {ratio['vs_mlserver']:.2f}× "
                f"the throughput of {ratio['best_mlserver']}, p99 {ratio['p99_vs_mlserver']:.2f}× "
                f"its p99 (goal ≥ {GOAL_VS_MLSERVER:.0f}× with a lower p99)",
            )
        )
    for ratio in report["summary"]["ratios"]:
        if ratio["connections"] != top:
            continue
        protocol = "REST" if ratio["protocol"] == "rest" else "gRPC"
        checks.append(
            (
                ratio["key_cost"] <= GOAL_KEY_COST,
                f"{protocol}, {top} connections: a key lookup costs {ratio['key_cost']:.2f}× a "
                f"raw-feature request in throughput ({ratio['key_cpu_cost']:.2f}× in server "
                f"CPU per request) (goal ≤ {GOAL_KEY_COST}×)",
            )
        )
    for index in report["index"]:
        order = "shuffled" if index["shuffled"] else "in key order"
        checks.append(
            (
                index["rss_ratio"] <= GOAL_INDEX and index["nbytes_ratio"] <= GOAL_INDEX,
                f"feature index of {index['rows']:,} keys ({order}): RSS growth "
                f"{index['rss_ratio']:.2f}×, nbytes {index['nbytes_ratio']:.2f}× the Arrow size "
                f"of its columns (goal ≤ {GOAL_INDEX:.0f}×)",
            )
        )
    return checks


def figures_table(summary: dict[str, Any]) -> list[str]:
    ratios = {(r["protocol"], r["connections"]): r for r in summary["ratios"]}
    lines = [
        "| protocol | connections | server | req/s | p50 ms | p99 ms | errors | timeouts | "
        "server CPU ms/req | other load (cores) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = list(LABELS.values())
    rows = sorted(
        summary["rows"],
        key=lambda r: (r["protocol"] != "rest", r["connections"], order.index(r["target"])),
    )
    for row in rows:
        answered = row["rps"] > 0  # wrk reports 0 latencies when nothing was answered
        p50, p99, cpu = (
            (f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", f"{row['server_cpu_ms']:.2f}")
            if answered
            else ("—", "—", "—")
        )
        lines.append(
            f"| {'REST' if row['protocol'] == 'rest' else 'gRPC'} | {row['connections']} | "
            f"{row['target']} | {row['rps']:,.0f} | {p50} | {p99} | {row['errors']} | "
            f"{row['timeouts']} | {cpu} | {row['other_cores']:.2f} |"
        )
    lines += [
        "",
        "| protocol | connections | ours ÷ better MLServer (req/s) | better MLServer | "
        "ours p99 ÷ its p99 | ours ÷ toy (req/s) | raw ÷ key lookup (req/s) | "
        "ours ÷ micro-batched floor (req/s) | goal ÷ micro-batched floor |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (protocol, connections), r in sorted(
        ratios.items(), key=lambda kv: (kv[0][0] != "rest", kv[0][1])
    ):
        optional = ("vs_toy", "vs_floor", "goal_vs_floor")
        toy, floor, goal = (f"{r[name]:.2f}" if name in r else "—" for name in optional)
        lines.append(
            f"| {'REST' if protocol == 'rest' else 'gRPC'} | {connections} | "
            f"{r['vs_mlserver']:.2f} | {r['best_mlserver']} | {r['p99_vs_mlserver']:.2f} | "
            f"{toy} | {r['key_cost']:.2f} | {floor} | {goal} |"
        )
    return lines


def index_table(index: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| keys | partition | Arrow columns MiB | index nbytes MiB (× Arrow) | "
        "RSS growth MiB (× Arrow) |",
        "|---:|---|---:|---:|---:|",
    ]
    for i in index:
        lines.append(
            f"| {i['rows']:,} | {'shuffled' if i['shuffled'] else 'in key order'} | "
            f"{i['arrow_bytes'] / MIB:.1f} | {i['index_nbytes'] / MIB:.1f} "
            f"({i['nbytes_ratio']:.2f}) | {i['rss_delta_bytes'] / MIB:.1f} ({i['rss_ratio']:.2f}) |"
        )
    return lines


def machine_info(report: dict[str, Any]) -> str:
    names = ("fastapi", "uvicorn", "grpcio", "scikit-learn", "pandas", "pyarrow", "numpy")
    versions = [f"{name} {metadata.version(name)}" for name in names]
    versions.append(f"MLServer {report['versions']['mlserver']}")
    versions.append(f"wrk {report['versions']['wrk']}")
    return machine(versions)


def render(report: dict[str, Any], command: str) -> str:
    settings, world = report["settings"], report["world"]
    runtime = "tl2cgen" if world["runtimes"]["tl2cgen"]["verified"] else "sklearn"
    checks = report["checks"]
    worst = max(max(check.values()) for check in checks.values())
    goal_lines = [f"- {'met' if ok else 'MISSED'}: {text}" for ok, text in goals(report)]
    return "\n".join(
        [
            SECTION,
            "",
            "Single-row inference requests on the demo credit model (`make_pipeline` of "
            "`demo/credit_model.py`, HGB 100 iterations, 15 leaves, on a column transformer of "
            f"10 scaled numerics and a one-hot `region`), {world['customers']:,} customers "
            "published in `customer_features`, the model registered as `champion` with its "
            f"compiled runtime verified. Servers, each its own process on 127.0.0.1, all "
            "started before the first cell and idle while another is measured:",
            "",
            "- **ours**: `airflow-mlops serve credit_risk --feature-table customer_features` "
            f"with its defaults (micro-batching 2 ms / 256 rows, access log on, one worker; "
            f"runtime {runtime}), asked with the eleven raw features (`…/infer`, one tensor "
            "each) or with only `customer_id` (the features looked up in the served partition).",
            "- **MLServer** 1.7.1 + mlserver-sklearn 1.7.1 serving the registry's artifact "
            "(`model.joblib`, checksum-verified bytes), in its own venv with the same "
            "scikit-learn, numpy, pandas, scipy and joblib; `parallel_workers: 0` (its inference "
            "workers die at start under the current uvloop); "
            + _omp_note(settings.get("mlserver_omp_threads", 0))
            + "once with its default settings "
            "(which log every request, as ours does) and once with adaptive batching "
            "(`max_batch_size` 32, `max_batch_time` 0.002). Requests are `content_type: pd` "
            "(a DataFrame, as the column transformer needs) and ask for `predict_proba`.",
            "- **seed toy**: the seed's FastAPI microservice (`benchmarks/seed_toy.py`: "
            "`joblib.load` at start, a pydantic body, a one-row DataFrame and `predict_proba` "
            "per request) under uvicorn's defaults; REST only.",
            "",
            "Load: REST by wrk (Debian's, one thread, `--timeout 5s`, "
            "`benchmarks/wrk_post.lua` cycling through 1,000 bodies of random customers); gRPC by "
            "`benchmarks/serving_grpc_load.py` in its own process (grpc.aio, N coroutines on one "
            "channel, typed `contents`, 5 s deadline) — the same generator for ours and "
            "MLServer. Both are **closed loop**: each connection sends its next request when "
            "the previous one is answered, so latencies are those of a saturated server and "
            "under-count queueing (coordinated omission); compare them between servers, not "
            f"with an SLO. Each cell: a {settings['warmup']:g} s warm-up run, then "
            f"{settings['seconds']:g} s measured, after waiting (≤ 60 s; at most "
            f"{max(c.get('settle_s', 0) for c in report['cells']):.0f} s in this run) until "
            "every server is idle, since a server that fell behind goes on scoring the "
            "requests of a finished run; cells interleaved (for each connection "
            "count and protocol, every server in turn), "
            f"{settings['repeat']} round(s); medians over rounds, ratios paired within a "
            "round (then the median). Before any load every server answered the same 20 rows "
            f"over each protocol within {worst:.1e} of scikit-learn's probability. Server CPU "
            "is the server process's user + system time over the measured run; *other load* "
            "is the machine's busy cores minus the server's and the load generator's (other "
            "jobs on this shared 2-core machine).",
            "",
            *figures_table(report["summary"]),
            "",
            "Feature index memory (`FeatureIndex.load` of a published partition of "
            f"{report['index'][0]['rows']:,} customers, 12 columns, in a fresh interpreter "
            "that already loaded a small index, so imports are not counted): `nbytes` is the "
            "Arrow columns plus the key index (sorted keys and row positions, only when the "
            "partition is not in key order); RSS growth is `VmRSS` after minus before the "
            "load, after `gc.collect()` and Arrow's `release_unused()`.",
            "",
            *index_table(report["index"]),
            "",
            "Goals (issue 11):",
            "",
            *goal_lines,
            "",
            *notes(report),
            f"Machine: {machine_info(report)}.",
            "",
            f"Date: {datetime.date.today().isoformat()}; the run took "
            f"{report['minutes']:.1f} min. Command: `{command}` (`make bench`; needs "
            "`apt-get install -y wrk`; builds `var/bench/mlserver-venv` on first use).",
            "",
        ]
    )


def _omp_note(threads: int) -> str:
    if not threads:
        return "its OpenMP threads left at their default (one per core); "
    return (
        f"`OMP_NUM_THREADS={threads}` (at its default, one OpenMP thread per core in every "
        "scikit-learn tree prediction, it collapsed on this machine to single-digit req/s at "
        "16 connections with latencies of seconds and timeouts; `--mlserver-omp-threads 0` "
        "reproduces that), "
    )


def floor_notes(report: dict[str, Any]) -> list[str]:
    """What the floors say of the throughput goal, per protocol at the most connections."""
    top = max(report["settings"]["connections"])
    rows = {
        (row["protocol"], row["target"]): row
        for row in report["summary"]["rows"]
        if row["connections"] == top
    }
    ratios = {r["protocol"]: r for r in report["summary"]["ratios"] if r["connections"] == top}
    parts = []
    for protocol, name in (("rest", "REST"), ("grpc", "gRPC")):
        floor = rows.get((protocol, LABELS["floor"]))
        batched = rows.get((protocol, LABELS["floor-batched"]))
        ours = rows[(protocol, LABELS["ours-raw"])]
        if floor is None or batched is None or "goal_vs_floor" not in ratios[protocol]:
            continue
        goal = ratios[protocol]["goal_vs_floor"] * batched["rps"]
        budget = ours["server_cpu_ms"] * ours["rps"] / goal - batched["server_cpu_ms"]
        parts.append(
            f"{name}: the constant answer {floor['rps']:,.0f} req/s "
            f"({floor['server_cpu_ms']:.2f} ms of server CPU per request), micro-batched "
            f"{batched['rps']:,.0f} ({batched['server_cpu_ms']:.2f} ms); ours "
            f"{ours['rps']:,.0f} ({ours['server_cpu_ms']:.2f} ms); the goal, 5× the better "
            f"MLServer, is {goal:,.0f} req/s, {ratios[protocol]['goal_vs_floor']:.2f}× the "
            f"micro-batched floor, which at ours' CPU use would leave {budget:.2f} ms per "
            "request for everything ours does beyond answering a constant"
        )
    if not parts:
        return []
    return [
        f"The floors at {top} connections (a constant answer on the same protocol stacks, "
        "`benchmarks/serving_floor.py`, with and without ours' micro-batchers): "
        + "; ".join(parts)
        + ". That is the body check, the conversion, the model call (the model alone is "
        "below), the response, the metrics, the access log and the serving log.",
        "",
    ]


def notes(report: dict[str, Any]) -> list[str]:
    """Where ours' time goes (the model call, measured in a fresh interpreter) and what the
    figures can and cannot say on this machine."""
    call = report["model_call"]
    ms = {key: value * 1000 for key, value in call.items() if key != "runtime"}
    rows = report["summary"]["rows"]
    busiest = max(row["other_cores"] for row in rows)
    top = max(report["settings"]["connections"])

    def cpu(protocol: str, target: str) -> float:
        return float(
            next(
                row["server_cpu_ms"]
                for row in rows
                if (row["protocol"], row["connections"], row["target"]) == (protocol, top, target)
            )
        )

    parts = ""
    if "transform_64" in ms:
        parts = (
            f" (scikit-learn's own column transformer alone, which the call no longer runs, "
            f"takes {ms['transform_64']:.1f} ms on 64 rows, and Arrow → pandas "
            f"{ms['to_pandas_64']:.1f} ms; the compiled trees {ms['trees_64']:.2f} ms)"
        )
    return [
        "Where ours' time goes. One model call of a batch (`ServedModel.predict`, runtime "
        f"{call['runtime']} with the verified numpy column transformer of "
        "`models/column_transform.py`; best of 100 calls) takes "
        f"{ms['predict_1']:.2f} ms for 1 row, {ms['predict_16']:.2f} ms for 16 and "
        f"{ms['predict_64']:.2f} ms for 64{parts}. So the model is no longer what bounds "
        "ours: the request path is. At 64 REST connections ours spends "
        f"{cpu('rest', LABELS['ours-raw']):.2f} ms of server CPU per raw-feature request and "
        f"{cpu('rest', LABELS['ours-key']):.2f} ms per key lookup (MLServer with adaptive "
        f"batching {cpu('rest', LABELS['mlserver-batch']):.2f} ms; the floors are below). A py-spy "
        "profile of the GIL's holder (2026-11-30, after the changes below) puts the rest in "
        "HTTP and the ASGI layers (the request observer, the body limit, uvicorn's send), "
        "parsing the body into tensors, the metrics and access log line, the batch's "
        "conversion and model call, and the serving log's writer thread, in roughly equal "
        "parts: no single piece left is more than a fifth.",
        "",
        "Changes made for the throughput goal (2026-11-30, measured with this benchmark's "
        "world and wrk at 64 connections, ours raw / key lookup, one process: 385 / 546 req/s "
        "before): requests checked in structure alone and converted, looked up and scored "
        "together, one Arrow array per input per batch (`serving/requests.py`); REST "
        "batches scored on the event loop (`LoopBatcher`, natural batching: no thread hops, "
        "no timer) → 596 / 635; the numpy column transformer (`models/column_transform.py`) "
        "→ 1,261 / 1,414; the inference route as a plain ASGI layer before FastAPI "
        "(`serving/rest_infer.py`) → 1,687 / 2,093; uvicorn's own access line off (it "
        "doubled ours), the serving log's writer polling every 0.1 s instead of being woken "
        "by every request, the body decoded by msgspec instead of json + pydantic (54 → 27 "
        "µs), the Prometheus series looked up once per label set, request ids without a "
        "system call each, and bodies of a declared length no longer copied by the body "
        "limit; gRPC's typed contents decoded to lists, not a numpy array per one-value "
        "tensor (2026-12-01, +7% on gRPC) → the figures above. "
        "Without the serving log and the access log, the same server answered about "
        "2,400 / 3,300 req/s. The online shadow (off here) was changed the same way: one "
        "challenger call per 0.1 s of queued requests instead of one per request.",
        "",
        *floor_notes(report),
        "What would move ours further: (1) fewer layers per request — the "
        "request observer and bearer check in the inference route's layer, and the request's "
        "tensors built without a frozen dataclass per input; (2) the serving log's rows "
        "built from the batch the request was scored in (its features, keys and outputs are "
        "already one Arrow batch) instead of joined again per request; (3) gRPC: `grpc.aio` "
        "on the REST event loop (sharing its batcher) was tried and cost 3.2–3.9 ms of server "
        "CPU per call against the thread-pool server's 1.4–1.7 ms (2026-11-30), so gRPC stays "
        "on threads with the thread batcher; (4) `--workers 2`: each worker has its own "
        "`SO_REUSEPORT` socket, so connections split evenly, but on this 2-core machine the "
        "second worker competes with the load generator for the same cores (see *one process "
        "or two* below).",
        "",
        "Noise: the cores are shared with other jobs (the *other load* column; up to "
        f"{busiest:.2f} of 2 cores in this run), which slows every server and inflates "
        "latency tails; ratios are paired in time to cancel part of it, not all. The load "
        "generators themselves use CPU on the same two cores (wrk little; the Python gRPC "
        "generator more, the same for every server).",
        "",
    ]

"""What every benchmark shares: its child processes, the machine line and writing its
own docs section."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"


def child_result(script: str, args: list[str], what: str) -> dict[str, Any]:
    """Run ``script --child …args`` in a fresh interpreter; the JSON its last line prints."""
    done = subprocess.run(
        [sys.executable, script, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_section(heading: str, section: str, docs: Path = DOCS) -> None:
    """Replace the ``heading`` section of ``docs`` with ``section``; other sections stay."""
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    docs.write_text(new)


def publish(heading: str, section: str, write_docs: bool) -> int:
    """Print ``section``; with ``write_docs``, also make it the ``heading`` section of
    docs/benchmarks.md. The benchmark's exit status (0)."""
    print(section)
    if write_docs:
        write_section(heading, section)
    return 0


def benchmark_parser(
    description: str, *, rows: int, repeat: int, workdir: str
) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has: ``--rows``, ``--repeat``,
    ``--workdir`` and ``--write-docs``, with these defaults."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=rows, help=f"rows (default {rows:,})")
    parser.add_argument("--repeat", type=int, default=repeat, help="interleaved rounds")
    parser.add_argument("--workdir", default=workdir, help="data and outputs")
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/benchmarks.md")
    return parser


def footer(machine_line: str, command: str) -> list[str]:
    """A section's last lines: the machine, today's date and the command that reproduces it."""
    today = datetime.date.today().isoformat()
    return [f"Machine: {machine_line}.", "", f"Date: {today}. Command: `{command}`", ""]


def machine(versions: list[str]) -> str:
    """CPU, core count, memory and kernel, then ``versions`` (``"name x.y"`` each)."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )  # fmt: skip
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory_kib / 1024**2:.0f} GiB RAM; Linux "
        f"{platform.release()}; Python {platform.python_version()}, {', '.join(versions)}"
    )

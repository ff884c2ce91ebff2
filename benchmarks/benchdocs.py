"""What every benchmark shares: the machine line and writing its own docs section."""

from __future__ import annotations

import os
import platform
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


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

"""Drift reports for people: a ``compare()`` result as JSON, and as one HTML page.

``render_html`` builds a single self-contained HTML5 document: inline CSS and inline SVG
charts, no script, no external URL, so the file can be published next to a partition and
opened anywhere, offline. It shows a PSI overview chart (bars sorted by PSI, coloured by
status, with each column's warn/fail thresholds as dashed marks), a table of per-column
statistics, and a reference-vs-current histogram per column. Tables and histograms list
failing columns first, then warnings, each by PSI. Every string from the report is
escaped; missing keys, ``None`` and NaN render as "—".

Example::

    Path("drift.html").write_text(render_html(report), encoding="utf-8")
"""

from __future__ import annotations

import html
import json
import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import format_names

if TYPE_CHECKING:
    from airflow_mlops.drift.compare import ColumnReport, DriftReport

DASH = "—"
STATUS_COLOURS = {"ok": "#2e7d32", "warn": "#b45309", "fail": "#c62828", "unknown": "#6b7280"}
SEVERITY = {"fail": 0, "warn": 1, "ok": 2}
PAIRED_BARS = ((0.1, "reference", "#9ca3af"), (0.5, "current", "#1d4ed8"))  # offset, key, colour
THRESHOLD_COLOURS = {"warn": STATUS_COLOURS["warn"], "fail": STATUS_COLOURS["fail"]}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
 margin:0;background:#f9fafb;line-height:1.4}
main{max-width:1240px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.15rem;margin:1.6em 0 .5em}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
.facts dt{color:#4b5563}.facts dd{margin:0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;
 font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
.counts .badge{margin-right:6px}
figure{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:10px}
figcaption{font-size:.9rem;color:#374151;margin-bottom:4px;overflow-wrap:anywhere}
svg text{font-size:11px;fill:#374151}
svg .halo{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.legend{font-size:.8rem;color:#4b5563;margin:2px 0}
.swatch{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:-1px}
.dash{display:inline-block;width:16px;margin:0 4px 0 10px;vertical-align:3px;
 border-top:2px dashed}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.85rem}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f3f4f6;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
.card{border-left-width:6px}
.muted{color:#6b7280}
""" + "".join(
    f".s-{name}{{background:{colour}}}.b-{name}{{border-color:{colour}}}"
    for name, colour in STATUS_COLOURS.items()
)


def render_json(report: DriftReport) -> str:
    """The report as JSON: sorted keys, indent 2, NaN and infinities written as ``null``."""
    return json.dumps(_json_safe(report), sort_keys=True, indent=2, allow_nan=False, default=str)


def render_html(report: DriftReport) -> str:
    """The report as one self-contained HTML5 document (inline CSS and SVG, no script)."""
    columns = [c for c in report.get("columns") or [] if isinstance(c, Mapping)]
    by_severity = sorted(columns, key=lambda c: (SEVERITY.get(_status(c), 3), -_sort_psi(c)))
    title = " ".join(
        _text(report.get(key)) for key in ("table", "partition") if report.get(key) is not None
    )
    return "\n".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Drift report{': ' + title if title else ''}</title>",
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>",
            _header(report, title),
            "<h2>PSI by column</h2>",
            _overview(columns),
            "<h2>Statistics</h2>",
            _statistics_table(by_severity),
            "<h2>Reference vs current</h2>",
            '<div class="cards">',
            *(_histogram_card(column) for column in by_severity),
            "</div>\n</main>\n</body>\n</html>\n",
        ]
    )


# --- values -------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def _float(value: object) -> float | None:
    """A real number (infinities kept), or None for anything else and NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _number(value: object, spec: str = ".3g") -> str:
    number = _float(value)
    if number is None:
        return DASH
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return format(number, spec)


def _plain(value: object) -> str:
    """Unescaped display text: "—" for nothing, ``key: value, …`` for a mapping."""
    if value is None or value == "":
        return DASH
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)


def _text(value: object) -> str:
    return html.escape(_plain(value))


def _status(item: Mapping[str, Any]) -> str:
    status = item.get("status")
    return status if isinstance(status, str) and status in SEVERITY else "unknown"


def _share(value: object) -> float:
    """A histogram proportion; anything but a finite non-negative number counts as 0."""
    number = _float(value)
    return number if number is not None and 0 <= number < math.inf else 0.0


def _sort_psi(column: Mapping[str, Any]) -> float:
    return _float(column.get("psi")) or 0.0


def _psi_thresholds(column: Mapping[str, Any]) -> dict[str, float]:
    """The warn/fail thresholds when they apply to PSI (the column's effect metric)."""
    thresholds = column.get("thresholds")
    if column.get("effect_metric", "psi") != "psi" or not isinstance(thresholds, list | tuple):
        return {}
    values = [_float(value) for value in thresholds[:2]]
    return {name: v for name, v in zip(("warn", "fail"), values, strict=False) if v is not None}


def _nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Ticks from 0 to at least ``peak`` in about ``count`` steps of 1, 2 or 5 × 10^k."""
    raw = peak / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    return [step * i for i in range(math.ceil(peak / step - 1e-9) + 1)]


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _badge(status: str) -> str:
    return f'<span class="badge s-{status}">{status}</span>'


# --- page sections ------------------------------------------------------------------------


def _header(report: DriftReport, title: str) -> str:
    status = _status(report)
    summary = report.get("summary")
    counts = summary if isinstance(summary, Mapping) else {}
    reference = report.get("reference")
    if isinstance(reference, Mapping) and "kind" in reference:
        rest = {key: value for key, value in reference.items() if key != "kind"}
        reference_text = _text(reference["kind"]) + (f" ({_text(rest)})" if rest else "")
    else:
        reference_text = _text(reference)
    rows = f"{_count(report.get('reference_rows'))} reference · "
    rows += f"{_count(report.get('current_rows'))} current"
    facts = {
        "Table": _text(report.get("table")),
        "Partition": _text(report.get("partition")),
        "Reference": reference_text,
        "Rows": rows,
        "Correction": f"{_text(report.get('correction'))} (α = {_number(report.get('alpha'))})",
        "Generated by": _text(report.get("generated_by")),
        "Created at": _text(report.get("created_at")),
    }
    count_badges = " ".join(
        f'<span class="badge s-{name}">{_count(counts.get(name))} {name}</span>'
        for name in ("fail", "warn", "ok")
    )
    return (
        f"<header>\n<h1>Drift report{': ' + title if title else ''} {_badge(status)}</h1>\n"
        f'<p class="counts">Columns: {count_badges}</p>\n<dl class="facts">'
        + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts.items())
        + "</dl>\n</header>"
    )


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, numbers.Integral) else DASH


def _statistics_table(columns: list[ColumnReport]) -> str:
    heads = ["Column", "Kind", "Test", "PSI", "Statistic", "p", "Adjusted p"]
    heads += ["Wasserstein / JS", "Null rate ref → cur", "Unseen categories", "Status"]
    rows = [_statistics_row(column) for column in columns]
    if not rows:
        rows = [f'<tr><td colspan="{len(heads)}">No columns were compared.</td></tr>']
    head = "".join(f'<th scope="col">{name}</th>' for name in heads)
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table></div>"
    )


def _statistics_row(column: Mapping[str, Any]) -> str:
    if column.get("wasserstein_normed") is not None:
        distance = f"W {_number(column['wasserstein_normed'])}"
    elif column.get("jensen_shannon") is not None:
        distance = f"JS {_number(column['jensen_shannon'])}"
    else:
        distance = DASH
    null_rates = f"{_number(column.get('null_rate_reference'), '.1%')} → "
    null_rates += _number(column.get("null_rate_current"), ".1%")
    unseen = [str(value) for value in column.get("unseen_categories") or []]
    unseen_text = html.escape(format_names(unseen, limit=5)) if unseen else DASH
    cells = [
        f'<th scope="row">{_text(column.get("name"))}</th>',
        f"<td>{_text(column.get('kind'))}</td>",
        f"<td>{_text(column.get('test'))}</td>",
        *(
            f'<td class="num">{_number(column.get(key), spec)}</td>'
            for key, spec in [
                ("psi", ".3g"),
                ("statistic", ".3g"),
                ("p_value", ".2g"),
                ("p_value_adjusted", ".2g"),
            ]
        ),
        f'<td class="num">{distance}</td>',
        f'<td class="num">{null_rates}</td>',
        f"<td>{unseen_text}</td>",
        f"<td>{_badge(_status(column))}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


# --- charts -------------------------------------------------------------------------------


def _overview(columns: list[ColumnReport]) -> str:
    """Horizontal PSI bars, one per column, largest first, with dashed threshold marks."""
    label_w, bar_w, value_w, row_h, top, bottom = 220, 820, 140, 22, 8, 36
    rows = sorted(columns, key=lambda c: -_sort_psi(c))
    finite = [v for c in rows for v in [_float(c.get("psi")), *_psi_thresholds(c).values()]]
    ticks = _nice_ticks(max([v for v in finite if v is not None and math.isfinite(v)] + [0.01]))
    scale = ticks[-1]
    height = top + row_h * max(len(rows), 1) + bottom

    def x(value: float) -> float:
        return label_w + bar_w * min(max(value, 0.0), scale) / scale

    parts = [
        f'<svg width="{label_w + bar_w + value_w}" height="{height}" role="img" '
        f'aria-label="Population stability index per column, largest first">'
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{height - bottom}" '
            f'stroke="#e5e7eb"/><text x="{x(tick):.1f}" y="{height - bottom + 14}" '
            f'text-anchor="middle">{tick:.3g}</text>'
        )
    parts.append(
        f'<text x="{label_w + bar_w / 2}" y="{height - 4}" text-anchor="middle">PSI</text>'
    )
    if not rows:
        parts.append(f'<text x="{label_w}" y="{top + 15}">No columns were compared.</text>')
    for i, column in enumerate(rows):
        y = top + i * row_h
        name, status = _plain(column.get("name")), _status(column)
        psi = _float(column.get("psi"))
        for level, value in _psi_thresholds(column).items():
            parts.append(
                f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{y}" y2="{y + row_h}" '
                f'stroke="{THRESHOLD_COLOURS[level]}" stroke-width="2" stroke-dasharray="4 2"/>'
            )
        parts.append(
            f"<g><title>{html.escape(name)}: PSI {_number(psi, '.4g')}, {status}</title>"
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">'
            f"{html.escape(_short(name, 32))}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{x(psi or 0.0) - label_w:.1f}" '
            f'height="{row_h - 8}" fill="{STATUS_COLOURS[status]}"/>'
            f'<text class="halo" x="{x(psi or 0.0) + 6:.1f}" y="{y + 15}">'
            f"{_number(psi)} · {status}</text></g>"
        )
    legend = "".join(
        f'<span class="dash" style="border-color:{colour}"></span>{name} threshold'
        for name, colour in THRESHOLD_COLOURS.items()
    )
    return (
        '<figure class="scroll">\n<figcaption>PSI per column, largest first; bar colour and '
        f'label give the status.</figcaption>\n<p class="legend">{legend}</p>\n'
        + "".join(parts)
        + "</svg>\n</figure>"
    )


def _histogram_card(column: Mapping[str, Any]) -> str:
    name, status = column.get("name"), _status(column)
    legend = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{label}'
        for _, label, colour in PAIRED_BARS
    )
    return (
        f'<figure class="card b-{status}">\n<figcaption><strong>{_text(name)}</strong> '
        f'{_badge(status)} <span class="muted">PSI {_number(column.get("psi"))} · '
        f"{_text(column.get('kind'))}</span></figcaption>\n"
        f'<p class="legend">{legend}</p>\n{_histogram_svg(column)}\n</figure>'
    )


def _histogram_svg(column: Mapping[str, Any]) -> str:
    """Paired bars per bin (reference, current) on a shared share-of-rows axis."""
    width, height, left, right, top = 380, 240, 50, 8, 8
    histogram = column.get("histogram")
    histogram = histogram if isinstance(histogram, Mapping) else {}
    labels = [str(label) for label in histogram.get("labels") or []]
    series = {
        key: [_share(v) for v in list(histogram.get(key) or [])[: len(labels)]]
        for key in ("reference", "current")
    }
    rotate = len(labels) > 6 or max((len(label) for label in labels), default=0) > 8
    bottom = 78 if rotate else 30
    plot_w, plot_h = width - left - right, height - top - bottom
    aria = html.escape(f"Histogram of {_plain(column.get('name'))}: reference vs current")
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{aria}">']
    if not labels:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "No histogram in the report.</text></svg>"
        )
        return "".join(parts)
    ticks = _nice_ticks(max([*series["reference"], *series["current"], 0.0]) or 0.01)
    peak = ticks[-1]
    band = plot_w / len(labels)
    step = max(1, math.ceil(len(labels) / 20))
    for tick in ticks:
        y = top + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick * 100:.3g}%</text>'
        )
    for i, label in enumerate(labels):
        for offset, key, colour in PAIRED_BARS:
            share = series[key][i] if i < len(series[key]) else 0.0
            bar_h = plot_h * share / peak
            parts.append(
                f'<rect x="{left + band * (i + offset):.1f}" y="{top + plot_h - bar_h:.1f}" '
                f'width="{band * 0.4:.1f}" height="{bar_h:.1f}" fill="{colour}">'
                f"<title>{html.escape(label)}: {key} {share:.1%}</title></rect>"
            )
        if i % step == 0:
            lx, ly = left + band * (i + 0.5), top + plot_h + 12
            anchor = 'text-anchor="middle"'
            if rotate:
                anchor = f'text-anchor="end" transform="rotate(-40 {lx:.1f} {ly})"'
            parts.append(
                f'<text x="{lx:.1f}" y="{ly}" {anchor}>{html.escape(_short(label, 16))}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#6b7280"/><text x="12" y="{top + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2})">share of rows</text></svg>'
    )
    return "".join(parts)

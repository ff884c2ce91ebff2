from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from airflow_mlops.drift.report import render_html, render_json

HOSTILE = '<script>alert("x")</script>'
VOID_ELEMENTS = {"meta", "br", "hr", "img", "input", "link"}
NUMERIC = [
    "txn_count_7d", "txn_count_30d", "amount_sum_7d", "amount_sum_30d", "amount_mean_30d",
    "amount_max_30d", "days_since_last_txn", "tenure_days", "age", "credit_limit",
    "utilisation_ratio", "late_payments_12m", "a_very_long_feature_name_for_layout_testing_90d",
]  # fmt: skip
CATEGORICAL = {
    "segment": ["retail", "business", "premium", "student"],
    "channel": ["web", "mobile", "branch", "phone", "partner_referral_programme"],
    "region": ["north", "south", "east", "west", "central", "islands", "overseas", "unknown"],
}
STATUSES = ["fail", "warn", "ok", "ok", "ok", "warn", "ok", "ok", "ok", "fail", "ok", "ok", "ok"]


def _shifted(weights: list[float], shift: float) -> list[float]:
    raw = [w * (1 + shift * (i - len(weights) / 2) / len(weights)) for i, w in enumerate(weights)]
    total = sum(raw)
    return [round(value / total, 4) for value in raw]


def _column(name: str, kind: str, status: str, labels: list[str]) -> dict[str, Any]:
    psi = {"ok": 0.012, "warn": 0.14, "fail": 0.61}[status] * (1 + len(name) % 5 / 10)
    reference = _shifted([1.0] * len(labels), 0.0)
    current = _shifted(reference, {"ok": 0.1, "warn": 0.9, "fail": 1.8}[status])
    return {
        "name": name,
        "kind": kind,
        "test": "ks" if kind == "numeric" else "chi2",
        "statistic": psi / 3,
        "p_value": 1e-12 if status == "fail" else 0.2,
        "p_value_adjusted": 4e-11 if status == "fail" else 0.64,
        "psi": psi,
        "wasserstein_normed": psi / 5 if kind == "numeric" else None,
        "jensen_shannon": None if kind == "numeric" else psi / 8,
        "null_rate_reference": 0.01,
        "null_rate_current": 0.2 if status == "fail" else 0.012,
        "unseen_categories": ["new_a", "new_b"] if kind == "categorical" and status != "ok" else [],
        "effect_metric": "psi",
        "effect_size": psi,
        "thresholds": [0.1, 0.25],
        "status": status,
        "histogram": {"labels": labels, "reference": reference, "current": current},
    }


def realistic_report() -> dict[str, Any]:
    """A report as ``compare()`` plus the operator would give: 16 columns, ok/warn/fail."""
    edges = [0, 12.5, 30, 55.25, 90, 140, 210, 320, 480, 750, 1200.75]
    numeric_labels = [f"[{low:g}, {high:g})" for low, high in zip(edges, edges[1:], strict=False)]
    columns = [
        _column(name, "numeric", status, numeric_labels)
        for name, status in zip(NUMERIC, STATUSES, strict=True)
    ]
    for (name, vocabulary), status in zip(CATEGORICAL.items(), ["ok", "warn", "fail"], strict=True):
        columns.append(_column(name, "categorical", status, [*vocabulary, "other"]))
    summary = {status: sum(c["status"] == status for c in columns) for status in SEVERITY_ORDER}
    return {
        "reference_rows": 1_000_000,
        "current_rows": 987_654,
        "status": "fail",
        "correction": "benjamini-hochberg",
        "alpha": 0.05,
        "summary": summary,
        "columns": columns,
        "table": "customer_features",
        "partition": "2026-01-04",
        "reference": {"kind": "profile", "name": "credit_model@v3"},
        "generated_by": {
            "dag": "daily_customer_features",
            "run": "scheduled__2026",
            "task": "drift",
        },
        "created_at": "2026-01-05T03:04:05+00:00",
    }


SEVERITY_ORDER = ("ok", "warn", "fail")


class _TagBalance(HTMLParser):
    """Fails on an end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()


def _parse(document: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(document)
    parser.close()
    assert parser.open == [], f"unclosed elements: {parser.open}"
    return parser


def test_json_is_valid_with_nan_and_infinity() -> None:
    import numpy as np

    report = {
        "status": "ok",
        "alpha": float("nan"),
        "columns": [{"psi": math.inf, "b": (1, 2), "n": np.int64(3), "p": np.float64("nan")}],
    }

    text = render_json(report)

    assert json.loads(text) == {
        "alpha": None,
        "columns": [{"b": [1, 2], "n": 3, "p": None, "psi": None}],
        "status": "ok",
    }
    assert text.startswith('{\n  "alpha": null')


def test_html_is_balanced_with_one_chart_per_column_plus_overview() -> None:
    report = realistic_report()

    parser = _parse(render_html(report))

    assert parser.counts["svg"] == len(report["columns"]) + 1
    assert parser.counts["figure"] == len(report["columns"]) + 1
    assert parser.counts["title"] >= 1


def test_html_names_every_column_and_its_status() -> None:
    report = realistic_report()

    document = render_html(report)

    for column in report["columns"]:
        assert column["name"] in document
    assert "<title>Drift report: customer_features 2026-01-04</title>" in document
    assert document.count('class="badge s-fail">fail</span>') >= 5  # header, table, cards
    assert "credit_model@v3" in document
    assert "1,000,000 reference · 987,654 current" in document


def test_html_lists_failing_columns_first() -> None:
    document = render_html(realistic_report())

    cards = re.findall(r'<figure class="card b-(\w+)">', document)

    assert cards == sorted(cards, key=["fail", "warn", "ok"].index)


def test_html_escapes_strings_from_the_data() -> None:
    report = realistic_report()
    report["table"] = HOSTILE
    report["columns"][0]["name"] = HOSTILE
    report["columns"][-1]["unseen_categories"] = [HOSTILE]
    report["columns"][-1]["histogram"]["labels"][0] = HOSTILE
    report["columns"][1]["status"] = '"><script>'

    document = render_html(report)

    assert "<script" not in document
    assert "&lt;script&gt;" in document
    _parse(document)


def test_html_has_no_external_references() -> None:
    document = render_html(realistic_report()).lower()

    for needle in ("http", "src=", "@import", "url(", "<link", "<script"):
        assert needle not in document


@pytest.mark.parametrize(
    "report",
    [
        pytest.param({}, id="empty-dict"),
        pytest.param({"status": "ok", "columns": []}, id="no-columns"),
        pytest.param(
            {"columns": [{"name": "x"}], "summary": None, "reference": None}, id="bare-column"
        ),
        pytest.param(
            {
                "columns": [
                    {
                        "name": "x",
                        "psi": None,
                        "thresholds": None,
                        "histogram": {"labels": ["a", "b"], "reference": [0.5], "current": None},
                    }
                ]
            },
            id="none-values",
        ),
        pytest.param(
            {"columns": [{"name": "x", "psi": float("nan"), "statistic": float("inf")}]},
            id="non-finite",
        ),
        pytest.param(
            {
                "columns": [
                    {
                        "psi": -math.inf,
                        "status": None,
                        "histogram": {
                            "labels": ["a", "b"],
                            "reference": [math.inf, -1],
                            "current": ["x", None],
                        },
                    }
                ]
            },
            id="garbage-values",
        ),
    ],
)
def test_html_renders_missing_and_none_values_as_dash(report: dict[str, Any]) -> None:
    document = render_html(report)

    parser = _parse(document)
    assert parser.counts["svg"] == len(report.get("columns", [])) + 1
    assert "—" in document
    assert "None" not in document
    assert "nan" not in document.lower()


def test_html_threshold_marks_only_for_psi_thresholds() -> None:
    column = {"name": "x", "psi": 0.3, "thresholds": [0.1, 0.25], "status": "fail"}
    other = {**column, "name": "y", "effect_metric": "jensen_shannon"}

    assert render_html({"columns": [column]}).count('stroke-dasharray="4 2"') == 2
    assert render_html({"columns": [other]}).count('stroke-dasharray="4 2"') == 0

"""Drift: the statistics (PSI, KS, chi-square, …), the streaming reference profile built on
quantile sketches, the comparison of a partition with it, the report, and the check of a
feature-store partition that ties them together.
"""

from __future__ import annotations

from airflow_mlops.drift.check import (
    DriftCheckRequest,
    build_profile,
    check_partition,
    load_profile,
    save_profile,
    write_report,
)
from airflow_mlops.drift.compare import ColumnReport, DriftReport, compare
from airflow_mlops.drift.profile import ProfileBuilder, ReferenceProfile
from airflow_mlops.drift.report import render_html, render_json
from airflow_mlops.drift.stats import (
    benjamini_hochberg,
    check_thresholds,
    chi2_homogeneity,
    fisher_2x2,
    histogram_counts,
    jensen_shannon,
    ks_pvalue,
    psi,
    verdict,
)

__all__ = [
    "ColumnReport",
    "DriftCheckRequest",
    "DriftReport",
    "ProfileBuilder",
    "ReferenceProfile",
    "benjamini_hochberg",
    "build_profile",
    "check_partition",
    "check_thresholds",
    "chi2_homogeneity",
    "compare",
    "fisher_2x2",
    "histogram_counts",
    "jensen_shannon",
    "ks_pvalue",
    "load_profile",
    "psi",
    "render_html",
    "render_json",
    "save_profile",
    "verdict",
    "write_report",
]

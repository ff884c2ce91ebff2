"""The installed distribution registers as an Airflow provider."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest

from airflow_mlops.demo.environment import airflow_cli
from airflow_mlops.provider import get_provider_info


def test_entry_point_resolves_to_provider_info():
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_mlops")
    ]
    info = entry.load()()
    assert info["package-name"] == "airflow-mlops"
    assert info == get_provider_info()


@pytest.mark.parametrize(
    ("conn_type", "fields"),
    [
        pytest.param(
            "feature_store",
            {
                "root",
                "keep_versions",
                "retention_grace_seconds",
                "table_format",
                "endpoint_url",
                "region",
                "allow_http",
            },
            id="feature-store",
        ),
        pytest.param("model_registry", {"root", "on_version_mismatch"}, id="model-registry"),
    ],
)
def test_connection_types_are_declared_with_form_fields(conn_type, fields):
    declared = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    assert set(declared[conn_type]["conn-fields"]) == fields
    assert "extra" in declared[conn_type]["ui-field-behaviour"]["hidden-fields"]


@pytest.mark.airflow
def test_airflow_lists_the_provider_and_its_hook(airflow_db):
    providers = json.loads(airflow_cli(airflow_db, "providers", "list", "-o", "json").stdout)
    assert "airflow-mlops" in {p["package_name"] for p in providers}
    hooks = airflow_cli(airflow_db, "providers", "hooks", "-o", "json").stdout
    assert "airflow_mlops.hooks.feature_store.FeatureStoreHook" in hooks
    assert "airflow_mlops.hooks.model_registry.ModelRegistryHook" in hooks

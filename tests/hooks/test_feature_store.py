"""FeatureStoreHook: a ``feature_store`` connection → a FeatureStore; the table's Asset."""

from __future__ import annotations

import re

import pytest

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.store.feature_store import FeatureStore


@pytest.fixture
def define_store(monkeypatch, tmp_path):
    """Define connection ``fs_test`` with the given fields; its store root (under tmp_path)."""

    def define(**fields) -> str:
        monkeypatch.setenv("AIRFLOW_CONN_FS_TEST", connection_json("feature_store", **fields))
        return str(tmp_path / "store")

    return define


@pytest.mark.parametrize(
    ("extra", "keep_versions"),
    [
        pytest.param({"root": "{root}"}, 3, id="root-default-keep"),
        pytest.param({"root": "{root}", "keep_versions": 5}, 5, id="root-and-keep"),
        pytest.param({"root": "{root}", "keep_versions": "2"}, 2, id="keep-as-text"),
        pytest.param(
            {"extra__feature_store__root": "{root}", "extra__feature_store__keep_versions": 4},
            4,
            id="prefixed-form-fields",
        ),
    ],
)
def test_reads_root_and_keep_versions_from_extra(define_store, tmp_path, extra, keep_versions):
    root = str(tmp_path / "store")
    define_store(
        extra={k: v.format(root=root) if isinstance(v, str) else v for k, v in extra.items()}
    )

    store = FeatureStoreHook("fs_test").get_store()

    assert isinstance(store, FeatureStore)
    assert store.root == root
    assert store.keep_versions == keep_versions


@pytest.mark.parametrize(
    ("extra", "grace"),
    [
        pytest.param({}, 60.0, id="default"),
        pytest.param({"retention_grace_seconds": 900}, 900.0, id="set"),
        pytest.param({"retention_grace_seconds": "0.5"}, 0.5, id="as-text"),
        pytest.param({"extra__feature_store__retention_grace_seconds": 30}, 30.0, id="prefixed"),
    ],
)
def test_reads_the_retention_grace_from_extra(define_store, tmp_path, extra, grace):
    define_store(extra={"root": str(tmp_path / "store"), **extra})

    assert FeatureStoreHook("fs_test").get_store().retention_grace == grace


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "soon",
            "Connection 'fs_test' has retention_grace_seconds='soon'; it must be a number of "
            "seconds >= 0.",
            id="not-a-number",
        ),
        pytest.param(
            -5,
            "The 'retention_grace' parameter of FeatureStore must be a number of seconds >= 0. "
            "Got -5.0 instead.",
            id="negative",
        ),
    ],
)
def test_bad_retention_grace_is_refused(define_store, tmp_path, value, message):
    define_store(extra={"root": str(tmp_path / "store"), "retention_grace_seconds": value})

    with pytest.raises(ArgumentError, match=re.escape(message)):
        FeatureStoreHook("fs_test").get_store()


def test_plain_extra_root_wins_over_the_prefixed_form(define_store, tmp_path):
    define_store(
        extra={"root": str(tmp_path / "plain"), "extra__feature_store__root": str(tmp_path / "x")}
    )

    assert FeatureStoreHook("fs_test").get_store().root == str(tmp_path / "plain")


def test_host_is_the_fallback_root(define_store, tmp_path):
    define_store(host=str(tmp_path / "from_host"))

    assert FeatureStoreHook("fs_test").get_store().root == str(tmp_path / "from_host")


def test_get_conn_is_the_store(define_store, tmp_path):
    define_store(extra={"root": str(tmp_path / "store")})

    assert FeatureStoreHook("fs_test").get_conn().root == str(tmp_path / "store")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="no-fields"),
        pytest.param({"extra": {"root": ""}}, id="empty-root"),
        pytest.param({"extra": {"keep_versions": 3}}, id="only-keep-versions"),
    ],
)
def test_missing_root_is_refused_naming_the_connection(define_store, fields):
    define_store(**fields)

    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "Connection 'fs_test' has no store root. Set its 'root' field (extra.root) to a "
            "local path or an object-storage URI."
        ),
    ):
        FeatureStoreHook("fs_test").get_store()


@pytest.mark.parametrize(
    "keep_versions",
    [
        pytest.param(-1, id="negative"),
        pytest.param(0, id="zero"),
    ],
)
def test_bad_keep_versions_is_refused(define_store, tmp_path, keep_versions):
    define_store(extra={"root": str(tmp_path / "store"), "keep_versions": keep_versions})

    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'keep_versions' parameter of FeatureStore must be an int >= 1. "
            f"Got {keep_versions} instead."
        ),
    ):
        FeatureStoreHook("fs_test").get_store()


def test_non_numeric_keep_versions_is_refused_naming_the_connection(define_store, tmp_path):
    define_store(extra={"root": str(tmp_path / "store"), "keep_versions": "three"})

    with pytest.raises(ArgumentError, match=re.escape("'fs_test'")):
        FeatureStoreHook("fs_test").get_store()


def test_default_connection_id():
    assert FeatureStoreHook().feature_store_conn_id == "feature_store_default"


@pytest.mark.parametrize(
    ("args", "name", "uri"),
    [
        pytest.param(
            ("customer_features",),
            "customer_features",
            "feature-store://feature_store_default/customer_features",
            id="default-store",
        ),
        pytest.param(("scores", "lake"), "scores", "feature-store://lake/scores", id="named-store"),
    ],
)
def test_feature_table_asset_name_and_uri(args, name, uri):
    asset = feature_table_asset(*args)

    assert (asset.name, asset.uri) == (name, uri)


@pytest.mark.parametrize(
    ("extra", "table_format"),
    [
        pytest.param({}, "parquet", id="default"),
        pytest.param({"table_format": "delta"}, "delta", id="delta"),
        pytest.param({"extra__feature_store__table_format": "delta"}, "delta", id="prefixed"),
    ],
)
def test_reads_the_table_format_from_extra(define_store, tmp_path, extra, table_format):
    define_store(extra={"root": str(tmp_path / "store"), **extra})

    assert FeatureStoreHook("fs_test").get_store().table_format == table_format


def test_an_unknown_table_format_is_refused(define_store, tmp_path):
    define_store(extra={"root": str(tmp_path / "store"), "table_format": "iceberg"})

    with pytest.raises(ArgumentError) as raised:
        FeatureStoreHook("fs_test").get_store()

    assert str(raised.value) == (
        "The 'table_format' parameter of FeatureStore must be one of 'parquet', 'delta'. "
        "Got 'iceberg' instead."
    )

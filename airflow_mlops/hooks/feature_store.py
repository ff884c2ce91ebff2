"""FeatureStoreHook: an Airflow connection of type ``feature_store`` → a FeatureStore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseHook

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.connection import extra_field

if TYPE_CHECKING:
    from airflow_mlops.store.feature_store import FeatureStore


class FeatureStoreHook(BaseHook):
    """Opens the feature store a connection points at.

    The connection (type ``feature_store``) carries the store root — a local path or an
    object-storage URI —, how many versions per partition to keep for rollback, how long
    the files of a version that left history stay for readers still reading them
    (``retention_grace_seconds``, default 60) and the tables' format (``table_format``:
    ``parquet``, the default, or ``delta``; docs/delta.md)::

        AIRFLOW_CONN_FEATURE_STORE_DEFAULT='{"conn_type": "feature_store",
            "extra": {"root": "/data/features", "keep_versions": 3,
                      "retention_grace_seconds": 900, "table_format": "delta"}}'

    On S3-compatible storage (an ``s3://`` root) it also carries where and how to reach it:
    ``endpoint_url`` (omit for AWS itself), ``region``, ``allow_http`` (for a plain-http
    endpoint), and the access key id and secret as the connection's login and password;
    without them, the standard AWS environment and config apply. Both the pyarrow and the
    delta-rs clients get them (:mod:`~airflow_mlops.io.object_storage`), with conditional
    PUTs on, so concurrent Delta commits are safe::

        AIRFLOW_CONN_FEATURE_STORE_DEFAULT='{"conn_type": "feature_store",
            "login": "<access key id>", "password": "<secret access key>",
            "extra": {"root": "s3://features/store", "table_format": "delta",
                      "endpoint_url": "http://seaweedfs:8333", "region": "us-east-1",
                      "allow_http": true}}'

    :param feature_store_conn_id: the connection id.
    """

    conn_name_attr = "feature_store_conn_id"
    default_conn_name = "feature_store_default"
    conn_type = "feature_store"
    hook_name = "Feature Store"

    def __init__(self, feature_store_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.feature_store_conn_id = feature_store_conn_id

    def get_conn(self) -> FeatureStore:
        return self.get_store()

    def get_store(self) -> FeatureStore:
        from airflow_mlops.store.feature_store import FeatureStore

        conn = self.get_connection(self.feature_store_conn_id)
        extra = conn.extra_dejson
        root = extra_field(extra, self.conn_type, "root") or conn.host
        if not root:
            raise ArgumentError(
                f"Connection {self.feature_store_conn_id!r} has no store root. Set its "
                "'root' field (extra.root) to a local path or an object-storage URI."
            )
        settings: dict[str, Any] = {}
        for field, parameter, kind, rule in (
            ("keep_versions", "keep_versions", int, "a whole number >= 1"),
            ("retention_grace_seconds", "retention_grace", float, "a number of seconds >= 0"),
            ("table_format", "table_format", str, "'parquet' or 'delta'"),
        ):
            value = extra_field(extra, self.conn_type, field)
            if value in (None, ""):
                continue
            try:
                settings[parameter] = kind(value)
            except (TypeError, ValueError):
                raise ArgumentError(
                    f"Connection {self.feature_store_conn_id!r} has {field}={value!r}; it must "
                    f"be {rule}."
                ) from None
        if str(root).startswith("s3://"):
            settings["storage_options"] = self._storage_options(conn, extra)
        return FeatureStore(str(root), **settings)

    def _storage_options(self, conn: Any, extra: dict[str, Any]) -> dict[str, str]:
        """The object store's settings in delta-rs's ``AWS_*`` keys (secret included: never
        log them)."""
        options = {"AWS_CONDITIONAL_PUT": "etag"}
        for field, key in (("endpoint_url", "AWS_ENDPOINT_URL"), ("region", "AWS_REGION")):
            value = extra_field(extra, self.conn_type, field)
            if value:
                options[key] = str(value)
        if str(extra_field(extra, self.conn_type, "allow_http")).lower() in ("true", "1"):
            options["AWS_ALLOW_HTTP"] = "true"
        if conn.login:
            options["AWS_ACCESS_KEY_ID"] = conn.login
        if conn.password:
            options["AWS_SECRET_ACCESS_KEY"] = conn.password
        return options


def feature_table_asset(table: str, feature_store_conn_id: str = "feature_store_default") -> Asset:
    """The Airflow Asset that stands for a feature table (published by the load operator)."""
    return Asset(name=table, uri=f"feature-store://{feature_store_conn_id}/{table}")

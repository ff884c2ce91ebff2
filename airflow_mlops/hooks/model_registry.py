"""ModelRegistryHook: an Airflow connection of type ``model_registry`` → a ModelRegistry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.connection import extra_field

if TYPE_CHECKING:
    from airflow_mlops.models.registry import ModelRegistry

_MODES = ("warn", "refuse", "ignore")


class ModelRegistryHook(BaseHook):
    """Opens the model registry a connection points at.

    The connection (type ``model_registry``) carries the registry root — a local path or
    an object-storage URI — and what loading does when the running scikit-learn, joblib
    or Python differs from the one a model was saved with (``warn``, ``refuse`` or
    ``ignore``; default ``warn``)::

        AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT='{"conn_type": "model_registry",
            "extra": {"root": "/data/models", "on_version_mismatch": "refuse"}}'

    :param model_registry_conn_id: the connection id.
    """

    conn_name_attr = "model_registry_conn_id"
    default_conn_name = "model_registry_default"
    conn_type = "model_registry"
    hook_name = "Model Registry"

    def __init__(self, model_registry_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.model_registry_conn_id = model_registry_conn_id

    def get_conn(self) -> ModelRegistry:
        return self.get_registry()

    def get_registry(self) -> ModelRegistry:
        from airflow_mlops.models.registry import ModelRegistry

        conn = self.get_connection(self.model_registry_conn_id)
        extra = conn.extra_dejson
        root = extra_field(extra, self.conn_type, "root") or conn.host
        if not root:
            raise ArgumentError(
                f"Connection {self.model_registry_conn_id!r} has no registry root. Set its "
                "'root' field (extra.root) to a local path or an object-storage URI."
            )
        mode = extra_field(extra, self.conn_type, "on_version_mismatch") or "warn"
        if mode not in _MODES:
            raise ArgumentError(
                f"Connection {self.model_registry_conn_id!r} has on_version_mismatch={mode!r}. "
                f"Set it to one of {', '.join(map(repr, _MODES))}, or leave it empty for 'warn'."
            )
        return ModelRegistry(str(root), on_version_mismatch=mode)

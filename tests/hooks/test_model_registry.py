"""ModelRegistryHook: a ``model_registry`` connection → a ModelRegistry."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.model_registry import ModelRegistryHook
from airflow_mlops.models.registry import ModelRegistry

if TYPE_CHECKING:
    from pathlib import Path

Define = Callable[..., None]


@pytest.fixture
def define_registry(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Define connection ``mr_test`` with the given fields."""

    def define(**fields: Any) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_MR_TEST", connection_json("model_registry", **fields))

    return define


@pytest.mark.parametrize(
    ("extra", "mode"),
    [
        pytest.param({"root": "{root}"}, "warn", id="root-default-mode"),
        pytest.param({"root": "{root}", "on_version_mismatch": "refuse"}, "refuse", id="refuse"),
        pytest.param({"root": "{root}", "on_version_mismatch": ""}, "warn", id="empty-mode"),
        pytest.param(
            {
                "extra__model_registry__root": "{root}",
                "extra__model_registry__on_version_mismatch": "ignore",
            },
            "ignore",
            id="prefixed-form-fields",
        ),
    ],
)
def test_reads_root_and_mode_from_extra(
    define_registry: Define, tmp_path: Path, extra: dict[str, str], mode: str
) -> None:
    root = str(tmp_path / "models")
    define_registry(extra={k: v.format(root=root) for k, v in extra.items()})

    registry = ModelRegistryHook("mr_test").get_registry()

    assert isinstance(registry, ModelRegistry)
    assert (registry.root, registry.on_version_mismatch) == (root, mode)


def test_plain_extra_root_wins_over_the_prefixed_form(
    define_registry: Define, tmp_path: Path
) -> None:
    define_registry(
        extra={"root": str(tmp_path / "plain"), "extra__model_registry__root": str(tmp_path)}
    )

    assert ModelRegistryHook("mr_test").get_registry().root == str(tmp_path / "plain")


def test_host_is_the_fallback_root_and_get_conn_is_the_registry(
    define_registry: Define, tmp_path: Path
) -> None:
    define_registry(host=str(tmp_path / "from_host"))

    assert ModelRegistryHook("mr_test").get_conn().root == str(tmp_path / "from_host")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="no-fields"),
        pytest.param({"extra": {"root": ""}}, id="empty-root"),
        pytest.param({"extra": {"on_version_mismatch": "warn"}}, id="only-mode"),
    ],
)
def test_missing_root_is_refused_naming_the_connection(
    define_registry: Define, fields: dict[str, Any]
) -> None:
    define_registry(**fields)

    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "Connection 'mr_test' has no registry root. Set its 'root' field (extra.root) to a "
            "local path or an object-storage URI."
        ),
    ):
        ModelRegistryHook("mr_test").get_registry()


def test_bad_mode_is_refused_naming_the_connection(define_registry: Define, tmp_path: Path) -> None:
    define_registry(extra={"root": str(tmp_path), "on_version_mismatch": "explode"})

    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "Connection 'mr_test' has on_version_mismatch='explode'. Set it to one of 'warn', "
            "'refuse', 'ignore', or leave it empty for 'warn'."
        ),
    ):
        ModelRegistryHook("mr_test").get_registry()


def test_hook_attributes() -> None:
    hook = ModelRegistryHook()

    assert hook.model_registry_conn_id == "model_registry_default"
    assert (hook.conn_name_attr, hook.conn_type, hook.hook_name) == (
        "model_registry_conn_id",
        "model_registry",
        "Model Registry",
    )


def test_import_does_not_load_heavy_libraries(repo: Path) -> None:
    heavy = ("pandas", "pyarrow", "sklearn", "joblib", "numpy", "scipy")
    code = (
        "import sys, airflow_mlops.hooks.model_registry\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )

    assert out.stdout.strip() == ""

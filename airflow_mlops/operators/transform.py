"""Transform operators: SQL over staged Parquet (DuckDB), or a Python function per batch."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import argument_error, check_int
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook
from airflow_mlops.operators.base import PartitionedOperator
from airflow_mlops.store.staging import staged_lineage, staged_output, staged_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pyarrow as pa
    from airflow.sdk import Context

    from airflow_mlops.store.feature_store import FeatureStore
    from airflow_mlops.store.staging import StagedOutput


def _merge_lineage(refs: Iterable[Any], name: str, code_sha256: str) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    transforms: dict[str, Any] = {}
    for ref in refs:
        upstream = staged_lineage(ref)
        sources.update(upstream.get("sources", {}))
        transforms.update(upstream.get("transforms", {}))
    transforms[name] = code_sha256
    return {"sources": sources, "transforms": transforms}


class _StagingTransform(PartitionedOperator):
    """Shared by the transforms: writes the result to the staging area and reports it."""

    def __init__(
        self,
        *,
        name: str | None,
        batch_size: int,
        feature_store_conn_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name or self.task_id
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.feature_store_conn_id = feature_store_conn_id

    def stage(
        self,
        context: Context,
        store: FeatureStore,
        partition: str,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        lineage: dict[str, Any],
    ) -> StagedOutput:
        from airflow_mlops.io.parquet import write_batches
        from airflow_mlops.progress import Progress

        ti = context["ti"]
        path = store.staging_path(ti.dag_id, ti.run_id, self.staging_name(context, self.name))
        progress = Progress(f"transform {self.name}", logger=self.log)
        written = write_batches(
            batches, store.filesystem, path, schema=schema, on_batch=progress.add
        )
        progress.done()
        return staged_output(written, partition=partition, lineage=lineage)


class SqlTransformOperator(_StagingTransform):
    """Runs SQL over staged Parquet inputs with DuckDB and stages the result.

    Each input is a view named by its key. DuckDB runs joins, group-bys and windows out
    of core within ``memory_limit``; the result streams to Parquet batch by batch.

    :param sql: the query, or a ``.sql`` file on the DAG's ``template_searchpath``.
        Jinja-templated; bind values with ``$name`` and ``parameters``.
    :param inputs: view name → upstream output (``extract.output``) or staged path.
    :param parameters: values DuckDB binds to ``$name`` placeholders. Templated.
    :param name: the staged dataset's name (default: the task id).
    :param memory_limit: DuckDB's memory limit, e.g. ``"1GB"``.
    :param threads: DuckDB worker threads.
    :param batch_size: rows per output batch.
    :param feature_store_conn_id: the feature store whose staging area is used.

    .. code-block:: python

        SqlTransformOperator(
            task_id="customer_features",
            sql="customer_features.sql",
            inputs={"customers": extract_customers.output, "transactions": extract_tx.output},
            parameters={"partition": "{{ partition }}"},
        )
    """

    template_fields: Sequence[str] = ("sql", "inputs", "parameters", "name")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        sql: str,
        inputs: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
        name: str | None = None,
        memory_limit: str = "1GB",
        threads: int = 2,
        batch_size: int = 100_000,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name, batch_size=batch_size, feature_store_conn_id=feature_store_conn_id, **kwargs
        )
        if not isinstance(inputs, Mapping) or not inputs:
            raise argument_error(
                "inputs",
                "SqlTransformOperator",
                "a non-empty mapping of view name to upstream output",
                inputs,
            )
        bad = [key for key in inputs if not str(key).isidentifier()]
        if bad:
            raise ArgumentError(
                f"SqlTransformOperator input names must be SQL identifiers. Got {bad!r}."
            )
        self.sql = self.non_empty_sql(sql)
        self.inputs = dict(inputs)
        self.parameters = parameters
        if not isinstance(memory_limit, str) or not re.fullmatch(
            r"\s*\d+(\.\d+)?\s*[KMGT]i?B\s*", memory_limit, flags=re.IGNORECASE
        ):
            raise argument_error(
                "memory_limit",
                "SqlTransformOperator",
                "a size such as '512MB' or '2GB'",
                memory_limit,
            )
        self.memory_limit = memory_limit
        self.threads = check_int(threads, "threads", type(self).__name__)

    def execute_partition(self, context: Context, partition: str) -> StagedOutput:
        from airflow_mlops.transform import sql_transform

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        paths = {
            view: staged_path(ref, argument=f"inputs[{view!r}]", operator="SqlTransformOperator")
            for view, ref in self.inputs.items()
        }
        code_hash = hashlib.sha256(self.sql.encode()).hexdigest()
        lineage = _merge_lineage(self.inputs.values(), self.name, code_hash)
        self.log.info(
            "SQL transform %r over %s for partition %s", self.name, ", ".join(paths), partition
        )
        with sql_transform(
            self.sql,
            paths,
            filesystem=store.filesystem,
            parameters=self.parameters,
            batch_size=self.batch_size,
            memory_limit=self.memory_limit,
            threads=self.threads,
        ) as reader:
            return self.stage(context, store, partition, reader.schema, reader, lineage)


class PythonTransformOperator(_StagingTransform):
    """Applies a Python function to a staged input, batch by batch, and stages the result.

    The function takes one batch — a ``pyarrow.RecordBatch`` or, with
    ``batch_format="pandas"``, a ``pandas.DataFrame`` — and returns a RecordBatch, Table
    or DataFrame. It must be row-local (no state across batches); use the SQL transform
    for group-bys and windows.

    :param python_callable: the function applied to each batch.
    :param input: the upstream output (``extract.output``) or a staged path.
    :param batch_format: ``"arrow"`` (default) or ``"pandas"``.
    :param name: the staged dataset's name (default: the task id).
    :param batch_size: rows per batch given to the function.
    :param feature_store_conn_id: the feature store whose staging area is used.

    .. code-block:: python

        def add_ratio(df):
            return df.assign(debt_to_income=df.debt / df.income)

        PythonTransformOperator(
            task_id="ratios", python_callable=add_ratio, input=extract.output,
            batch_format="pandas",
        )
    """

    template_fields: Sequence[str] = ("input", "name")
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        python_callable: Callable[[Any], Any],
        input: Any,
        batch_format: str = "arrow",
        name: str | None = None,
        batch_size: int = 100_000,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name, batch_size=batch_size, feature_store_conn_id=feature_store_conn_id, **kwargs
        )
        if not callable(python_callable):
            raise argument_error(
                "python_callable", "PythonTransformOperator", "callable", python_callable
            )
        if batch_format not in ("arrow", "pandas"):
            raise argument_error(
                "batch_format", "PythonTransformOperator", "'arrow' or 'pandas'", batch_format
            )
        self.python_callable = python_callable
        self.input = input
        self.batch_format = batch_format

    def execute_partition(self, context: Context, partition: str) -> StagedOutput:
        import inspect

        from airflow_mlops.io.parquet import iter_batches, read_schema
        from airflow_mlops.transform import map_batches

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        path = staged_path(self.input, argument="input", operator="PythonTransformOperator")
        try:
            code = inspect.getsource(self.python_callable)
        except (OSError, TypeError):
            code = getattr(self.python_callable, "__qualname__", repr(self.python_callable))
        lineage = _merge_lineage([self.input], self.name, hashlib.sha256(code.encode()).hexdigest())
        schema, batches = map_batches(
            self.python_callable,
            iter_batches(store.filesystem, path, batch_size=self.batch_size),
            input_schema=read_schema(store.filesystem, path),
            batch_format=self.batch_format,
        )
        return self.stage(context, store, partition, schema, batches, lineage)

"""SqlExtractOperator: a templated SQL query → a staged Parquet file, streamed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_bool, check_int
from airflow_mlops.hooks.feature_store import FeatureStoreHook
from airflow_mlops.hooks.sql_source import SqlSourceHook
from airflow_mlops.operators.base import PartitionedOperator
from airflow_mlops.store.staging import staged_output

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_mlops.store.staging import StagedOutput


class SqlExtractOperator(PartitionedOperator):
    """Runs a query on any Airflow SQL connection and stages its result as Parquet.

    Rows stream from the database as Arrow record batches straight into a Parquet file
    in the feature store's staging area, so memory is bounded by ``batch_size``, not by
    the result. PostgreSQL streams through ``COPY`` (ADBC); other databases through
    their DB-API cursor. The XCom is a small reference (path, rows, checksums, query hash).

    :param sql: the query, or a ``.sql`` file found on the DAG's ``template_searchpath``.
        Jinja-templated; ``{{ partition }}`` is the run's partition day.
    :param conn_id: the Airflow SQL connection to read from.
    :param parameters: values bound by the database driver (``%(name)s`` on PostgreSQL,
        ``:name`` on SQLite) — never formatted into the SQL. Templated.
    :param name: the staged dataset's name (default: the task id).
    :param batch_size: rows per Arrow batch (and the memory bound).
    :param allow_empty: stage an empty file when the query returns no rows (default True);
        when False an empty result fails the task.
    :param feature_store_conn_id: the feature store whose staging area receives the file.

    .. code-block:: python

        SqlExtractOperator(
            task_id="extract_transactions",
            conn_id="warehouse",
            sql="extract_transactions.sql",
            parameters={"start": "{{ macros.ds_add(partition, -29) }}", "end": "{{ partition }}"},
        )
    """

    template_fields: Sequence[str] = ("sql", "parameters", "name")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        sql: str,
        conn_id: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        name: str | None = None,
        batch_size: int = 100_000,
        allow_empty: bool = True,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = self.non_empty_sql(sql)
        self.conn_id = conn_id
        self.parameters = parameters
        self.name = name or self.task_id
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.allow_empty = check_bool(allow_empty, "allow_empty", type(self).__name__)
        self.feature_store_conn_id = feature_store_conn_id

    def execute_partition(self, context: Context, partition: str) -> StagedOutput:
        from airflow_mlops.io.parquet import write_batches
        from airflow_mlops.progress import Progress
        from airflow_mlops.sources.base import query_sha256

        source = SqlSourceHook(self.conn_id).get_source()
        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        ti = context["ti"]
        path = store.staging_path(ti.dag_id, ti.run_id, self.staging_name(context, self.name))
        self.log.info(
            "Extracting %r for partition %s from %s", self.name, partition, source.describe()
        )
        progress = Progress(f"extract {self.name}", logger=self.log)
        with source.stream(self.sql, self.parameters, batch_size=self.batch_size) as stream:
            written = write_batches(
                stream,
                store.filesystem,
                path,
                schema=stream.schema,
                on_batch=progress.add,
                allow_empty=self.allow_empty,
            )
        progress.done()
        if written.rows == 0:
            self.log.warning(
                "The query of %r returned no rows for partition %s: staged an EMPTY file "
                "(allow_empty=True). Downstream steps get no rows; check the query's filters "
                "and the partition, or set allow_empty=False to fail instead.",
                self.name,
                partition,
            )
        query_hash = query_sha256(self.sql, self.parameters)
        lineage = {
            "sources": {
                self.name: {
                    "source": source.describe(),
                    "query_sha256": query_hash,
                    "rows": written.rows,
                }
            }
        }
        return staged_output(written, partition=partition, lineage=lineage)

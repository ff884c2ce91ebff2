"""TrainModelOperator: sweep a grid on a feature partition, register the best candidates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import argument_error, check_int
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook
from airflow_mlops.hooks.model_registry import ModelRegistryHook
from airflow_mlops.operators.base import PartitionedOperator
from airflow_mlops.store.staging import staged_lineage, staged_path

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_mlops.contract import FeatureContract


class TrainModelOperator(PartitionedOperator):
    """Trains candidates on one feature partition joined to labels; registers the best.

    Every grid point is cross-validated (stratified folds, fixed seed); its params and
    metrics are recorded. The best ``len(aliases)`` candidates are registered in rank
    order, the first under ``aliases[0]`` (e.g. ``champion``), the next under
    ``aliases[1]`` (e.g. ``challenger``); each record carries the whole sweep.

    :param features_table: the feature table to train on (the run's partition).
    :param labels: upstream output (``extract.output``) or staged Parquet of labels.
    :param label_column: the label's column in ``labels`` (0/1).
    :param model_name: the registry's model name.
    :param make_estimator: ``params -> unfitted scikit-learn estimator``.
    :param grid: ``[(candidate name, params), …]``.
    :param input_contract: the model's inputs (names, types, nullability).
    :param model_output: how to read scores, e.g. ``{"score": "default_probability",
        "threshold": 0.3, "positive": "decline", "negative": "approve",
        "entity_key": "customer_id"}``; ``entity_key`` is the join key with the labels.
    :param aliases: aliases given to the best candidates, best first.
    :param folds: cross-validation folds.
    :param check_runtimes: before registering each candidate, compile it with tl2cgen and
        compare its probabilities (and decisions at ``model_output["threshold"]``) with
        scikit-learn's on the first rows of the training frame; the verdict is recorded in
        ``record["runtimes"]`` and lets :class:`BatchScoreOperator` use the compiled
        runtime. An unsupported model or a missing ``accel`` extra is recorded as not
        verified, never a failure.
    """

    template_fields: Sequence[str] = ("labels",)
    ui_color = "#f3e8fb"

    def __init__(
        self,
        *,
        features_table: str,
        labels: Any,
        label_column: str,
        model_name: str,
        make_estimator: Callable[[Mapping[str, Any]], Any],
        grid: Sequence[tuple[str, Mapping[str, Any]]],
        input_contract: FeatureContract,
        model_output: Mapping[str, Any],
        aliases: Sequence[str] = ("champion", "challenger"),
        folds: int = 3,
        check_runtimes: bool = True,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        model_registry_conn_id: str = ModelRegistryHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(make_estimator):
            raise ArgumentError(
                "The 'make_estimator' parameter of TrainModelOperator must be callable. "
                f"Got {make_estimator!r} instead."
            )
        if len(grid) < len(aliases):
            raise ArgumentError(
                f"TrainModelOperator has {len(aliases)} aliases to give but a grid of "
                f"{len(grid)} candidate(s); give at least as many candidates as aliases."
            )
        if "entity_key" not in model_output:
            raise ArgumentError(
                "The 'model_output' parameter of TrainModelOperator must name the 'entity_key' "
                f"joining features and labels. Got {dict(model_output)!r} instead."
            )
        self.features_table = features_table
        self.labels = labels
        self.label_column = label_column
        self.model_name = model_name
        self.make_estimator = make_estimator
        self.grid = list(grid)
        self.input_contract = input_contract
        self.model_output = dict(model_output)
        from airflow_mlops.models.records import validate_name

        if isinstance(aliases, str):
            raise ArgumentError(
                "The 'aliases' parameter of TrainModelOperator must be a list of alias names. "
                f"Got the string {aliases!r}; write [{aliases!r}]."
            )
        self.aliases = [validate_name(alias, "An alias name") for alias in aliases]
        self.folds = check_int(folds, "folds", type(self).__name__, min_value=2)
        if not isinstance(check_runtimes, bool):  # checks.check_bool says "True or False"
            raise argument_error("check_runtimes", type(self).__name__, "a bool", check_runtimes)
        self.check_runtimes = check_runtimes
        self.feature_store_conn_id = feature_store_conn_id
        self.model_registry_conn_id = model_registry_conn_id

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any]:
        from airflow_mlops.models.training import TrainingRequest, train_and_register

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        registry = ModelRegistryHook(self.model_registry_conn_id).get_registry()
        key = self.model_output["entity_key"]
        features = store.read_partition(
            self.features_table, partition, columns=[key, *self.input_contract.names]
        )
        request = TrainingRequest(
            model_name=self.model_name,
            features_table=self.features_table,
            partition=partition,
            labels_path=staged_path(self.labels, argument="labels", operator="TrainModelOperator"),
            labels_lineage=staged_lineage(self.labels),
            features_version=store.manifest(self.features_table, partition)["version"],
            label_column=self.label_column,
            make_estimator=self.make_estimator,
            grid=self.grid,
            input_contract=self.input_contract,
            output=self.model_output,
            aliases=self.aliases,
            folds=self.folds,
            check_runtimes=self.check_runtimes,
            trained_by=f"{self.dag_id}.{self.task_id}",
        )
        registered = train_and_register(
            registry, request, features, filesystem=store.filesystem, log=self.log
        )
        return {"model_name": self.model_name, "partition": partition, "registered": registered}

"""The demo credit-risk model: features of ``customer_features`` → P(default).

A column transformer (scaled numerics + one-hot region) feeding a
HistGradientBoostingClassifier, or a logistic regression as the simpler family; a small
grid of both is swept, the best becomes ``champion`` and the runner-up ``challenger``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.contract import FeatureContract
from airflow_mlops.models.training import Candidate, labelled_frame, sweep

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

MODEL_NAME = "credit_risk"
ENTITY_KEY = "customer_id"
LABEL = "defaulted"
NUMERIC = [
    "income",
    "debt",
    "age",
    "history_score",
    "debt_to_income",
    "txn_count_7d",
    "txn_amount_7d",
    "txn_count_30d",
    "txn_amount_30d",
    "txn_max_amount_30d",
]
CATEGORICAL = ["region"]
#: the published feature table ``customer_features`` (daily_customer_features' contract)
CUSTOMER_FEATURES = FeatureContract.from_dict(
    {
        ENTITY_KEY: ("int64", False),
        "income": ("float64", False),
        "debt": ("float64", False),
        "age": ("int64", False),
        "history_score": ("float64", False),
        "region": ("string", False),
        "debt_to_income": "float64",
        "txn_count_7d": ("int64", False),
        "txn_amount_7d": ("float64", False),
        "txn_count_30d": ("int64", False),
        "txn_amount_30d": ("float64", False),
        "txn_max_amount_30d": ("float64", False),
    }
)
#: the model's inputs: every feature but the key
INPUT_CONTRACT = CUSTOMER_FEATURES.select([*NUMERIC, *CATEGORICAL])
OUTPUT = {
    "score": "default_probability",
    "threshold": 0.3,
    "positive": "decline",
    "negative": "approve",
    "entity_key": ENTITY_KEY,
}
GRID: list[tuple[str, dict[str, Any]]] = [
    ("hgb-shallow", {"family": "hgb", "max_leaf_nodes": 15, "learning_rate": 0.1}),
    ("hgb-deep", {"family": "hgb", "max_leaf_nodes": 31, "learning_rate": 0.05}),
    ("hgb-slow", {"family": "hgb", "max_leaf_nodes": 15, "learning_rate": 0.03}),
    ("logreg", {"family": "logreg", "C": 1.0}),
]


def make_pipeline(params: Mapping[str, Any]) -> Any:
    """The unfitted pipeline for one grid point."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    options = {k: v for k, v in params.items() if k != "family"}
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("region", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    if params.get("family") == "logreg":
        model: Any = LogisticRegression(max_iter=1000, **options)
    else:
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0, **options)
    return Pipeline([("preprocess", preprocess), ("model", model)])


def train(features: pa.Table, outcomes: pa.Table, *, folds: int = 3) -> list[Candidate]:
    """Sweep :data:`GRID` on the labelled rows; candidates best first."""
    x, y = labelled_frame(
        features,
        outcomes,
        entity_key=ENTITY_KEY,
        label_column=LABEL,
        feature_names=INPUT_CONTRACT.names,
    )
    return sweep(make_pipeline, GRID, x, y, folds=folds)

"""The seed's model-serving microservice, as the serving benchmark's floor: a FastAPI app that
``joblib.load``s the artifact at start and calls ``predict_proba`` once per request (one
row), under uvicorn with its default settings. The request body is the demo credit model's
eleven inputs (the seed's own had four).

    .venv/bin/python benchmarks/seed_toy.py MODEL.joblib --port 8090
"""

from __future__ import annotations

import argparse
import sys

import joblib
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

THRESHOLD = 0.3


class CreditApplication(BaseModel):
    """One customer's features (``debt_to_income`` may be missing)."""

    income: float
    debt: float
    age: int
    history_score: float
    region: str
    debt_to_income: float | None
    txn_count_7d: int
    txn_amount_7d: float
    txn_count_30d: int
    txn_amount_30d: float
    txn_max_amount_30d: float


def create_app(model_path: str) -> FastAPI:
    """``POST /predict``: one application in, its default probability and decision out."""
    model = joblib.load(model_path)
    app = FastAPI(title="Credit risk API (seed toy)")

    @app.post("/predict")
    def predict(application: CreditApplication) -> dict[str, object]:
        row = pd.DataFrame([application.model_dump()])
        probability = float(model.predict_proba(row)[0, 1])
        decision = "decline" if probability > THRESHOLD else "approve"
        return {"default_probability": probability, "decision": decision}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the joblib artifact")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.model), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

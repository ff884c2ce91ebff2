"""``python -m airflow_mlops``: the same CLI as ``airflow-mlops``."""

from __future__ import annotations

from airflow_mlops.cli.main import main

raise SystemExit(main())

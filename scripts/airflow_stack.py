"""`make airflow` / `make airflow-stop`: the real multi-process Airflow of this project.

Starts PostgreSQL-backed, CeleryExecutor Airflow (api-server, scheduler, dag-processor,
triggerer, two Celery workers) with this project's DAGs and connections and a seeded
warehouse, leaves it running and prints the UI address and login; `stop` ends it by PID.
"""

from __future__ import annotations

import argparse
import sys

from airflow_mlops.demo.stack import start, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("start", "stop"))
    args = parser.parse_args()
    if args.action == "stop":
        print("stopped:", ", ".join(stop()) or "nothing was running")
        return
    stop()
    state = start()
    print(
        f"Airflow UI: http://127.0.0.1:{state['port']}/  (login: admin, password in "
        f"{state['passwords']})"
    )
    print(f"Stop it with: {sys.executable} scripts/airflow_stack.py stop")


if __name__ == "__main__":
    main()

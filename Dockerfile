# syntax=docker/dockerfile:1
#
# The airflow-mlops provider on the official Apache Airflow image. One image serves every
# component of docker-compose.airflow.yml (api-server, scheduler, dag-processor,
# triggerer, Celery workers) and its one-shot jobs (airflow-init, warehouse-seed).
#
#   docker compose -f docker-compose.airflow.yml build
#   docker build -t airflow-mlops:3.3.2 .          # the same image, without compose
#
# The project is installed into the image: never through _PIP_ADDITIONAL_REQUIREMENTS,
# which reinstalls on every container start and is meant for quick experiments only.
#
# .dockerignore keeps local state (.venv, var/, .git, caches) out of the build context;
# the COPY lines below pick only what the image needs.

FROM apache/airflow:3.3.2-python3.11

# keep in step with the FROM line (tests/test_deployment_files.py checks it)
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
ARG CONSTRAINTS_URL=https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PYTHON_VERSION}.txt

# The feature-store and model-registry roots (AIRFLOW_CONN_FEATURE_STORE_DEFAULT and
# AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT point here). A named volume mounted on /data starts
# as a copy of this directory, ownership included, so the airflow user (uid 50000,
# group 0) can write it. Group-writable for deployments that run with another AIRFLOW_UID.
USER root
RUN mkdir -p /data/features /data/models \
    && chown -R airflow:0 /data \
    && chmod -R g+rwX /data
USER airflow

COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow-mlops/
COPY --chown=airflow:0 airflow_mlops /opt/airflow-mlops/airflow_mlops
COPY --chown=airflow:0 scripts /opt/airflow-mlops/scripts

# Constraints: Airflow's constraints file pins the whole Airflow ecosystem, but the
# project's data stack (duckdb, adbc-driver-postgresql, scikit-learn, treelite, ...) is not
# all in it, and the pins it does have for pandas/pyarrow may lag the project's bounds.
# So constrain only what Airflow itself runs on -- apache-airflow and its providers, the
# Celery stack (celery, kombu, billiard, vine, redis) and SQLAlchemy/Alembic for the
# metadata DB -- to the 3.3.2 release pins, pin apache-airflow itself so the resolver
# cannot move it, and let the project's own dependencies resolve within pyproject.toml's
# bounds (packages the base image already satisfies are left as they are).
# "celery[redis]<5.7": celery 5.7 removed what the celery provider 3.26 imports, and the
# scheduler/workers then die with "CeleryExecutor could not be loaded" (see
# docs/deploying.md); the release constraints pin an older celery anyway, this keeps a
# loosened constraint from reintroducing it.
RUN curl -fsSL "${CONSTRAINTS_URL}" -o /tmp/constraints-full.txt \
    && grep -iE '^(apache-airflow[a-z0-9-]*|celery|kombu|billiard|vine|redis|sqlalchemy|alembic)==' \
        /tmp/constraints-full.txt > /tmp/constraints-airflow.txt \
    && pip install --no-cache-dir --constraint /tmp/constraints-airflow.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "celery[redis]<5.7" \
        "/opt/airflow-mlops[postgres]" \
    && rm /tmp/constraints-full.txt /tmp/constraints-airflow.txt \
    && python -c "from airflow_mlops.provider import get_provider_info; print(get_provider_info()['package-name'])"

# The example DAGs and their SQL, baked in so the image also runs without bind mounts
# (KubernetesExecutor pods, a registry-pulled image). docker-compose.airflow.yml mounts
# ./dags and ./sql over these for editing in place.
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 sql /opt/airflow/sql
ENV AIRFLOW_MLOPS_SQL_DIR=/opt/airflow/sql

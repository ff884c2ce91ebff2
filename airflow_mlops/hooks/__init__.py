"""Hooks: resolve Airflow connections into engine objects."""

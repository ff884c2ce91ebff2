from __future__ import annotations

import logging

from airflow_mlops.progress import Progress


def test_progress_logs_rows_rate_and_elapsed(caplog):
    logger = logging.getLogger("test.progress")
    progress = Progress("extract t", logger=logger, every=0.0)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress.add(10)
        progress.add(5)
        progress.done()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract t progress: 10 rows, ")
    assert lines[-1].startswith("extract t done: 15 rows, ")
    assert all("rows/s" in line and "s elapsed" in line for line in lines)


def test_progress_is_rate_limited(caplog):
    logger = logging.getLogger("test.progress.quiet")
    progress = Progress("load", logger=logger, every=3600)
    with caplog.at_level(logging.INFO, logger="test.progress.quiet"):
        for _ in range(100):
            progress.add(1)
    assert caplog.records == []
    assert progress.rows == 100

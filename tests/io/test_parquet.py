from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_mlops.exceptions import EmptyInputError
from airflow_mlops.io.parquet import file_sha256, iter_batches, read_schema, resolve, write_batches

LOCAL = pafs.LocalFileSystem()
SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float64())])


def _batches(n: int, size: int):
    for start in range(0, n, size):
        ids = list(range(start, min(n, start + size)))
        yield pa.record_batch({"id": ids, "x": [i / 2 for i in ids]}, schema=SCHEMA)


def test_write_batches_streams_and_reports_rows_and_checksum(tmp_path):
    path = str(tmp_path / "sub" / "out.parquet")
    seen = []
    written = write_batches(_batches(1000, 300), LOCAL, path, on_batch=seen.append)
    assert (written.rows, seen) == (1000, [300, 300, 300, 100])
    data = (tmp_path / "sub" / "out.parquet").read_bytes()
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.bytes == len(data)
    assert pq.read_table(path).num_rows == 1000


def test_same_input_gives_byte_identical_files(tmp_path):
    a = write_batches(_batches(500, 100), LOCAL, str(tmp_path / "a.parquet"))
    b = write_batches(_batches(500, 100), LOCAL, str(tmp_path / "b.parquet"))
    assert a.sha256 == b.sha256


def test_batches_are_cast_to_the_given_schema(tmp_path):
    batch = pa.record_batch({"id": pa.array([1], pa.int32()), "x": pa.array([1], pa.int32())})
    path = str(tmp_path / "cast.parquet")
    write_batches(iter([batch]), LOCAL, path, schema=SCHEMA)
    assert read_schema(LOCAL, path) == SCHEMA


def test_empty_input_writes_an_empty_file_with_the_schema(tmp_path):
    path = str(tmp_path / "empty.parquet")
    assert write_batches(iter([]), LOCAL, path, schema=SCHEMA).rows == 0
    assert pq.read_table(path).schema == SCHEMA


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"schema": SCHEMA, "allow_empty": False}, id="empty-refused"),
        pytest.param({}, id="no-schema"),
    ],
)
def test_empty_input_without_permission_or_schema_is_an_error(tmp_path, kwargs):
    with pytest.raises(EmptyInputError, match=re.escape("the input was empty")):
        write_batches(iter([]), LOCAL, str(tmp_path / "e.parquet"), **kwargs)


def test_iter_batches_reads_several_files_in_bounded_batches(tmp_path):
    paths = [str(tmp_path / f"{i}.parquet") for i in range(2)]
    for p in paths:
        write_batches(_batches(250, 250), LOCAL, p)
    sizes = [b.num_rows for b in iter_batches(LOCAL, paths, batch_size=100, columns=["id"])]
    assert sum(sizes) == 500
    assert max(sizes) <= 100


def test_resolve_local_paths_and_uris(tmp_path):
    fs, path = resolve(str(tmp_path))
    assert isinstance(fs, pafs.LocalFileSystem)
    assert path == str(tmp_path)
    fs, path = resolve(f"file://{tmp_path}")
    assert isinstance(fs, pafs.LocalFileSystem)
    assert path == str(tmp_path)


def test_file_sha256_reads_in_chunks(tmp_path):
    target = tmp_path / "blob"
    target.write_bytes(b"x" * 10_000)
    assert file_sha256(LOCAL, str(target), chunk=1024) == (
        hashlib.sha256(b"x" * 10_000).hexdigest(),
        10_000,
    )

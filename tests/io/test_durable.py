"""Durable files: atomic replaces, JSON, temp names and their clean-up, locks, error mapping."""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from typing import TYPE_CHECKING

import pyarrow.fs as pafs
import pytest

from airflow_mlops.exceptions import ArgumentError, StoreAccessError, StoreError
from airflow_mlops.io.durable import (
    as_io_error,
    file_lock,
    list_dir,
    read_bytes,
    remove_temps,
    swap_symlink,
    temp_name,
    write_atomic,
    write_json,
    writer_lock,
)

if TYPE_CHECKING:
    from pathlib import Path

LOCAL = pafs.LocalFileSystem()


@pytest.fixture
def bucket(tmp_path: Path) -> pafs.FileSystem:
    """A filesystem that is not ``LocalFileSystem``: the object-store code path."""
    return pafs.SubTreeFileSystem(str(tmp_path), LOCAL)


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ref.json"

    write_atomic(LOCAL, str(path), b"one", local=True)
    write_atomic(LOCAL, str(path), b"two", local=True)

    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["ref.json"]


def test_write_atomic_on_an_object_store_is_one_put(
    bucket: pafs.FileSystem, tmp_path: Path
) -> None:
    write_atomic(bucket, "sub/ref.json", b"one", local=False)

    assert (tmp_path / "sub" / "ref.json").read_bytes() == b"one"
    assert os.listdir(tmp_path / "sub") == ["ref.json"]


@pytest.mark.parametrize(
    "atomic", [pytest.param(False, id="in-place"), pytest.param(True, id="atomic")]
)
def test_write_json_indents_by_two(tmp_path: Path, atomic: bool) -> None:
    path = tmp_path / "record.json"

    write_json(LOCAL, str(path), {"a": [1]}, local=True, atomic=atomic)

    assert path.read_text() == json.dumps({"a": [1]}, indent=2)


def test_read_bytes_and_list_dir_of_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x")

    assert read_bytes(LOCAL, str(tmp_path / "a")) == b"x"
    assert read_bytes(LOCAL, str(tmp_path / "missing")) is None
    assert [info.base_name for info in list_dir(LOCAL, str(tmp_path))] == ["a"]
    assert list_dir(LOCAL, str(tmp_path / "missing")) == []


def test_swap_symlink_points_at_the_new_target(tmp_path: Path) -> None:
    link = tmp_path / "ds=2026-01-05"

    swap_symlink(str(link), "_versions/v1")
    swap_symlink(str(link), "_versions/v2")

    assert os.readlink(link) == "_versions/v2"
    assert os.listdir(tmp_path) == [link.name]


def test_temp_names_are_hidden_and_unique() -> None:
    first, second = temp_name("ref.json"), temp_name("ref.json")

    assert re.fullmatch(r"\.ref\.json\.tmp-[0-9a-f]{8}", first)
    assert first != second


@pytest.mark.parametrize(
    ("final_name", "left"),
    [
        pytest.param("a.json", [".b.json.tmp-0badc0de", ".hidden", "a.json"], id="one-name"),
        pytest.param(None, [".hidden", "a.json"], id="any-name"),
    ],
)
def test_remove_temps(tmp_path: Path, final_name: str | None, left: list[str]) -> None:
    for name in (".a.json.tmp-0badc0de", ".b.json.tmp-0badc0de", ".hidden", "a.json"):
        (tmp_path / name).write_bytes(b"")

    removed = remove_temps(str(tmp_path), final_name)

    assert sorted(os.listdir(tmp_path)) == left
    assert removed == 4 - len(left)
    assert remove_temps(str(tmp_path / "missing")) == 0


def test_file_lock_is_exclusive(tmp_path: Path) -> None:
    path = str(tmp_path / "_locks" / "x.lock")
    entered = threading.Event()

    def contender() -> None:
        with file_lock(path):
            entered.set()

    with file_lock(path):
        thread = threading.Thread(target=contender)
        thread.start()
        assert not entered.wait(0.2)
    thread.join(timeout=5)
    assert entered.is_set()


def test_writer_lock_is_nothing_on_an_object_store(tmp_path: Path) -> None:
    with writer_lock(str(tmp_path / "_locks" / "x.lock"), local=False):
        pass

    assert not (tmp_path / "_locks").exists()


def test_writer_lock_failure_names_the_lock_and_errors_inside_pass(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = str(tmp_path / "file" / "x.lock")

    with pytest.raises(StoreError, match=re.escape(f"Could not lock {path}")):
        with writer_lock(path, local=True):
            pass
    with pytest.raises(PermissionError), writer_lock(str(tmp_path / "x.lock"), local=True):
        raise PermissionError("inside the locked block")


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        pytest.param(OSError(errno.ENOSPC, "No space left"), StoreError, True, id="disk-full"),
        pytest.param(PermissionError(errno.EACCES, "denied"), StoreAccessError, False, id="perm"),
        pytest.param(
            NotADirectoryError(errno.ENOTDIR, "no dir"), StoreAccessError, False, id="path"
        ),
    ],
)
def test_as_io_error(error: OSError, expected: type[StoreError], retryable: bool) -> None:
    with pytest.raises(expected, match=re.escape("Could not write /s/f: ")) as info:
        with as_io_error("/s/f", "write"):
            raise error

    assert type(info.value) is expected
    assert info.value.retryable is retryable
    assert info.value.__cause__ is error


def test_as_io_error_passes_the_package_errors_through() -> None:
    error = ArgumentError("bad")

    with pytest.raises(ArgumentError) as info, as_io_error("/s/f", "write"):
        raise error

    assert info.value is error

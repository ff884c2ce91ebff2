"""Durable files on a local disk or an object store: atomic replaces, fsyncs, temp files, locks.

What the feature store and the model registry share beneath their layouts. Locally a file is
replaced atomically by renaming a fsynced temp file over it and fsyncing the directory; on an
object store by one PUT (an upload becomes visible whole or not at all). Temp files are hidden
(``.<name>.tmp-<hex>``), so readers that skip ``.``-prefixed names never see them, and the
writer holding the lock of a name deletes the temps killed writers left. Locks are ``flock``
s: local only, released by the kernel even when the holder is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import AirflowMlopsError, StoreAccessError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow.fs as pafs

_TEMP_MARK = ".tmp-"


def write_json(
    filesystem: pafs.FileSystem, path: str, data: Any, *, local: bool, atomic: bool = False
) -> None:
    """Write ``data`` as JSON (indented by 2).

    :param atomic: replace the file in one step (:func:`write_atomic`); otherwise, on a
        local filesystem, the file is written in place, durably (fsync) but not atomically.
    """
    payload = json.dumps(data, indent=2).encode("utf-8")
    if atomic:
        write_atomic(filesystem, path, payload, local=local)
        return
    if local:
        with open(path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(payload)


def write_atomic(filesystem: pafs.FileSystem, path: str, payload: bytes, *, local: bool) -> None:
    """Replace the file at ``path`` with ``payload`` in one atomic step.

    Local: a durable temp file renamed over it. Object stores: one PUT (an upload becomes
    visible whole or not at all).
    """
    if not local:
        # one PUT: object stores make a completed upload visible atomically
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as stream:
            stream.write(payload)
        return
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, temp_name(name))
    with open(temp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fsync_dir(directory)


def read_bytes(filesystem: pafs.FileSystem, path: str) -> bytes | None:
    """The file's bytes, or ``None`` if there is no such file (other errors propagate)."""
    try:
        with filesystem.open_input_stream(path) as stream:
            return bytes(stream.read())
    except FileNotFoundError:
        return None


def list_dir(filesystem: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    """The entries of directory ``path`` (none if it is missing).

    :raises StoreError: when listing fails (:class:`StoreAccessError` for a path problem).
    """
    import pyarrow.fs as pafs

    with as_io_error(path, "list"):
        return list(filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)))


def swap_symlink(link: str, target: str) -> None:
    """Point the symlink ``link`` at ``target`` (relative to its directory) atomically."""
    directory, name = os.path.split(link)
    temp = os.path.join(directory, temp_name(name))
    os.symlink(target, temp)
    os.replace(temp, link)
    fsync_dir(directory)


def temp_name(final_name: str) -> str:
    """A hidden, unique temp name beside ``final_name`` (readers skip ``.``-prefixed names)."""
    return f".{final_name}{_TEMP_MARK}{secrets.token_hex(4)}"


def remove_temps(directory: str, final_name: str | None = None) -> int:
    """Delete leftover temp files or symlinks of ``final_name`` (default: of any name) in
    ``directory``. Only under the lock that serialises the writers of those names."""
    prefix = f".{final_name}{_TEMP_MARK}" if final_name else "."
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(prefix) and _TEMP_MARK in entry.name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def fsync_file(path: str) -> None:
    """Make a file's written bytes durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_dir(path: str) -> None:
    """Make a directory's entries (new files, renames) durable."""
    fsync_file(path)


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (blocking); released even on SIGKILL."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def writer_lock(path: str, *, local: bool) -> Iterator[None]:
    """Hold :func:`file_lock` on ``path`` on a local filesystem; nothing on an object store.

    Object stores have no lock: their writers must be kept apart by the caller.

    :raises StoreError: when the lock cannot be taken (:class:`StoreAccessError` for a
        path or permission problem); errors of the locked block pass through unchanged.
    """
    if not local:
        yield
        return
    with contextlib.ExitStack() as stack:
        with as_io_error(path, "lock"):
            stack.enter_context(file_lock(path))
        yield


@contextlib.contextmanager
def as_io_error(path: str, action: str) -> Iterator[None]:
    """Turn an ``OSError`` into a :class:`StoreError` naming ``path``.

    Retryable, except permission and path-type errors (:class:`StoreAccessError`); the
    package's own errors pass through unchanged.
    """
    try:
        yield
    except AirflowMlopsError:
        raise
    except (PermissionError, NotADirectoryError, IsADirectoryError) as exc:
        raise StoreAccessError(
            f"Could not {action} {path}: {exc}. Check that the store's root is a directory "
            "this process may read and write."
        ) from exc
    except OSError as exc:
        raise StoreError(
            f"Could not {action} {path}: {exc}. This may be transient; retry."
        ) from exc

"""Local disk with an object store's semantics, for tests of non-local store roots.

A :class:`pyarrow.fs.PyFileSystem` (so the store and registry treat it as non-local: no
``flock``, no symlinks, writes by upload) whose uploads become visible whole when they
complete, like a PUT: bytes go to a hidden ``.upload-…`` file renamed over the target on
close. A writer killed mid-upload leaves that file, as it would leave an incomplete
multipart upload (cleaned by a bucket lifecycle rule, never visible to readers).
"""

from __future__ import annotations

import io
import os
import secrets
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

UPLOAD_MARK = ".upload-"


class _Upload(io.FileIO):
    def __init__(self, path: str) -> None:
        directory, name = os.path.split(path)
        self.final = path
        super().__init__(
            os.path.join(directory, f"{UPLOAD_MARK}{secrets.token_hex(4)}-{name}"), "wb"
        )

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        os.fsync(self.fileno())
        super().close()
        os.replace(self.name, self.final)


class AtomicUploads(pafs.FileSystemHandler):
    """Delegates to the local filesystem; ``open_output_stream`` uploads atomically."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicUploads)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(AtomicUploads)

    def get_type_name(self) -> str:
        return "atomic-uploads"

    def normalize_path(self, path: str) -> str:
        return path

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("not supported")

    def delete_file(self, path: str) -> None:
        self.local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.local.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        return self.local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return pa.PythonFile(_Upload(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise OSError("object stores cannot append")


def object_store_filesystem() -> pafs.FileSystem:
    return pafs.PyFileSystem(AtomicUploads())

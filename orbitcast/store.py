"""Where bytes rest: a folder or any `pyarrow.fs` URI (s3://, gs://, hdfs://, file://).

Keys are built only from validated names (see `orbitcast.delivery.names`), and `StorePath`
refuses anything that could climb out of the store's root.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import pyarrow.fs as pafs


class StoreError(ValueError):
    """A key that is not allowed in the store."""


def open_store(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path) for a local folder or a pyarrow.fs URI."""
    if "://" in uri:
        fs, base = pafs.FileSystem.from_uri(uri)
        return fs, base.rstrip("/")
    base = str(Path(uri).expanduser().resolve())
    return pafs.LocalFileSystem(), base


class Store:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, self.base = open_store(uri)
        self.fs.create_dir(self.base, recursive=True)

    def path(self, *parts: str) -> str:
        for p in parts:
            if not p or p in (".", "..") or "/" in p or "\\" in p or "\x00" in p:
                raise StoreError(f"invalid store key part {p!r}")
        return posixpath.join(self.base, *parts)

    def put(self, parts: tuple[str, ...], data: bytes) -> str:
        path = self.path(*parts)
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        # Write then move, so that a reader never sees half a file.
        tmp = path + ".partial"
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        self.fs.move(tmp, path)
        return path

    def get(self, parts: tuple[str, ...]) -> bytes | None:
        path = self.path(*parts)
        try:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def list(self, parts: tuple[str, ...]) -> list[str]:
        sel = pafs.FileSelector(self.path(*parts), allow_not_found=True)
        return sorted(posixpath.basename(i.path) for i in self.fs.get_file_info(sel))

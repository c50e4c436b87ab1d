"""Blob storage through `pyarrow.fs`: a local folder by default, S3/GCS/HDFS by URI.

Blob ids are 16 random bytes (32 hex), as Threema's. Ids are validated before they touch a
path, so a request can never name a file outside the store. Writes go to a temporary name
first and are moved into place, so a reader never sees half a blob.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

import pyarrow.fs as pafs

from orbitcast.sealing.hexstr import is_blob_id

from .errors import NotFound

class BlobStore:
    def __init__(self, filesystem: pafs.FileSystem, base_path: str) -> None:
        self.filesystem = filesystem
        self.base_path = base_path.rstrip("/")
        self.filesystem.create_dir(self.base_path, recursive=True)

    @classmethod
    def from_uri(cls, uri_or_path: str) -> "BlobStore":
        """`/some/dir`, `file:///some/dir`, `s3://bucket/prefix`, ... (pyarrow resolves it)."""
        if "://" in uri_or_path:
            filesystem, path = pafs.FileSystem.from_uri(uri_or_path)
            return cls(filesystem, path)
        return cls(pafs.LocalFileSystem(), uri_or_path)

    def _path(self, blob_id: str) -> str:
        if not is_blob_id(blob_id):
            raise NotFound("no such blob")
        # Two-level fan-out keeps directories small on local disks.
        return f"{self.base_path}/{blob_id[:2]}/{blob_id}"

    def put(self, data: bytes) -> str:
        blob_id = secrets.token_hex(16)
        path = self._path(blob_id)
        self.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        temporary = f"{path}.tmp-{secrets.token_hex(4)}"
        with self.filesystem.open_output_stream(temporary) as out:
            out.write(data)
        self.filesystem.move(temporary, path)
        return blob_id

    def get(self, blob_id: str) -> bytes:
        path = self._path(blob_id)
        try:
            with self.filesystem.open_input_stream(path) as stream:
                return stream.readall()
        except FileNotFoundError as exc:
            raise NotFound("no such blob") from exc

    def exists(self, blob_id: str) -> bool:
        if not is_blob_id(blob_id):
            return False
        return self.filesystem.get_file_info(self._path(blob_id)).type == pafs.FileType.File

    def delete(self, blob_id: str) -> None:
        try:
            self.filesystem.delete_file(self._path(blob_id))
        except FileNotFoundError as exc:
            raise NotFound("no such blob") from exc


class MemoryBlobs:
    """Blobs that live only in memory, oldest evicted first once `limit` bytes are held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        blob_id = secrets.token_hex(16)
        with self._lock:
            self._items[blob_id] = data
            self.size += len(data)
            while self.size > self.limit and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self.size -= len(old)
        return blob_id

    def get(self, blob_id: str) -> bytes | None:
        with self._lock:
            return self._items.get(blob_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

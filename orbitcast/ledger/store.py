"""One append-only file per feed, through `pyarrow.fs` (local folder by default, any URI).

File layout:

    8B   magic b"OCLEDG1\\n"
    then records, each:
    u32  payload length (big-endian)
    u32  CRC-32 of (kind || payload); a wrong length makes it cover other bytes and fail
    u8   kind (1 = leaf, 2 = signed tree head)
    ...  payload

Why this shape: a crash mid-write leaves a *prefix* of the last record on disk. On reload every
record's length must fit in the file and its CRC must match; the first record that fails marks
the end of the trusted log, and everything from there on is cut off (copied aside to
`<feed>.log.torn-<offset>` for inspection, then the file is rewritten without it). Nothing
after a bad record is ever trusted, even if it parses, because an append-only writer only ever
damages its tail. The CRC is not a security measure (the Merkle root and signed heads are);
it only tells a torn or garbled tail from a whole record.

Appends go through one `open_append_stream` kept open, one `write` + `flush` per record, so a
record reaches the OS as soon as it is appended (cheap: no reopen, no fsync; `pyarrow.fs`
exposes no fsync, so a power cut may lose the last records the OS had not written, which the
torn-tail rule then handles). Filesystems without append streams (object stores) are refused
with a clear error rather than emulated by rewriting the object on every append.
"""

from __future__ import annotations

import logging
import struct
import threading
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

import pyarrow as pa
import pyarrow.fs as pafs

from .leaf import check_name

log = logging.getLogger(__name__)

MAGIC = b"OCLEDG1\n"
_HEADER = struct.Struct(">IIB")
MAX_RECORD = 1 << 20  # a leaf is ~100 bytes and a head ~150: a larger length is garbage


class RecordKind(IntEnum):
    LEAF = 1
    TREE_HEAD = 2


class StoreError(RuntimeError):
    """The store cannot be used (not a ledger file, no append support)."""


_KINDS = {k.value: k for k in RecordKind}  # a dict lookup: the enum call is slow per record


def encode_record(kind: RecordKind, payload: bytes) -> bytes:
    length = len(payload)
    if length > MAX_RECORD:
        raise ValueError(f"record of {length} bytes exceeds {MAX_RECORD}")
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return _HEADER.pack(length, crc, kind) + payload


@dataclass
class Recovery:
    """What a reload found: how many records it trusted and what it cut off."""

    records: list[tuple[RecordKind, bytes]] = field(default_factory=list)
    valid_bytes: int = 0
    cut_bytes: int = 0
    reason: str = ""


def scan_records(data: bytes) -> Recovery:
    """Parse a whole file image; stop at the first record that is incomplete or fails its CRC."""
    rec = Recovery()
    if len(data) < len(MAGIC):
        # A crash while writing the magic itself: nothing was ever appended.
        if MAGIC.startswith(data):
            rec.cut_bytes = len(data)
            rec.reason = "torn file header" if data else ""
            return rec
        raise StoreError("not an orbitcast ledger file (bad magic)")
    if not data.startswith(MAGIC):
        raise StoreError("not an orbitcast ledger file (bad magic)")
    pos = len(MAGIC)
    view = memoryview(data)
    end = len(data)
    records = rec.records
    while pos < end:
        if end - pos < _HEADER.size:
            rec.reason = f"torn record header at byte {pos}"
            break
        length, crc, kind = _HEADER.unpack_from(data, pos)
        if length > MAX_RECORD:
            rec.reason = f"implausible record length {length} at byte {pos}"
            break
        body_end = pos + _HEADER.size + length
        if body_end > end:
            rec.reason = f"torn record at byte {pos} ({end - pos} of {body_end - pos} bytes)"
            break
        if zlib.crc32(view[pos + 8 : body_end]) != crc:  # kind || payload, contiguous
            rec.reason = f"checksum mismatch at byte {pos}"
            break
        rkind = _KINDS.get(kind)
        if rkind is None:
            rec.reason = f"unknown record kind {kind} at byte {pos}"
            break
        records.append((rkind, bytes(view[pos + _HEADER.size : body_end])))
        pos = body_end
    rec.valid_bytes = pos
    rec.cut_bytes = end - pos
    return rec


class LogStore:
    """Where the per-feed logs live: a `pyarrow.fs.FileSystem` and a base directory."""

    def __init__(self, filesystem: pafs.FileSystem | None = None, base: str = "ledger") -> None:
        self.fs = filesystem if filesystem is not None else pafs.LocalFileSystem()
        self.base = base.rstrip("/") or "/"
        self.fs.create_dir(self.base, recursive=True)

    @classmethod
    def from_uri(cls, uri: str) -> "LogStore":
        """`file:///var/orbitcast/ledger`, a plain path, or any URI `pyarrow.fs` understands."""
        fs, path = pafs.FileSystem.from_uri(uri)
        return cls(fs, path)

    def path_for(self, feed: str) -> str:
        # The feed name is checked so that a name can never climb out of the base directory.
        return f"{self.base}/{check_name('feed', feed)}.log"

    def open(self, feed: str) -> tuple["FeedLogFile", Recovery]:
        """Load the feed's log (cutting a torn tail) and open it for appends."""
        path = self.path_for(feed)
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            data = b""
        else:
            with self.fs.open_input_stream(path) as f:
                data = f.read()
        recovery = scan_records(data)
        if recovery.cut_bytes or not data:
            if recovery.cut_bytes:
                log.warning(
                    "ledger %s: cut %d bytes: %s", path, recovery.cut_bytes, recovery.reason
                )
                self._set_aside(path, data, recovery.valid_bytes)
            self._rewrite(path, data[: recovery.valid_bytes] or MAGIC)
            if recovery.valid_bytes < len(MAGIC):
                recovery.valid_bytes = len(MAGIC)
        try:
            stream = self.fs.open_append_stream(path)
        except (pa.ArrowNotImplementedError, NotImplementedError) as e:
            raise StoreError(f"{type(self.fs).__name__} cannot append to {path}: {e}") from None
        return FeedLogFile(path, stream, recovery.valid_bytes), recovery

    def _set_aside(self, path: str, data: bytes, valid: int) -> None:
        try:
            with self.fs.open_output_stream(f"{path}.torn-{valid}") as out:
                out.write(data[valid:])
        except OSError as e:  # forensics only: never stop a recovery for it
            log.warning("ledger %s: could not keep the cut tail: %s", path, e)

    def _rewrite(self, path: str, data: bytes) -> None:
        # Write beside, then move over: a crash here leaves either the old or the new file.
        tmp = f"{path}.tmp"
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        self.fs.move(tmp, path)


class FeedLogFile:
    """The open append stream of one feed's log."""

    def __init__(self, path: str, stream: pa.NativeFile, size: int) -> None:
        self.path = path
        self._stream = stream
        self._lock = threading.Lock()
        self.size = size  # bytes on disk, for reports

    def append(self, kind: RecordKind, payload: bytes) -> None:
        record = encode_record(kind, payload)
        with self._lock:
            self._stream.write(record)
            self._stream.flush()
            self.size += len(record)

    def close(self) -> None:
        with self._lock:
            if not self._stream.closed:
                self._stream.close()

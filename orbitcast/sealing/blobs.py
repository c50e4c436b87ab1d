"""File blobs: secretbox with a random key and Threema's fixed nonces, `x` metadata,
fragmentation of large segments and the receiver-side reassembler.

Threema encrypts a file under a fresh random key with the FIXED nonce `0..01` (thumbnail:
`0..02`, same key). A fixed nonce is only safe because the key is never reused for another
file, so every fragment of a large segment gets its own key and its own file message.

`x` metadata (receivers ignore keys they do not know, as Threema does)::

    d        duration in seconds (float; Threema's own meaning of x.d)
    feed     feed name            rendition  rendition name      seq  sequence number (int)
    pdt      program date-time, ISO 8601 UTC                      kind "media" | "init" | "part"
    digest   sha256 hex of the WHOLE segment (every part carries the same value)
    size     byte length of the whole segment
    part     1-based fragment number      parts  fragment count (only when fragmented)
    part_index   kind "part" only: the LL-HLS part's index within segment `seq` (from 0)
    independent  kind "part" only: true when the part starts with a keyframe
    made         kind "part" only: unix time the transcoder cut it (times the delivery hop)

An LL-HLS part travels as a file of its own (kind "part"): its digest and size are the part's.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import nacl.exceptions
from nacl.secret import SecretBox

from .errors import BadBlob, BadDigest, BadMac, BadMessage
from .messages import FileMessage, RenderingType

FILE_NONCE = b"\x00" * 23 + b"\x01"
THUMBNAIL_NONCE = b"\x00" * 23 + b"\x02"
BLOB_KEY_BYTES = SecretBox.KEY_SIZE  # 32
DEFAULT_MAX_BLOB_BYTES = 50 * 1024 * 1024  # Threema's gateway blob limit


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_blob_key() -> bytes:
    return secrets.token_bytes(BLOB_KEY_BYTES)


def encrypt_blob(key: bytes, data: bytes, *, thumbnail: bool = False) -> bytes:
    """MAC || ciphertext, nonce NOT included (the receiver knows the fixed nonce)."""
    nonce = THUMBNAIL_NONCE if thumbnail else FILE_NONCE
    return SecretBox(key).encrypt(data, nonce).ciphertext


def decrypt_blob(key: bytes, blob: bytes, *, thumbnail: bool = False) -> bytes:
    nonce = THUMBNAIL_NONCE if thumbnail else FILE_NONCE
    if len(key) != BLOB_KEY_BYTES:
        raise BadBlob("blob key must be 32 bytes")
    try:
        return SecretBox(key).decrypt(blob, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise BadMac("blob does not authenticate") from exc


MAX_LADDER = 16  # rungs a part may name as the ladder in force


def _ladder(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_LADDER or not all(
            isinstance(r, str) and 0 < len(r) <= 64 for r in raw):
        raise ValueError("x.ladder must be a list of at most 16 rendition names")
    return tuple(raw)


MAX_INIT_TAG = 64


def _init_tag(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) > MAX_INIT_TAG or any(c not in "0123456789abcdef" for c in raw):
        raise ValueError("x.init must be an init tag (lowercase hex)")
    return raw


@dataclass(frozen=True)
class SegmentMeta:
    """What the packager states about a segment, carried in the file message's `x`."""

    feed: str
    rendition: str
    seq: int
    duration: float
    digest: str
    size: int
    program_date_time: datetime | None = None
    kind: str = "media"
    part_index: int | None = None
    independent: bool = False
    made_at: float = 0.0
    ladder: tuple[str, ...] = ()  # parts: the rungs made for this seq (Part.ladder)
    # parts and segments: the tag of the init they play with, so that a receiver that missed
    # the init's own message (an edge started again with nothing to hand its window over)
    # can find it in the archive
    init: str = ""

    def to_x(self) -> dict[str, Any]:
        x: dict[str, Any] = {
            "d": float(self.duration),
            "feed": self.feed,
            "rendition": self.rendition,
            "seq": int(self.seq),
            "digest": self.digest,
            "size": int(self.size),
            "kind": self.kind,
        }
        if self.part_index is not None:
            x["part_index"] = int(self.part_index)
            x["independent"] = bool(self.independent)
            x["made"] = round(float(self.made_at), 6)
            if self.ladder:
                x["ladder"] = list(self.ladder)
        if self.init:
            x["init"] = self.init
        if self.program_date_time is not None:
            pdt = self.program_date_time
            if pdt.tzinfo is None:  # naive times in this project are UTC
                pdt = pdt.replace(tzinfo=timezone.utc)
            x["pdt"] = pdt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return x

    @classmethod
    def from_x(cls, x: dict[str, Any]) -> "SegmentMeta":
        try:
            pdt_raw = x.get("pdt")
            pdt = datetime.fromisoformat(pdt_raw.replace("Z", "+00:00")) if isinstance(pdt_raw, str) else None
            meta = cls(
                feed=str(x["feed"]),
                rendition=str(x["rendition"]),
                seq=int(x["seq"]),
                duration=float(x.get("d", 0.0)),
                digest=str(x["digest"]).lower(),
                size=int(x["size"]),
                program_date_time=pdt,
                kind=str(x.get("kind", "media")),
                part_index=int(x["part_index"]) if "part_index" in x else None,
                independent=x.get("independent") is True,
                made_at=float(x.get("made", 0.0)),
                ladder=_ladder(x.get("ladder", ())),
                init=_init_tag(x.get("init", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadMessage("x metadata lacks or mangles feed/rendition/seq/digest/size") from exc
        if len(meta.digest) != 64 or any(c not in "0123456789abcdef" for c in meta.digest):
            raise BadMessage("x.digest must be sha256 hex")
        if meta.kind == "part" and (meta.part_index is None or meta.part_index < 0):
            raise BadMessage("a part needs a part_index >= 0")
        return meta

    @classmethod
    def for_data(
        cls,
        data: bytes,
        *,
        feed: str,
        rendition: str,
        seq: int,
        duration: float,
        program_date_time: datetime | None = None,
        kind: str = "media",
    ) -> "SegmentMeta":
        return cls(feed, rendition, seq, duration, sha256_hex(data), len(data), program_date_time, kind)


@dataclass(frozen=True)
class SealedPart:
    """One encrypted blob ready for upload, and what its file message will say."""

    key: bytes = field(repr=False)
    blob: bytes = field(repr=False)
    plain_size: int
    x: dict[str, Any]
    file_name: str

    def file_message(self, blob_id: str, mime_type: str, caption: str | None = None) -> FileMessage:
        return FileMessage(
            blob_id=blob_id,
            key=self.key,
            mime_type=mime_type,
            file_name=self.file_name,
            size=self.plain_size,
            caption=caption,
            rendering=RenderingType.FILE,
            x=self.x,
        )


@dataclass(frozen=True)
class SealedFile:
    meta: SegmentMeta
    parts: tuple[SealedPart, ...]
    mime_type: str

    def file_messages(self, blob_ids: Iterable[str]) -> list[FileMessage]:
        ids = list(blob_ids)
        if len(ids) != len(self.parts):
            raise ValueError("one blob id per part")
        return [p.file_message(b, self.mime_type) for p, b in zip(self.parts, ids)]


def default_file_name(meta: SegmentMeta) -> str:
    if meta.kind == "init":
        return f"{meta.feed}-{meta.rendition}-init.mp4"
    if meta.kind == "part":
        return f"{meta.feed}-{meta.rendition}-{meta.seq:08d}.{meta.part_index}.m4s"
    return f"{meta.feed}-{meta.rendition}-{meta.seq:08d}.m4s"


def seal_file(
    data: bytes,
    meta: SegmentMeta,
    *,
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
    mime_type: str = "video/mp4",
    file_name: str | None = None,
) -> SealedFile:
    """Encrypt `data` once (shared by every recipient) into one or more blobs.

    A blob is plaintext + 16 bytes of MAC, so parts carry at most `max_blob_bytes - 16`
    plaintext bytes each. Every part has its own random key (fixed nonce!)."""
    if meta.digest != sha256_hex(data) or meta.size != len(data):
        raise BadDigest("segment metadata does not describe these bytes")
    capacity = max_blob_bytes - SecretBox.MACBYTES
    if capacity <= 0:
        raise ValueError("max_blob_bytes must exceed the 16-byte MAC")
    name = file_name or default_file_name(meta)
    base_x = meta.to_x()
    if len(data) <= capacity:
        key = new_blob_key()
        return SealedFile(meta, (SealedPart(key, encrypt_blob(key, data), len(data), base_x, name),), mime_type)
    count = -(-len(data) // capacity)
    view = memoryview(data)
    parts = []
    for index in range(count):
        chunk = bytes(view[index * capacity : (index + 1) * capacity])
        key = new_blob_key()
        x = dict(base_x, part=index + 1, parts=count)
        parts.append(SealedPart(key, encrypt_blob(key, chunk), len(chunk), x, f"{name}.part{index + 1}of{count}"))
    return SealedFile(meta, tuple(parts), "application/octet-stream")


def open_file_blob(message: FileMessage, blob: bytes) -> bytes:
    """Open a file blob and check its size against `s` (the SDK checks the same)."""
    content = decrypt_blob(message.key, blob)
    if len(content) != message.size:
        raise BadBlob("opened size differs from the file message's s")
    return content


def fragment_position(x: dict[str, Any]) -> tuple[int, int] | None:
    """(part, parts) if `x` describes a fragment, None for a whole segment."""
    if "part" not in x and "parts" not in x:
        return None
    try:
        part, parts = int(x["part"]), int(x["parts"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadMessage("x.part and x.parts must be integers") from exc
    if not 1 <= part <= parts or parts > 100_000:
        raise BadMessage("x.part out of range")
    return part, parts


def verify_whole(content: bytes, meta: SegmentMeta) -> bytes:
    if len(content) != meta.size:
        raise BadBlob("segment size differs from x.size")
    if sha256_hex(content) != meta.digest:
        raise BadDigest("segment digest differs from x.digest")
    return content


@dataclass
class _Pending:
    parts: int
    meta: SegmentMeta
    chunks: dict[int, bytes]
    first_seen: float


SegmentKey = tuple[str, str, str, int, str]  # sender, feed, rendition, seq, digest


class Reassembler:
    """Collects fragments per (sender, feed, rendition, seq, digest) until all arrive.

    Fragments may arrive in any order and more than once (at-least-once delivery). A
    complete set is joined, checked against the whole digest and size, and returned once.
    `missing()` reports gaps; `expire()` drops sets older than `max_age_s` and returns them
    so the caller can report what never completed. At most `max_pending` sets are held;
    the oldest is dropped first, so a hostile sender cannot grow memory without bound.
    """

    def __init__(self, *, max_pending: int = 256, max_age_s: float = 120.0) -> None:
        self._pending: OrderedDict[SegmentKey, _Pending] = OrderedDict()
        self.max_pending = max_pending
        self.max_age_s = max_age_s

    @staticmethod
    def key_of(sender: str, meta: SegmentMeta) -> SegmentKey:
        return (sender, meta.feed, meta.rendition, meta.seq, meta.digest)

    def add(self, sender: str, meta: SegmentMeta, part: int, parts: int, chunk: bytes) -> bytes | None:
        key = self.key_of(sender, meta)
        pending = self._pending.get(key)
        if pending is None:
            pending = _Pending(parts, meta, {}, time.monotonic())
            self._pending[key] = pending
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
        elif pending.parts != parts:
            raise BadMessage("x.parts disagrees with earlier fragments")
        pending.chunks[part] = chunk
        if len(pending.chunks) < parts:
            return None
        del self._pending[key]
        content = b"".join(pending.chunks[i] for i in range(1, parts + 1))
        return verify_whole(content, meta)

    def missing(self) -> dict[SegmentKey, list[int]]:
        return {
            key: [i for i in range(1, p.parts + 1) if i not in p.chunks] for key, p in self._pending.items()
        }

    def expire(self, now: float | None = None) -> dict[SegmentKey, list[int]]:
        now = time.monotonic() if now is None else now
        dropped: dict[SegmentKey, list[int]] = {}
        for key, p in list(self._pending.items()):
            if now - p.first_seen > self.max_age_s:
                dropped[key] = [i for i in range(1, p.parts + 1) if i not in p.chunks]
                del self._pending[key]
        return dropped

    def __len__(self) -> int:
        return len(self._pending)

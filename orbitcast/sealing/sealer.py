"""Packager side: seal a segment once, address it to N recipients.

The segment is encrypted ONCE into blob(s) (uploaded once); each recipient gets only a small
E2E file message (~400 bytes) carrying the blob id and key, sealed to their public key. The
sealer holds the sender's private key and recipients' PUBLIC keys only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from nacl.public import Box, PublicKey

from .blobs import DEFAULT_MAX_BLOB_BYTES, SealedFile, SegmentMeta, seal_file
from .envelope import SealedEnvelope, seal_with_box
from .keys import KeyPair, validate_identity
from .messages import MessageType, TextMessage

#: ciphertext blob -> blob id (e.g. POST /upload_blob)
BlobUploader = Callable[[bytes], str]
#: ciphertext blobs -> their blob ids, in order (several uploads in one round trip)
BlobsUploader = Callable[[Sequence[bytes]], Sequence[str]]


@dataclass(frozen=True)
class Outgoing:
    """One send_e2e call to make: `to_id` gets `envelope`; `part` is 1-based."""

    to_id: str
    envelope: SealedEnvelope
    part: int
    parts: int


@dataclass(frozen=True)
class SealedSegment:
    sealed: SealedFile
    blob_ids: tuple[str, ...]
    outgoing: tuple[Outgoing, ...]


class SegmentSealer:
    def __init__(self, keys: KeyPair, *, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self._keys = keys
        self.max_blob_bytes = max_blob_bytes
        self._boxes: dict[tuple[str, bytes], Box] = {}
        self._lock = threading.Lock()

    def _box(self, to_id: str, public: PublicKey) -> Box:
        # Keyed by id AND key, so a rotated recipient key is picked up at once.
        cache_key = (to_id, bytes(public))
        with self._lock:
            box = self._boxes.get(cache_key)
            if box is None:
                box = self._boxes[cache_key] = Box(self._keys.private, public)
        return box

    def seal_envelope(self, to_id: str, public: PublicKey, type_byte: int, body: bytes) -> SealedEnvelope:
        return seal_with_box(self._box(validate_identity(to_id), public), type_byte, body)

    def seal_text(self, to_id: str, public: PublicKey, text: str) -> SealedEnvelope:
        return self.seal_envelope(to_id, public, MessageType.TEXT, TextMessage(text).encode())

    def seal_segment(
        self,
        data: bytes,
        meta: SegmentMeta,
        recipients: Mapping[str, PublicKey],
        upload: BlobUploader,
    ) -> SealedSegment:
        """Encrypt `data` once, upload its blob(s), seal one file message per part per recipient."""
        sealed = seal_file(data, meta, max_blob_bytes=self.max_blob_bytes)
        return self._address(sealed, tuple(upload(part.blob) for part in sealed.parts), recipients)

    def seal_many(
        self,
        items: Sequence[tuple[bytes, SegmentMeta, Mapping[str, PublicKey]]],
        upload_many: BlobsUploader,
    ) -> list[SealedSegment]:
        """`seal_segment` for several (data, meta, recipients) with every blob uploaded in one
        `upload_many` call: a live batch's parts cost one round trip to the gateway, not one each."""
        files = [seal_file(data, meta, max_blob_bytes=self.max_blob_bytes) for data, meta, _ in items]
        ids = list(upload_many([part.blob for f in files for part in f.parts]))
        if len(ids) != sum(len(f.parts) for f in files):
            raise ValueError(f"{len(ids)} blob ids for {sum(len(f.parts) for f in files)} blobs")
        out, at = [], 0
        for f, (_, _, recipients) in zip(files, items):
            out.append(self._address(f, tuple(ids[at:at + len(f.parts)]), recipients))
            at += len(f.parts)
        return out

    def _address(self, sealed: SealedFile, blob_ids: tuple[str, ...],
                 recipients: Mapping[str, PublicKey]) -> SealedSegment:
        """One file message per blob per recipient, each sealed to that recipient's key."""
        messages = sealed.file_messages(blob_ids)
        outgoing = []
        for to_id, public in recipients.items():
            for index, message in enumerate(messages):
                envelope = self.seal_envelope(to_id, public, message.type, message.encode())
                outgoing.append(Outgoing(to_id, envelope, index + 1, len(messages)))
        return SealedSegment(sealed, blob_ids, tuple(outgoing))

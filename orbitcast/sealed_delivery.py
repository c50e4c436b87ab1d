"""How segments travel sealed: who holds which key, who receives what, and how a segment
becomes a Threema file message's metadata and back.

The packager holds only the sender's private key and recipients' public keys; the edge holds
only its own private key; the gateway holds public keys and API secrets. Secrets of the
embedded gateway that the config leaves out are made up for this run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nacl.public import PublicKey

from .config import OrbitcastConfig, ThreemaConfig
from .delivery.playlists import EXPRESSION_CLASS as TAG_CLASS, RenditionInfo
from .gateway.config import GatewayConfig, IdentityConfig
from .media.fmp4 import codecs_string, fragment_decode_time, tracks_of
from .sealing.blobs import SegmentMeta
from .sealing.keys import KeyPair, decode_public_key, read_private_key_file, write_new_identity_key
from .segment import Part, Segment

INIT_SEQ = -1  # init segments travel with this seq; media segments have seq >= 0


def load_or_create_keys(directory: str | Path, identity: str) -> KeyPair:
    """DIR/IDENTITY.key, created (mode 0600) on first use."""
    path = Path(directory) / f"{identity}.key"
    if path.exists():
        return read_private_key_file(path)
    return write_new_identity_key(identity, directory)[1]


@dataclass(frozen=True)
class SealingPlan:
    """Everything the pipeline hands to the packager, the gateway and the edge."""

    gateway_url: str
    sender: str
    sender_keys: KeyPair | None
    sender_secret: str
    edge: str
    edge_keys: KeyPair | None
    edge_secret: str
    edge_callback_url: str
    sender_callback_url: str  # where the sender's delivery receipts arrive
    gateway: GatewayConfig | None  # None when a remote gateway is used

    def packager_view(self) -> "SealingPlan":
        """The plan without the edge's private key (what the packager may hold)."""
        return _replace_keys(self, edge_keys=None)

    def edge_view(self) -> "SealingPlan":
        return _replace_keys(self, sender_keys=None)


def _replace_keys(plan: SealingPlan, **changes: object) -> SealingPlan:
    values = {**plan.__dict__, **changes}
    return SealingPlan(**values)  # type: ignore[arg-type]


def build_plan(config: OrbitcastConfig, base_url: str, blob_store: str, queue_journal: str | None = None) -> SealingPlan:
    """Keys from `threema.keys_dir`, secrets from config (or fresh ones), gateway accounts;
    the embedded gateway keeps undelivered messages in `queue_journal` when given."""
    t: ThreemaConfig = config.threema
    sender_keys = load_or_create_keys(t.keys_dir, t.sender)
    edge_keys = load_or_create_keys(t.keys_dir, t.edge)
    sender_secret = t.sender_secret or secrets.token_urlsafe(24)
    edge_secret = t.edge_secret or secrets.token_urlsafe(24)
    callback = t.edge_callback_url or f"{base_url}/edge/callback"
    sender_callback = f"{base_url}/sender/callback"
    gateway = None
    if t.gateway_url is None:
        accounts = [
            # Recipients' delivery receipts reach the packager at this callback.
            IdentityConfig(identity=t.sender, secret=sender_secret, public_key=sender_keys.public_string,
                           callback_url=sender_callback),
            IdentityConfig(identity=t.edge, secret=edge_secret, public_key=edge_keys.public_string, callback_url=callback),
        ]
        for r in t.recipients:
            accounts.append(IdentityConfig(
                identity=r.identity, public_key=r.public_key, callback_url=r.callback_url,
                # A recipient without a callback never authenticates; its secret only has to exist.
                secret=r.secret or secrets.token_urlsafe(24),
            ))
        # Recipients are on the cluster or nearby: retry callbacks often (at most 1 s apart),
        # so a recipient that is still starting gets its messages as soon as it answers.
        gateway = GatewayConfig(identities=accounts, blob_store=blob_store, queue_journal=queue_journal,
                                max_blob_bytes=max(t.max_blob_bytes, 1024) * 2, retry_max_s=1.0)
    return SealingPlan(
        gateway_url=t.gateway_url or f"{base_url}/threema",
        sender=t.sender, sender_keys=sender_keys, sender_secret=sender_secret,
        edge=t.edge, edge_keys=edge_keys, edge_secret=edge_secret, edge_callback_url=callback,
        sender_callback_url=sender_callback, gateway=gateway,
    )


def recipients_for(config: OrbitcastConfig, edge_public: PublicKey, feed: str, rendition: str,
                   kind: str = "media") -> dict[str, PublicKey]:
    """The edge gets everything; a subscriber gets the init and whole segments of the feeds and
    rungs it asked for (LL-HLS parts are for the edge only: they repeat the segment's bytes)."""
    out = {config.threema.edge: edge_public}
    if kind == "part":
        return out
    for r in config.threema.recipients:
        if (not r.feeds or feed in r.feeds) and (not r.renditions or rendition in r.renditions):
            out[r.identity] = decode_public_key(r.public_key)
    return out


def tag_recipients(config: OrbitcastConfig, feed: str) -> dict[str, PublicKey]:
    """The subscribers that asked for the analysis stage's tags of `feed` (none when analysis
    does not cover it)."""
    if not config.analysis.covers(feed):
        return {}
    return {r.identity: decode_public_key(r.public_key) for r in config.threema.recipients
            if r.tags and (not r.feeds or feed in r.feeds)}


def tag_text(feed: str, summary: dict) -> str:
    """A segment's tag as the text of an E2E text message: JSON of its `SegmentSummary`
    (`as_dict()`) with the feed and the class its DATERANGE carries, so a receiver can tell it
    from any other text. About 300 bytes (Threema's texts may have 3,500)."""
    return json.dumps({"class": TAG_CLASS, "feed": feed, **summary}, separators=(",", ":"), sort_keys=True)


def parse_tag_text(text: str) -> dict | None:
    """The tag in a text message, or None for a text that is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("class") == TAG_CLASS else None


def meta_of(seg: Segment, init: str = "") -> SegmentMeta:
    """`init`: the tag of the init segment it plays with (names.init_tag), "" when unknown."""
    return SegmentMeta(seg.feed, seg.rendition, seg.seq, seg.duration, seg.digest, seg.size, seg.program_date_time,
                       init=init)


def part_meta(part: Part, init: str = "") -> SegmentMeta:
    return SegmentMeta(part.feed, part.rendition, part.seq, part.duration, part.digest, part.size,
                       part.program_date_time, kind="part", part_index=part.index, independent=part.independent,
                       made_at=part.made_at, ladder=part.ladder, init=init)


def sending_order(items: Sequence[Part | Segment]) -> list[tuple[list[Part], list[Segment]]]:
    """A transcoder batch (each rung's parts and segments as cut, rung after rung) as the
    packager sends it: runs of (parts, then segments). The parts go first and the segments after
    them, certified in one call to the ledger and sealed in one batch, so that a rung's last part
    of a seq does not wait for the other rungs' segments to be certified and sealed. A rung's
    own order stays as cut: a segment after its parts, a part of a later seq after that segment."""
    runs: list[tuple[list[Part], list[Segment]]] = []
    parts: list[Part] = []
    segments: list[Segment] = []
    for item in items:
        if isinstance(item, Part):
            if any(s.rendition == item.rendition for s in segments):
                runs.append((parts, segments))
                parts, segments = [], []
            parts.append(item)
        else:
            segments.append(item)
    if parts or segments:
        runs.append((parts, segments))
    return runs


def part_from(meta: SegmentMeta, data: bytes, init: bytes | None) -> Part:
    """Rebuild a part from an opened file message (digest already verified)."""
    assert meta.part_index is not None
    pdt = meta.program_date_time or datetime.fromtimestamp(0, tz=timezone.utc)
    start = _media_start(data, init, fallback=0.0)
    return Part(meta.feed, meta.rendition, meta.seq, meta.part_index, start, meta.duration,
                meta.independent, pdt, data, meta.digest, meta.made_at, meta.ladder)


def _media_start(data: bytes, init: bytes | None, fallback: float) -> float:
    """Where fMP4 media starts on the feed's timeline: its video tfdt, read with the init."""
    if init is not None:
        video = next((t for t in tracks_of(init) if t.handler == "vide"), None)
        dt = fragment_decode_time(data, video.track_id) if video else None
        if dt is not None and video is not None:
            return dt / video.timescale
    return fallback


def init_meta(feed: str, rendition: str, init: bytes) -> SegmentMeta:
    return SegmentMeta.for_data(init, feed=feed, rendition=rendition, seq=INIT_SEQ, duration=0.0, kind="init")


def segment_from(meta: SegmentMeta, data: bytes, init: bytes | None) -> Segment:
    """Rebuild the segment record from an opened file message (digest already verified)."""
    start = _media_start(data, init, fallback=meta.seq * meta.duration)
    pdt = meta.program_date_time or datetime.fromtimestamp(0, tz=timezone.utc)
    return Segment(meta.feed, meta.rendition, meta.seq, start, meta.duration, pdt, data, meta.digest)


def rendition_info(config: OrbitcastConfig, rendition: str, init: bytes) -> RenditionInfo | None:
    rung = next((r for r in config.ladder.rungs if r.name == rendition), None)
    if rung is None:
        return None
    audio = config.ladder.audio_bitrate
    return RenditionInfo(
        name=rung.name, width=rung.width, height=rung.height,
        # The encoder's VBV caps video at 1.2x its bitrate: that is the peak we announce.
        bandwidth=int(rung.video_bitrate * 1.2) + audio,
        average_bandwidth=rung.video_bitrate + audio,
        codecs=codecs_string(init),
        frame_rate=float(config.ladder.fps or 0),
    )

"""Typed configuration: one YAML file (`orbitcast.yaml`) validated with pydantic.

Every field has a default that serves the local demo, so `orbitcast demo` needs no file. A bad
file raises `ConfigError` with one line per problem, each naming the field and the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orbitcast.analysis.config import AnalysisConfig
from orbitcast.clock.config import ClockConfig
from orbitcast.delivery.names import NAME_RE
from orbitcast.energy.config import EnergyConfig
from orbitcast.media.overload import X264_PRESETS

DEMO_SOURCE = (
    "lavfi:testsrc2=size=1280x720:rate=30,format=yuv420p[out0];"
    "sine=frequency=440:sample_rate=48000[out1]"
)


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message names each bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-64 letters, digits, '_' or '-', starting with a letter or digit")
    return value


class Rung(_Strict):
    """One rendition of the adaptive ladder."""

    name: str
    width: int = Field(gt=0, le=7680)
    height: int = Field(gt=0, le=4320)
    video_bitrate: int = Field(gt=0, description="bits per second")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "rung name")

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        # yuv420p chroma subsampling needs even dimensions.
        if v % 2:
            raise ValueError("must be even")
        return v


DEFAULT_LADDER = (
    Rung(name="720p", width=1280, height=720, video_bitrate=2_500_000),
    Rung(name="480p", width=854, height=480, video_bitrate=1_200_000),
    Rung(name="360p", width=640, height=360, video_bitrate=600_000),
)


class OverloadConfig(_Strict):
    """Faster x264 presets for a feed whose encoders cannot keep pace (orbitcast/media/overload.py)."""

    presets: tuple[str, ...] = Field(
        default=("superfast", "ultrafast"),
        description="presets to step through while behind, those faster than the ladder's used; empty: off",
    )
    behind: float = Field(default=1.0, gt=0, le=60, description="seconds the newest encoded media may lag the wall clock")
    calm: float = Field(default=30.0, gt=0, le=3600, description="seconds without lag before stepping back one preset")

    @field_validator("presets")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in v if p not in X264_PRESETS]
        if unknown:
            raise ValueError(f"unknown x264 preset(s) {unknown}; one of {', '.join(X264_PRESETS)}")
        return v


class LadderConfig(_Strict):
    rungs: tuple[Rung, ...] = DEFAULT_LADDER
    audio_bitrate: int = Field(default=128_000, gt=0)
    preset: str = "veryfast"
    fps: int | None = Field(default=None, gt=0, le=120, description="output frame rate; default: the source's")
    overload: OverloadConfig = Field(default_factory=OverloadConfig)

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: tuple[Rung, ...]) -> tuple[Rung, ...]:
        if not v:
            raise ValueError("the ladder needs at least one rung")
        names = [r.name for r in v]
        if len(set(names)) != len(names):
            raise ValueError(f"rung names must be unique, got {names}")
        return v


class FeedConfig(_Strict):
    """One live source. `source` is a file path, `lavfi:<graph>`, or a network URL."""

    name: str
    source: str
    loop: bool = Field(default=True, description="files: start again at the end")
    realtime: bool = Field(default=True, description="files and lavfi: pace reading at real time")
    options: dict[str, str] = Field(default_factory=dict, description="demuxer options passed to PyAV")
    slate_after: float | None = Field(
        default=2.0, ge=0, le=3600,
        description="network sources: seconds after the input is lost before a 'signal lost' slate goes out; 0 or null: none",
    )
    signal_hold: float = Field(
        default=2.0, ge=0, le=3600,
        description="seconds a black or frozen picture or silence must last before /api/feeds reports it",
    )
    # Test and simulation knobs: give this feed's local clock an error that its clock client
    # must discipline away (hosts of one laptop share one oscillator). Leave at 0 in production.
    clock_skew_offset_s: float = Field(default=0.0, ge=-3600, le=3600, description="test/simulation: injected local clock offset, seconds")
    clock_skew_drift_ppm: float = Field(default=0.0, ge=-1000, le=1000, description="test/simulation: injected local clock drift, ppm")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "feed name")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class ViewerAuthConfig(_Strict):
    """Signed viewer URLs (orbitcast/delivery/signed_urls.py): keys by id, so that two can be
    active while one replaces the other; `orbitcast token` signs with the last one listed."""

    required: bool = Field(default=False, description="refuse /live/ requests without a valid token (403)")
    keys: dict[str, str] = Field(default_factory=dict, description="key id -> secret (32 characters or more)")

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key_id, secret in v.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id):
                raise ValueError(f"key id {key_id!r}: 1-32 letters, digits, '_' or '-'")
            if len(secret) < 32:
                raise ValueError(f"key {key_id!r}: a secret of 32 characters or more")
        return v

    @model_validator(mode="after")
    def _required(self) -> "ViewerAuthConfig":
        if self.required and not self.keys:
            raise ValueError("required viewer tokens need at least one key")
        return self


class ServeConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    min_replicas: int = Field(
        default=2, ge=1,
        description="Delivery replicas at least; two, so that a replica's death is a failover, not an outage "
                    "(docs/delivery.md)",
    )
    max_replicas: int = Field(default=4, ge=1)
    viewer_auth: ViewerAuthConfig = ViewerAuthConfig()
    max_held_per_client: int = Field(
        default=256, ge=0,
        description="LL-HLS blocking requests one client address may hold at once (429 beyond); 0: no limit, "
                    "e.g. behind a CDN, which is one client for many viewers",
    )

    @model_validator(mode="after")
    def _replicas(self) -> "ServeConfig":
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self


class RetentionConfig(_Strict):
    """How long the archive keeps sealed segments (docs/archive.md). Both limits may be set;
    neither: the archive keeps everything."""

    hours: float | None = Field(default=None, gt=0, description="delete segments that ended longer ago than this")
    bytes: int | None = Field(default=None, gt=0, description="per feed: delete the oldest while its blobs exceed this")
    every_s: float = Field(default=900.0, ge=5, description="how often each packager applies it (it reads every row of its feed)")


class ArchiveConfig(_Strict):
    """Time-shift from the archive and its upkeep."""

    timeshift_max_span_s: float = Field(
        default=6 * 3600, gt=0, le=7 * 86400,
        description="longest ?start=&end= range (and furthest-back start) a time-shift playlist serves; longer: 400",
    )
    cache_bytes: int = Field(default=128 * 1024 * 1024, ge=0, description="opened archived segments the edge keeps in memory")
    maintain_every_s: float = Field(default=60.0, ge=5, description="how often each packager folds its catalog's flush files into hour files")
    retention: RetentionConfig = RetentionConfig()


class RecipientConfig(_Strict):
    """A subscriber: every segment of its feeds reaches it as a Threema E2E file message."""

    identity: str
    public_key: str = Field(description="public:<hex> (from `orbitcast keys new`)")
    callback_url: str | None = Field(default=None, description="where the gateway POSTs its messages; none: they queue")
    secret: str | None = Field(default=None, description="its API secret on the embedded gateway; keys the callback MAC")
    feeds: tuple[str, ...] = Field(default=(), description="feeds it subscribes to; empty: all")
    renditions: tuple[str, ...] = Field(default=(), description="rungs it subscribes to; empty: all")
    tags: bool = Field(default=False, description="also the analysis stage's tags of its feeds, each an E2E "
                                                  "text message (JSON, docs/analysis.md)")

    @field_validator("identity")
    @classmethod
    def _identity(cls, v: str) -> str:
        if len(v) != 8 or not v.isascii() or not v.replace("*", "").isalnum():
            raise ValueError("a Threema identity is 8 characters (gateway ids start with '*')")
        return v.upper()

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        hex_part = v.removeprefix("public:")
        if len(hex_part) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hex_part):
            raise ValueError("must be public:<64 hex>")
        return "public:" + hex_part.lower()

    @model_validator(mode="after")
    def _secret(self) -> "RecipientConfig":
        if self.callback_url and not self.secret:
            raise ValueError("a recipient with a callback_url needs the secret that keys its callback MAC")
        return self


class ThreemaConfig(_Strict):
    """End-to-end sealing through a Threema Gateway (embedded by default)."""

    gateway_url: str | None = Field(default=None, description="e.g. https://msgapi.threema.ch; none: the embedded gateway at /threema")
    sender: str = "*ORBCAST"
    sender_secret: str | None = Field(default=None, description="API secret of the sender; generated for the embedded gateway")
    edge: str = "*ORBEDGE"
    edge_secret: str | None = None
    edge_callback_url: str | None = Field(default=None, description="default: this server's /edge/callback")
    keys_dir: str = Field(default="orbitcast-keys", description="where the sender's and the edge's key files live")
    max_blob_bytes: int = Field(default=8 * 1024 * 1024, gt=1024, description="larger segments are sent in fragments")
    recipients: tuple[RecipientConfig, ...] = ()

    @model_validator(mode="after")
    def _remote(self) -> "ThreemaConfig":
        if self.gateway_url and not (self.sender_secret and self.edge_secret and self.edge_callback_url):
            raise ValueError("with a gateway_url, sender_secret, edge_secret and edge_callback_url are required")
        return self


class OrbitcastConfig(_Strict):
    feeds: tuple[FeedConfig, ...] = (FeedConfig(name="iss", source=DEMO_SOURCE),)
    ladder: LadderConfig = LadderConfig()
    segment_duration: float = Field(default=1.0, gt=0.1, le=30.0, description="seconds; a keyframe starts each")
    part_duration: float = Field(default=0.2, gt=0.02, le=10.0, description="seconds, LL-HLS parts")
    part_hold_back: float | None = Field(
        default=None, gt=0, le=60.0,
        description="seconds an LL-HLS player stays behind the live edge (PART-HOLD-BACK); default 3 parts",
    )
    live_window: int = Field(default=12, ge=3, le=1000, description="segments listed in a live playlist")
    dvr_window: float = Field(
        default=180.0, ge=0, le=6 * 3600,
        description="seconds a live playlist lists back, for seeking (older than 2 x live_window segments: "
                    "from the archive); 0 or below live_window: live_window only",
    )
    store: str = Field(default="./orbitcast-data", description="local folder or pyarrow.fs URI (s3://...)")
    ledger_key: str | None = Field(default=None, description="Ed25519 signing key file of the ledger; default: <store>/ledger/ed25519.key")
    transcoders: int = Field(default=2, ge=1, le=256, description="transcoder pool members")
    transcoder_cpus: float = Field(default=1.0, ge=0.0, description="logical CPUs each pool member reserves")
    standby_packagers: bool = Field(
        default=True,
        description="a second packager per feed, idle until the first dies; then it takes the feed at once "
                    "instead of after Ray's restart (a second or more)",
    )
    standby_edge: bool = Field(
        default=True,
        description="a second edge, idle until the first dies; then it takes the gateway's callbacks and rebuilds "
                    "its window from the Delivery replicas at once instead of after Ray's restart",
    )
    standby_feeds: bool = Field(
        default=True,
        description="a second reader per feed that pulls its source (not one that listens for a sender), idle "
                    "until the first dies; then it reads on from where the transcoder's timeline stands at once "
                    "instead of after Ray's restart",
    )
    serve: ServeConfig = ServeConfig()
    threema: ThreemaConfig = ThreemaConfig()
    clock: ClockConfig = ClockConfig()
    archive: ArchiveConfig = ArchiveConfig()
    energy: EnergyConfig = EnergyConfig()
    analysis: AnalysisConfig = AnalysisConfig()

    @field_validator("feeds")
    @classmethod
    def _feeds(cls, v: tuple[FeedConfig, ...]) -> tuple[FeedConfig, ...]:
        names = [f.name for f in v]
        if len(set(names)) != len(names):
            raise ValueError(f"feed names must be unique, got {names}")
        return v

    @model_validator(mode="after")
    def _parts(self) -> "OrbitcastConfig":
        ratio = self.segment_duration / self.part_duration
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"segment_duration ({self.segment_duration}) must be a whole multiple of part_duration ({self.part_duration})"
            )
        return self

    @model_validator(mode="after")
    def _analysis_feeds(self) -> "OrbitcastConfig":
        unknown = sorted(set(self.analysis.feeds) - {f.name for f in self.feeds})
        if unknown:
            raise ValueError(f"analysis.feeds names feeds that are not configured: {unknown}")
        return self

    def feed(self, name: str) -> FeedConfig:
        for f in self.feeds:
            if f.name == name:
                return f
        raise KeyError(name)


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "configuration") -> OrbitcastConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of fields, got {type(data).__name__}")
    try:
        return OrbitcastConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{origin}: invalid configuration\n{_format_errors(err)}") from None


HOME_ENV = "ORBITCAST_HOME"


def _anchor(path: str, base: Path) -> str:
    if "://" in path:  # a pyarrow.fs URI (s3://...) is where it says
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def anchored(config: OrbitcastConfig, base: str | Path | None = None) -> OrbitcastConfig:
    """The config with its relative local paths (store, ledger_key, threema.keys_dir) made
    absolute against `base`: by default `$ORBITCAST_HOME`, else the current directory.

    Every actor then uses the same folders whatever its working directory: under
    `ray job submit --working-dir` that is a per-job temporary copy, where a relative store
    (and with it the ledger key and the archive) would be lost at the next deploy.
    """
    root = Path(base if base is not None else os.environ.get(HOME_ENV) or Path.cwd()).expanduser()
    threema = config.threema.model_copy(update={"keys_dir": _anchor(config.threema.keys_dir, root)})
    return config.model_copy(update={
        "store": _anchor(config.store, root),
        "ledger_key": _anchor(config.ledger_key, root) if config.ledger_key else None,
        "threema": threema,
    })


def load_config(path: str | Path | None) -> OrbitcastConfig:
    """Load and validate a YAML file; `None` gives the demo defaults."""
    if path is None:
        return OrbitcastConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    return parse_config(data, str(p))

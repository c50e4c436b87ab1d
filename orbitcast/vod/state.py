"""What the store keeps of a recording job (`vod-jobs/NAME.json`): its source (path, size,
SHA-256), the plan, the epoch its media time starts at, each chunk's state and segment
digests, the init digests every chunk must match, and the job's state for `/api/jobs`.

One small JSON file per job, rewritten whole (write then move) after every chunk: a job
killed at any point leaves the state of its last finished chunk, and the Delivery replicas
read it from the store without asking the job.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..store import Store
from .plan import Chunk

JOBS = "vod-jobs"


def fingerprint(path: str | Path) -> dict:
    """Size and SHA-256 of the file: the same name resumes only the same recording."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "size": Path(path).stat().st_size, "sha256": digest.hexdigest()}


@dataclass
class ChunkState:
    chunk: Chunk
    done: bool = False
    digests: dict[str, list[str]] = field(default_factory=dict)  # rendition -> segment digests

    def as_dict(self) -> dict:
        return {**self.chunk.as_dict(), "done": self.done, "digests": self.digests}

    @classmethod
    def from_dict(cls, d: dict) -> "ChunkState":
        return cls(Chunk.from_dict(d), bool(d["done"]), {k: list(v) for k, v in d.get("digests", {}).items()})


@dataclass
class JobState:
    name: str
    feed: str
    source: dict
    epoch: float
    origin: float
    duration: float
    segment_duration: float
    chunks: list[ChunkState]
    state: str = "planned"
    inits: dict[str, str] = field(default_factory=dict)  # rendition -> digest every chunk matches
    renditions: list[dict] = field(default_factory=list)  # for the multivariant playlist
    errors: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    runs: list[dict] = field(default_factory=list)  # per start: when, chunks done before, transcoded
    eta_s: float | None = None

    @property
    def done_count(self) -> int:
        return sum(c.done for c in self.chunks)

    def pending(self) -> list[Chunk]:
        return [c.chunk for c in self.chunks if not c.done]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["chunks"] = [c.as_dict() for c in self.chunks]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "JobState":
        d = dict(d)
        d["chunks"] = [ChunkState.from_dict(c) for c in d["chunks"]]
        return cls(**d)

    def status(self) -> dict:
        """The job as `GET /api/jobs` shows it."""
        return {"name": self.name, "state": self.state, "chunks_done": self.done_count,
                "chunks_total": len(self.chunks), "eta_s": self.eta_s, "errors": list(self.errors),
                "duration_s": self.duration, "source": Path(self.source.get("path", "")).name,
                "url": f"/vod/{self.name}/master.m3u8" if self.state == "done" else None,
                "updated_at": self.updated_at}


class JobStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, job: JobState) -> None:
        job.updated_at = time.time()
        self.store.put((JOBS, f"{job.name}.json"), json.dumps(job.as_dict()).encode())

    def load(self, name: str) -> JobState | None:
        raw = self.store.get((JOBS, f"{name}.json"))
        return JobState.from_dict(json.loads(raw)) if raw is not None else None

    def names(self) -> list[str]:
        return [n[:-5] for n in self.store.list((JOBS,)) if n.endswith(".json")]

    def statuses(self) -> list[dict]:
        out = []
        for name in self.names():
            try:
                job = self.load(name)
            except (ValueError, KeyError, TypeError):  # a file of another version: shown, not fatal
                out.append({"name": name, "state": "unknown", "errors": ["unreadable job state"]})
                continue
            if job is not None:
                out.append(job.status())
        return sorted(out, key=lambda s: s.get("updated_at") or 0, reverse=True)

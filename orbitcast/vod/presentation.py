"""`/vod/{name}/...`: a finished recording as an HLS VOD presentation, every rung.

| request | answer |
|---|---|
| `/vod/{name}/master.m3u8` | the multivariant playlist (the rungs the job recorded) |
| `/vod/{name}/{rendition}/index.m3u8` | `EXT-X-PLAYLIST-TYPE:VOD`, every segment with its program date-time, `EXT-X-ENDLIST` |
| `/vod/{name}/{rendition}/{seq}.m4s`, `init.mp4?v={tag}` | opened from the archive by the edge |

The playlists come from the catalog (rows of the feed `vod.{name}`) rendered by the time-shift
renderer, the media from the archive as time-shift's (`timeshift.ArchiveAccess`), so a
recording is sealed, catalogued and certified like live media. A recording whose job is not
done answers 404 with its state: a VOD playlist never changes once given.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ..delivery.names import INIT_NAME, INIT_TAG_LEN, BadName, check_name, parse_media_name
from ..delivery.playlists import RenditionInfo, master_playlist
from ..delivery.timeshift import ArchiveAccess, RowQuery, Window, media
from .state import JobState, JobStore


class VodAnswer(NamedTuple):
    status: int
    kind: str  # "playlist", "media", "init", "error"
    body: bytes


def _error(status: int, text: str) -> VodAnswer:
    return VodAnswer(status, "error", f"{text}\n".encode())


class VodPresentation:
    """Answers `/vod/` for one replica. A finished job's playlists never change: each is
    rendered once and kept."""

    def __init__(self, jobs: JobStore, rows: RowQuery, archive: ArchiveAccess | None) -> None:
        self.jobs = jobs
        self.rows = rows
        self.archive = archive
        self._done: dict[str, JobState] = {}
        self._playlists: dict[tuple[str, str], bytes] = {}

    async def _job(self, name: str) -> JobState | VodAnswer:
        job = self._done.get(name)
        if job is not None:
            return job
        job = await asyncio.to_thread(self.jobs.load, name)
        if job is None:
            return _error(404, "recording not found")
        if job.state != "done":
            return _error(404, f"recording not ready: {job.state}, {job.done_count}/{len(job.chunks)} chunks")
        self._done[name] = job
        return job

    async def answer(self, path: str, query: str) -> VodAnswer:
        parts = path.split("/")  # "", "vod", name, [rendition,] file
        if len(parts) not in (4, 5) or parts[1] != "vod":
            raise BadName("malformed recording path")
        name = check_name(parts[2], "recording")
        if len(parts) == 4:
            if parts[3] != "master.m3u8":
                raise BadName("malformed recording path")
            job = await self._job(name)
            if isinstance(job, VodAnswer):
                return job
            infos = [RenditionInfo(**r) for r in job.renditions]
            return VodAnswer(200, "playlist", master_playlist(infos).encode())
        rendition, file = check_name(parts[3], "rendition"), parts[4]
        job = await self._job(name)
        if isinstance(job, VodAnswer):
            return job
        if rendition not in job.inits:
            return _error(404, "rendition not found")
        if file == "index.m3u8":
            return await self._playlist(job, rendition)
        if self.archive is None:
            return _error(404, "recordings are not served here")
        if file == INIT_NAME:
            tag = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("v", "")
            if len(tag) != INIT_TAG_LEN or any(c not in "0123456789abcdef" for c in tag):
                return _error(404, "init segment version not found")
            data = await self.archive.init(job.feed, rendition, tag)
            return VodAnswer(200, "init", data) if data is not None else _error(404, "init segment not found")
        seq, index = parse_media_name(file)
        if index is not None:
            return _error(404, "a recording has no parts")
        data = await self.archive.segment(job.feed, rendition, seq)
        return VodAnswer(200, "media", data) if data is not None else _error(404, "segment not found")

    async def _playlist(self, job: JobState, rendition: str) -> VodAnswer:
        key = (job.name, rendition)
        body = self._playlists.get(key)
        if body is None:
            start = datetime.fromtimestamp(job.epoch, tz=timezone.utc)
            end = start + timedelta(seconds=job.duration + job.segment_duration)
            rows = await asyncio.to_thread(self.rows, job.feed, rendition, start, end)
            if not rows:
                return _error(404, "no segments catalogued for that recording")
            body = media(rows, Window(start, end), job.segment_duration, None).encode()
            self._playlists[key] = body
        return VodAnswer(200, "playlist", body)

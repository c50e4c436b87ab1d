"""Recordings through the ladder, chunk-parallel (`orbitcast transcode`, docs/vod.md).

The file reads like the job: `probe` (keyframes, by demuxing only), `plan` (chunks on the
segment grid, each decoded from the keyframe at or before it), `chunk` (one chunk through the
live transcoder), `job` (state, resume, the checks between chunks), `state` (what the store
keeps of a job), `presentation` (`/vod/NAME/...` answered from the catalog and the archive).
Ray-free: `pipelines/vod.py` gives the chunks to Ray tasks.
"""

from .errors import ChunkFailed, NameTaken, VodError, VodInputError
from .names import VOD_PREFIX, vod_feed

__all__ = ["VOD_PREFIX", "ChunkFailed", "NameTaken", "VodError", "VodInputError", "vod_feed"]

"""The checks behind `orbitcast verify`, in one place to import them from.

* `verify_stream(master_url, fetch, key)`: every segment a live stream's playlists list, each
  with its inclusion proof (`stream_check`, reading HLS with `hls_reader`).
* `verify_recording_url(data, ledger_base, fetch, key)` / `verify_recording(...)`: a file
  written by `orbitcast receive`, matched against every ledger entry (`recording_match`).

Both return a `Report` (`verify_report`). HTTP is injected as `fetch(url) -> bytes`
(`http_client`); which key to trust is the caller's decision (`known_keys` pins it on first
use); which heads to trust follows from it (`trusted_heads`).
"""

from .recording_match import verify_recording, verify_recording_url
from .stream_check import verify_stream
from .verify_report import Report, SegmentResult

__all__ = ["Report", "SegmentResult", "verify_recording", "verify_recording_url", "verify_stream"]

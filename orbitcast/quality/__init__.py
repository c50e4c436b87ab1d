"""Picture quality per rung (`orbitcast quality FEED`): a window of a feed's source through its
ladder with the live transcoder, then VMAF, PSNR and SSIM of every rung against the source
pictures, with the libvmaf of imageio-ffmpeg's ffmpeg. See docs/quality.md.

    encode.py   the window through the ladder: one MP4 per rung and the lossless reference
    vmaf.py     one rung against the reference with libvmaf; its JSON log read back
    measure.py  the whole measurement, as the JSON `--json` writes
    report.py   tables for the terminal and the playtest report; the results read back
"""

from .errors import QualityError
from .ffmpeg import VmafFfmpeg, find_vmaf_ffmpeg
from .measure import measure
from .report import for_playtest, html_section, load_quality, text_table, watched_vmaf
from .vmaf import Score, parse_log

__all__ = [
    "QualityError",
    "Score",
    "VmafFfmpeg",
    "find_vmaf_ffmpeg",
    "for_playtest",
    "html_section",
    "load_quality",
    "measure",
    "parse_log",
    "text_table",
    "watched_vmaf",
]

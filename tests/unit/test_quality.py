"""`orbitcast quality`: two seconds of a test pattern through a two-rung ladder (a good rung and
a starved 64x36 one), measured with the libvmaf of imageio-ffmpeg's ffmpeg, as a user runs it;
the files it keeps read back with ffprobe; the pairing of frames checked by shifting it; its
JSON in the playtest report. No Ray."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orbitcast.config import load_config
from orbitcast.playtest.plots import write_html
from orbitcast.playtest.report import build_report
from orbitcast.playtest.session import RenditionChange, SessionRecord
from orbitcast.quality import QualityError, find_vmaf_ffmpeg, for_playtest, load_quality, parse_log, watched_vmaf
from orbitcast.quality.vmaf import score
from pipelines.cli import main

SECONDS, FPS = 2, 25
CONFIG = f"""
feeds:
  - name: pattern
    source: "lavfi:testsrc2=size=320x180:rate={FPS}"
ladder:
  rungs:
    - {{name: top, width: 320, height: 180, video_bitrate: 400000}}
    - {{name: tiny, width: 64, height: 36, video_bitrate: 20000}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The command a user runs, once: its exit code, the JSON it wrote and the files it kept."""
    d = tmp_path_factory.mktemp("quality")
    (d / "orbitcast.yaml").write_text(CONFIG)
    rc = main(["quality", "pattern", "--config", str(d / "orbitcast.yaml"), "--seconds", str(SECONDS),
               "--json", str(d / "q.json"), "--keep", str(d / "kept")])
    return {"rc": rc, "json": d / "q.json", "kept": d / "kept", "config": d / "orbitcast.yaml"}


@pytest.fixture(scope="module")
def results(run: dict[str, Any]) -> dict[str, Any]:
    assert run["rc"] == 0
    return json.loads(run["json"].read_text())


def rung(results: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in results["rungs"] if r["name"] == name)


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


def test_the_top_rung_of_the_test_pattern_scores_above_a_sane_floor(results: dict[str, Any]) -> None:
    top = rung(results, "top")
    assert top["vmaf"]["mean"] > 60
    assert top["psnr_y"] > 30 and top["ssim"] > 0.9
    assert top["vmaf"]["min"] <= top["vmaf"]["p5"] <= top["vmaf"]["mean"]


def test_a_starved_rung_scores_clearly_lower(results: dict[str, Any]) -> None:
    top, tiny = rung(results, "top"), rung(results, "tiny")
    assert tiny["vmaf"]["mean"] < top["vmaf"]["mean"] - 30
    assert tiny["psnr_y"] < top["psnr_y"] and tiny["ssim"] < top["ssim"]


def test_every_frame_of_the_window_is_compared(results: dict[str, Any]) -> None:
    assert results["frames"] == SECONDS * FPS
    assert [r["frames"] for r in results["rungs"]] == [SECONDS * FPS] * 2
    assert results["reference"] == {"width": 320, "height": 180}


def test_kept_files_are_what_ffprobe_sees(run: dict[str, Any]) -> None:
    ref = probe(run["kept"] / "reference.mkv")
    assert (ref["codec_name"], ref["width"], ref["height"], int(ref["nb_read_frames"])) == ("ffv1", 320, 180, SECONDS * FPS)
    for name, size in (("top", (320, 180)), ("tiny", (64, 36))):
        s = probe(run["kept"] / f"{name}.mp4")
        assert (s["codec_name"], (s["width"], s["height"]), int(s["nb_read_frames"])) == ("h264", size, SECONDS * FPS)


def test_frames_are_paired_right_a_shift_by_one_scores_clearly_lower(run: dict[str, Any], results: dict[str, Any]) -> None:
    aligned = rung(results, "top")["vmaf"]["mean"]
    shifted = score(find_vmaf_ffmpeg(), run["kept"] / "top.mp4", run["kept"] / "reference.mkv", 320, 180,
                    run["kept"] / "shifted.json", shift=1)
    assert shifted.frames == SECONDS * FPS - 1
    assert shifted.vmaf.mean < aligned - 20


def test_the_log_parser_reads_libvmafs_own_log(run: dict[str, Any], results: dict[str, Any]) -> None:
    raw = (run["kept"] / "vmaf-top.json").read_text()
    log = json.loads(raw)
    per_frame = [f["metrics"]["vmaf"] for f in log["frames"]]
    got = parse_log(raw)
    assert got.frames == len(per_frame) == SECONDS * FPS
    assert got.vmaf.mean == pytest.approx(sum(per_frame) / len(per_frame), abs=1e-3)
    assert got.vmaf.min == pytest.approx(min(per_frame), abs=1e-3)
    assert got.as_dict()["vmaf"] == rung(results, "top")["vmaf"]


@pytest.mark.parametrize("garbage", ["", "{}", '{"frames": []}', '{"frames": [{"metrics": {}}]}', "[1, 2]"])
def test_the_log_parser_refuses_what_is_not_a_libvmaf_log(garbage: str) -> None:
    with pytest.raises(ValueError):
        parse_log(garbage)


def test_the_results_read_back_for_the_playtest(run: dict[str, Any], results: dict[str, Any]) -> None:
    assert load_quality(run["json"]) == results


def test_the_playtest_report_gets_a_picture_quality_table(results: dict[str, Any], tmp_path: Path) -> None:
    rec = SessionRecord("b0", "browser", "console", joined=0.0, ended=21.0, first_play=1.0)
    rec.played_s = 20.0
    rec.renditions = [RenditionChange(1.0, "top", 400_000, 180), RenditionChange(11.0, "tiny", 20_000, 36)]
    rec.requests = Counter(part=10)
    report = build_report({"url": "http://x/live/pattern/master.m3u8", "started": "now", "seconds": 20.0, "browsers": 1,
                           "viewers": 0, "clock": {"source": "system", "offset_s": 0.0}}, [rec], None, None)
    report["quality"] = for_playtest(results, report["sessions"])
    half = (rung(results, "top")["vmaf"]["mean"] + rung(results, "tiny")["vmaf"]["mean"]) / 2
    assert report["quality"]["watched"][0]["vmaf"] == pytest.approx(half, abs=0.01)
    page = write_html(report, tmp_path / "report.html", []).read_text()
    assert "<h2>Picture quality</h2>" in page
    assert f"<td>{rung(results, 'top')['vmaf']['mean']:.2f}</td>" in page
    json.dumps(report)  # the JSON report carries it


def test_watched_vmaf_ignores_renditions_not_measured(results: dict[str, Any]) -> None:
    assert watched_vmaf({"other": 5.0}, results) is None
    assert watched_vmaf({"top": 3.0, "other": 5.0}, results) == pytest.approx(rung(results, "top")["vmaf"]["mean"], abs=0.01)


def test_unknown_feed_is_a_one_line_refusal(run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quality", "nope", "--config", str(run["config"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "orbitcast quality: no feed 'nope' in the config (feeds: pattern)"


def test_an_ffmpeg_without_libvmaf_is_refused(run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    # Debian's ffmpeg (the tests' HLS client) has no libvmaf.
    assert main(["quality", "pattern", "--config", str(run["config"]), "--ffmpeg", "/usr/bin/ffmpeg"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no libvmaf filter" in err and "\n" not in err


@pytest.mark.parametrize("args, says", [
    (["--seconds", "0"], "--seconds must be in"),
    (["--source", "/nonexistent/clip.mp4"], "source not found"),
    (["--ffmpeg", "/nonexistent/ffmpeg"], "cannot run ffmpeg"),
])
def test_bad_options_are_one_line_refusals(run: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                           args: list[str], says: str) -> None:
    assert main(["quality", "pattern", "--config", str(run["config"]), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and err[-1].startswith("orbitcast quality: ")


def test_the_playtest_refuses_a_quality_file_that_is_not_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "q.json"
    bad.write_text('{"rungs": []}')
    assert main(["playtest", "http://127.0.0.1:9/live/x/master.m3u8", "--viewers", "1", "--quality", str(bad)]) == 2
    assert "not the JSON of `orbitcast quality --json`" in capsys.readouterr().err


def test_the_demo_config_has_the_feed_it_would_measure() -> None:
    assert "iss" in {f.name for f in load_config(None).feeds}


def test_the_playtest_refuses_results_with_a_figure_missing(run: dict[str, Any], tmp_path: Path) -> None:
    data = json.loads(run["json"].read_text())
    del data["rungs"][1]["vmaf"]["p5"]
    (tmp_path / "q.json").write_text(json.dumps(data))
    with pytest.raises(QualityError, match="incomplete results"):
        load_quality(tmp_path / "q.json")

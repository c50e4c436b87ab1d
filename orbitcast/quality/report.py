"""The results of `orbitcast quality` as a person reads them (a table in the terminal, a table
in the playtest's HTML report), read back from their JSON, and joined with what the players
of a playtest watched: each session's VMAF, weighted by the seconds it spent on each rung."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .errors import QualityError
from .measure import REPORT_KIND

HEAD = ["rung", "size", "target kbps", "video kbps", "VMAF mean", "harmonic", "p5", "min", "PSNR-Y dB", "SSIM"]


def load_quality(path: str | Path) -> dict[str, Any]:
    """A results file written by `orbitcast quality --json`; QualityError when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise QualityError(f"{path}: cannot read: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise QualityError(f"{path}: not JSON: {err}") from None
    if not isinstance(data, dict) or data.get("kind") != REPORT_KIND or not isinstance(data.get("rungs"), list):
        raise QualityError(f"{path}: not the JSON of `orbitcast quality --json`")
    try:
        # Whatever the report shows must be there, or the playtest would fail after its run.
        text_table(data)
        html_section(for_playtest(data, []))
    except (KeyError, TypeError, ValueError) as err:
        raise QualityError(f"{path}: incomplete results ({type(err).__name__} {err})") from None
    return data


def _cells(r: dict[str, Any]) -> list[str]:
    v = r["vmaf"]
    return [r["name"], f"{r['width']}x{r['height']}", str(r["target_kbps"]), f"{r['video_kbps']:.0f}",
            f"{v['mean']:.2f}", f"{v['harmonic_mean']:.2f}", f"{v['p5']:.2f}", f"{v['min']:.2f}",
            f"{r['psnr_y']:.2f}", f"{r['ssim']:.4f}"]


def _about(q: dict[str, Any]) -> str:
    ref = q["reference"]
    return (f"feed {q['feed']}: {q['seconds']:g} s ({q['frames']} frames) of {q['source']} at {ref['width']}x{ref['height']}; "
            f"{q['method']['model']}, each rung scaled up to the source size (bicubic)")


def text_table(q: dict[str, Any]) -> str:
    rows = [HEAD, *(_cells(r) for r in q["rungs"])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEAD))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    t = q["timing"]
    return "\n".join([*lines, f"{_about(q)}; measured in {t['total_s']:.1f} s (encode {t['encode_s']:.1f} s)"])


def watched_vmaf(rendition_seconds: dict[str, float], q: dict[str, Any]) -> float | None:
    """Mean VMAF over what a player showed: each rung's mean, weighted by the seconds it was on.
    None when it watched no rung that was measured."""
    vmaf = {r["name"]: r["vmaf"]["mean"] for r in q["rungs"]}
    seen = {name: s for name, s in rendition_seconds.items() if name in vmaf and s > 0}
    total = sum(seen.values())
    return round(sum(vmaf[n] * s for n, s in seen.items()) / total, 2) if total else None


def for_playtest(q: dict[str, Any], sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """The playtest report's `quality` section: the measurement, and the VMAF each session watched
    (`watched`, one entry per session) with its mean over the simulated viewers."""
    watched = [{"id": s["id"], "kind": s["kind"], "profile": s.get("profile"),
                "vmaf": watched_vmaf(s.get("rendition_seconds") or {}, q)} for s in sessions]
    sims = [w["vmaf"] for w in watched if w["kind"] == "simulated" and w["vmaf"] is not None]
    return {"measurement": q, "watched": watched,
            "simulated_mean_vmaf": round(sum(sims) / len(sims), 2) if sims else None}


def html_section(section: dict[str, Any]) -> str:
    """The playtest HTML's "Picture quality" table, and the VMAF the players watched."""
    e = html.escape
    q = section["measurement"]
    out = ["<h2>Picture quality</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEAD) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in _cells(r)) + "</tr>" for r in q["rungs"]]
    out.append(f"</table><p>{e(_about(q))}; measured {e(str(q['measured']))} (docs/quality.md).</p>")
    seen = [f"{e(w['id'])} {e(w['profile'] or '')} {w['vmaf']:.2f}".replace("  ", " ")
            for w in section["watched"] if w["kind"] == "browser" and w["vmaf"] is not None]
    if section["simulated_mean_vmaf"] is not None:
        seen.append(f"simulated viewers (mean) {section['simulated_mean_vmaf']:.2f}")
    if seen:
        out.append("<p>VMAF as watched (each rung's mean, weighted by the seconds a player showed it): "
                   + ", ".join(seen) + "</p>")
    return "\n".join(out)

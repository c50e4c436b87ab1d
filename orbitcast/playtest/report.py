"""The figures of a playtest, per session and in total, the QoE budget check, the JSON report
and the summary table printed at the end.

- startup: from the first request (a browser: hls.loadSource) to the first frame playing;
- stalls: times playback stopped for want of media after it had started, and their seconds;
  rebuffer ratio = stalled / (played + stalled);
- glass-to-glass latency: the clock authority's now minus the program date-time of the frame
  on screen, sampled while playing; the first SETTLE_S seconds after startup are left out of
  the percentiles (a player settling on its target is not a steady state);
- switches: rendition changes after the first pick; bytes: media and init bytes received;
- requests: successful ones by kind; errors: failed ones by what failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .session import SessionRecord

SETTLE_S = 3.0
REPORT_VERSION = 1


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(math.floor(k))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": round(percentile(values, 50), 4), "p95": round(percentile(values, 95), 4),
            "min": round(min(values), 4), "max": round(max(values), 4),
            "mean": round(sum(values) / len(values), 4), "n": len(values)}


def settled_latency(rec: SessionRecord) -> list[float]:
    """The latency samples that count: from SETTLE_S after the first play."""
    if rec.first_play is None:
        return []
    return [v for t, v in rec.latency if t >= rec.first_play + SETTLE_S]


def stalled_s(rec: SessionRecord) -> float:
    return sum(b - a for a, b in rec.stalls)


def rendition_seconds(rec: SessionRecord) -> dict[str, float]:
    """Seconds on each rendition, from the first play (or the join) to the end."""
    out: dict[str, float] = {}
    start = rec.first_play if rec.first_play is not None else rec.joined
    end = rec.ended if rec.ended is not None else start
    changes = rec.renditions
    for i, ch in enumerate(changes):
        a = max(ch.t, start)
        b = changes[i + 1].t if i + 1 < len(changes) else end
        if b > a:
            out[ch.name] = round(out.get(ch.name, 0.0) + b - a, 3)
    return out


def session_summary(rec: SessionRecord) -> dict[str, Any]:
    stalled = stalled_s(rec)
    watch = rec.played_s + stalled
    seconds = rendition_seconds(rec)
    main = max(seconds, key=lambda k: seconds[k]) if seconds else (rec.renditions[-1].name if rec.renditions else None)
    bitrates = {ch.name: ch.bitrate for ch in rec.renditions}
    return {
        "id": rec.id, "kind": rec.kind, "profile": rec.profile,
        "joined_s": round(rec.joined, 3), "ended_s": None if rec.ended is None else round(rec.ended, 3),
        "startup_s": None if rec.startup_s is None else round(rec.startup_s, 3),
        "played_s": round(rec.played_s, 3),
        "stalls": len(rec.stalls), "stalled_s": round(stalled, 3),
        "rebuffer_ratio": round(stalled / watch, 5) if watch > 0 else None,
        "latency_s": stats(settled_latency(rec)),
        "switches": max(0, len(rec.renditions) - 1),
        "rendition_seconds": seconds, "main_rendition": main, "main_bitrate": bitrates.get(main) if main else None,
        "bytes": rec.bytes,
        "requests": dict(sorted(rec.requests.items())), "media_requests": rec.media_requests,
        "request_errors": sum(rec.errors.values()), "error_kinds": dict(rec.errors),
        "live_jumps": rec.live_jumps, "error": rec.error,
        "extra": {k: v for k, v in rec.extra.items() if not k.startswith("_")},
        "series": {
            "latency": [[t, v] for t, v in rec.latency],
            "renditions": [[ch.t, ch.name, ch.bitrate, ch.height] for ch in rec.renditions],
            "stalls": [[round(a, 3), round(b, 3)] for a, b in rec.stalls],
        },
    }


def group_summary(recs: Iterable[SessionRecord]) -> dict[str, Any]:
    recs = list(recs)
    started = [r for r in recs if r.first_play is not None]
    stalled = sum(stalled_s(r) for r in recs)
    played = sum(r.played_s for r in recs)
    latency = [v for r in recs for v in settled_latency(r)]
    return {
        "sessions": len(recs), "started": len(started),
        "never_started": [r.id for r in recs if r.first_play is None],
        "startup_s": stats([r.startup_s for r in started if r.startup_s is not None]),
        "stalls": sum(len(r.stalls) for r in recs),
        "sessions_with_stalls": sum(1 for r in recs if r.stalls),
        "stalled_s": round(stalled, 3), "played_s": round(played, 3),
        "rebuffer_ratio": round(stalled / (played + stalled), 5) if played + stalled > 0 else None,
        "latency_s": stats(latency),
        "switches": sum(max(0, len(r.renditions) - 1) for r in recs),
        "bytes": sum(r.bytes for r in recs),
        "media_requests": sum(r.media_requests for r in recs),
        "request_errors": sum(sum(r.errors.values()) for r in recs),
        "live_jumps": sum(r.live_jumps for r in recs),
    }


def check_budget(total: dict[str, Any], max_stall_ratio: float | None, max_latency: float | None) -> list[str]:
    """What the run broke of its QoE budget, one line each; [] when it kept it."""
    out: list[str] = []
    if total["never_started"]:
        n = len(total["never_started"])
        out.append(f"{n} session{'s' if n > 1 else ''} never started playing: {', '.join(total['never_started'][:5])}"
                   + (" ..." if n > 5 else ""))
    ratio = total["rebuffer_ratio"]
    if max_stall_ratio is not None and ratio is not None and ratio > max_stall_ratio:
        out.append(f"rebuffer ratio {ratio:.4f} > --max-stall-ratio {max_stall_ratio:g}")
    if max_latency is not None:
        lat = total["latency_s"]
        if lat is None:
            out.append("no latency was measured (nothing played past its first seconds)")
        elif lat["p95"] > max_latency:
            out.append(f"latency p95 {lat['p95']:.2f} s > --max-latency {max_latency:g} s")
    return out


def build_report(meta: dict[str, Any], records: list[SessionRecord], max_stall_ratio: float | None,
                 max_latency: float | None) -> dict[str, Any]:
    browsers = [r for r in records if r.kind == "browser"]
    sims = [r for r in records if r.kind == "simulated"]
    totals = {"all": group_summary(records), "browsers": group_summary(browsers), "simulated": group_summary(sims)}
    for name in sorted({r.profile for r in browsers if r.profile}):
        totals[f"profile {name}"] = group_summary(r for r in browsers if r.profile == name)
    violations = check_budget(totals["all"], max_stall_ratio, max_latency)
    return {
        "version": REPORT_VERSION, **meta,
        "figures": {"settle_s": SETTLE_S},
        "budget": {"max_stall_ratio": max_stall_ratio, "max_latency_s": max_latency,
                   "passed": not violations, "violations": violations},
        "totals": totals,
        "sessions": [session_summary(r) for r in records],
    }


def _f(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _row(label: str, g: dict[str, Any], n: int | None = None) -> list[str]:
    su, lat = g.get("startup_s"), g.get("latency_s")
    ratio = g.get("rebuffer_ratio")
    stalls = f"{g['stalls']}" + (f" ({g['sessions_with_stalls']})" if "sessions_with_stalls" in g else "")
    return [label, str(n if n is not None else g.get("sessions", 1)),
            f"{_f(su and su['p50'])} / {_f(su and su['p95'])}" if isinstance(su, dict) else _f(su),
            stalls, _f(None if ratio is None else 100 * ratio, ".2f"),
            f"{_f(lat and lat['p50'])} / {_f(lat and lat['p95'])}" if lat else "- / -",
            str(g["switches"]), f"{g['bytes'] / 1e6:.1f}", str(g["request_errors"])]


def table(report: dict[str, Any]) -> str:
    """The summary: a row per browser session, the simulated viewers together, and in total."""
    head = ["players", "n", "startup p50/p95 s", "stalls (sessions)", "rebuffer %", "latency p50/p95 s",
            "switches", "MB", "errors"]
    rows = []
    for s in report["sessions"]:
        if s["kind"] == "browser":
            label = f"{s['id']} {s['profile']}" + (f" [{s['main_rendition']}]" if s.get("main_rendition") else "")
            rows.append(_row(label, s, 1))
    if report["totals"]["simulated"]["sessions"]:
        rows.append(_row("simulated", report["totals"]["simulated"]))
    rows.append(_row("all", report["totals"]["all"]))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    lines = [fmt(head), *(fmt(r) for r in rows)]
    for s in report["sessions"]:
        if s["kind"] == "browser" and s["error"]:
            lines.append(f"{s['id']}: {s['error']}")
    errs = [s for s in report["sessions"] if s["kind"] == "simulated" and s["error"]]
    if errs:
        lines.append(f"{len(errs)} simulated viewer(s) failed, e.g. {errs[0]['id']}: {errs[0]['error']}")
    b = report["budget"]
    lines.append("budget: " + ("kept" if b["passed"] else "EXCEEDED: " + "; ".join(b["violations"])))
    return "\n".join(lines)

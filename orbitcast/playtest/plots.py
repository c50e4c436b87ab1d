"""The playtest's plots (matplotlib, PNG beside the JSON) and its HTML report.

- latency.png: glass-to-glass latency over the run, a line per browser, the simulated viewers
  in grey behind them;
- renditions.png: per browser, the bitrate of the rendition it played over the run, its
  stalls shaded, its profile's downlink drawn where it changes (stairs);
- cdf.png: the distribution (CDF) of latency samples and of startup times, browsers and
  simulated viewers apart;
- stalls.png: stalls begun in each interval of the run against the players playing in it
  (viewers join over the ramp, so the run sweeps the viewer count).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from .errors import PlaytestError

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlaytestError("the report's plots need matplotlib: pip install 'orbitcast[playtest]'") from None
    return plt


def _browsers(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in report["sessions"] if s["kind"] == "browser"]


def _sims(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in report["sessions"] if s["kind"] == "simulated"]


def plot_latency(report: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, s in enumerate(_sims(report)):
        pts = s["series"]["latency"]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="#999999", alpha=0.25, linewidth=0.6,
                    label="simulated viewers" if i == 0 else None)
    for i, s in enumerate(_browsers(report)):
        pts = s["series"]["latency"]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[i % len(COLORS)], linewidth=1.4,
                    label=f"{s['id']} {s['profile']}")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("glass-to-glass latency, s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Latency over time (clock authority now - program date-time on screen)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_renditions(report: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    browsers = _browsers(report) or [None]
    fig, axes = plt.subplots(len(browsers), 1, figsize=(10, 1.0 + 1.8 * len(browsers)), sharex=True, squeeze=False)
    end = report.get("seconds", 0)
    for i, (ax, s) in enumerate(zip(axes[:, 0], browsers)):
        if s is None:
            ax.text(0.5, 0.5, "no browser sessions", ha="center", va="center", transform=ax.transAxes)
            continue
        steps = s["series"]["renditions"]
        if steps:
            xs = [p[0] for p in steps] + [s["ended_s"] or end]
            ys = [p[2] / 1000 for p in steps] + [steps[-1][2] / 1000]
            ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], label="rendition played")
            for p in steps:
                ax.annotate(p[1], (p[0], p[2] / 1000), fontsize=7, xytext=(2, 3), textcoords="offset points")
        for a, b in s["series"]["stalls"]:
            ax.axvspan(a, b, color="#d62728", alpha=0.2)
        net = s["extra"].get("network") or []
        if len(net) > 1:
            ax.step([p[0] for p in net] + [s["ended_s"] or end], [p[1] / 1000 for p in net] + [net[-1][1] / 1000],
                    where="post", color="#555555", linestyle="--", label="downlink")
        ax.set_ylabel("kbit/s")
        ax.set_title(f"{s['id']} {s['profile']}" + (f": {s['error']}" if s["error"] else ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds into the run (stalls shaded)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _cdf(ax: Any, values: list[float], label: str, color: str) -> None:
    if not values:
        return
    s = sorted(values)
    ax.step(s, [(i + 1) / len(s) for i in range(len(s))], where="post", label=f"{label} (n={len(s)})", color=color)


def plot_cdf(report: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    settle = report["figures"]["settle_s"]
    fig, (ax_l, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    for group, color in ((_browsers(report), COLORS[0]), (_sims(report), "#777777")):
        if not group:
            continue
        label = "browsers" if group[0]["kind"] == "browser" else "simulated"
        lat = [p[1] for s in group if s["startup_s"] is not None
               for p in s["series"]["latency"] if p[0] >= s["joined_s"] + s["startup_s"] + settle]
        _cdf(ax_l, lat, label, color)
        _cdf(ax_s, [s["startup_s"] for s in group if s["startup_s"] is not None], label, color)
    ax_l.set_xlabel("glass-to-glass latency, s")
    ax_s.set_xlabel("startup, s")
    for ax in (ax_l, ax_s):
        ax.set_ylabel("fraction")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
    ax_l.set_title("CDF of latency samples", fontsize=10)
    ax_s.set_title("CDF of startup times", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def stalls_by_load(report: dict[str, Any], buckets: int = 20) -> list[tuple[float, int, int]]:
    """(bucket start, players playing in it, stalls begun in it) over the run."""
    seconds = float(report.get("seconds") or 0)
    if seconds <= 0:
        return []
    width = seconds / buckets
    out = []
    for k in range(buckets):
        a, b = k * width, (k + 1) * width
        playing = sum(1 for s in report["sessions"] if s["startup_s"] is not None
                      and s["joined_s"] + s["startup_s"] < b and (s["ended_s"] or seconds) > a)
        stalls = sum(1 for s in report["sessions"] for st in s["series"]["stalls"] if a <= st[0] < b)
        out.append((a, playing, stalls))
    return out


def plot_stalls(report: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    pts = stalls_by_load(report)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    if pts:
        sc = ax.scatter([p[1] for p in pts], [p[2] for p in pts], c=[p[0] for p in pts], cmap="viridis", s=30)
        fig.colorbar(sc, ax=ax, label="seconds into the run")
    ax.set_xlabel("players playing")
    ax.set_ylabel(f"stalls begun per {report.get('seconds', 0) / 20:g} s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title("Stalls against viewer count", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


PLOTS = {"latency.png": plot_latency, "renditions.png": plot_renditions, "cdf.png": plot_cdf, "stalls.png": plot_stalls}


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    return [fn(report, folder / name) for name, fn in PLOTS.items()]


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def write_html(report: dict[str, Any], path: Path, plots: list[Path]) -> Path:
    """The report as one page: the budget, totals, the plots, and a row per session."""
    e = html.escape
    b = report["budget"]
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>orbitcast playtest</title>",
           "<style>body{font:14px system-ui,sans-serif;margin:1.5em;max-width:1100px}"
           "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
           "th:first-child,td:first-child{text-align:left}.bad{color:#b00}.ok{color:#070}img{max-width:100%}</style>",
           "</head><body>",
           f"<h1>orbitcast playtest</h1><p>{e(report['url'])}<br>started {e(report['started'])}, "
           f"{report['seconds']:g} s, {report['browsers']} browser(s), {report['viewers']} simulated viewer(s); "
           f"clock: {e(str(report['clock']['source']))} (offset {report['clock']['offset_s']:+.4f} s)</p>",
           f"<p class='{'ok' if b['passed'] else 'bad'}'>QoE budget: "
           + ("kept" if b["passed"] else "exceeded: " + e("; ".join(b["violations"]))) + "</p>",
           "<h2>Totals</h2><table><tr><th>players</th><th>sessions</th><th>started</th><th>startup p50 / p95 s</th>"
           "<th>stalls (sessions)</th><th>rebuffer %</th><th>latency p50 / p95 s</th><th>switches</th><th>MB</th>"
           "<th>media requests</th><th>errors</th></tr>"]
    for name, g in report["totals"].items():
        if not g["sessions"]:
            continue
        su, lat = g["startup_s"] or {}, g["latency_s"] or {}
        ratio = g["rebuffer_ratio"]
        out.append(f"<tr><td>{e(name)}</td><td>{g['sessions']}</td><td>{g['started']}</td>"
                   f"<td>{_cell(su.get('p50'))} / {_cell(su.get('p95'))}</td><td>{g['stalls']} ({g['sessions_with_stalls']})</td>"
                   f"<td>{_cell(None if ratio is None else 100 * ratio)}</td>"
                   f"<td>{_cell(lat.get('p50'))} / {_cell(lat.get('p95'))}</td><td>{g['switches']}</td>"
                   f"<td>{g['bytes'] / 1e6:.1f}</td><td>{g['media_requests']}</td><td>{g['request_errors']}</td></tr>")
    out.append("</table>")
    for p in plots:
        out.append(f"<h2>{e(p.stem)}</h2><img src='{e(p.name)}' alt='{e(p.stem)}'>")
    if report.get("quality"):
        from ..quality import html_section

        out.append(html_section(report["quality"]))
    out.append("<h2>Sessions</h2><table><tr><th>id</th><th>kind</th><th>profile</th><th>joined s</th><th>startup s</th>"
               "<th>stalls</th><th>stalled s</th><th>latency p50 / p95 s</th><th>main rendition</th><th>switches</th>"
               "<th>bytes</th><th>media requests</th><th>errors</th><th>note</th></tr>")
    for s in report["sessions"]:
        lat = s["latency_s"] or {}
        note = s["error"] or ""
        if s["extra"].get("p1203"):
            note = (note + " " if note else "") + f"P.1203 input: {s['extra']['p1203']}"
        out.append(f"<tr><td>{e(s['id'])}</td><td>{e(s['kind'])}</td><td>{_cell(s['profile'])}</td>"
                   f"<td>{_cell(s['joined_s'])}</td><td>{_cell(s['startup_s'])}</td><td>{s['stalls']}</td>"
                   f"<td>{_cell(s['stalled_s'])}</td><td>{_cell(lat.get('p50'))} / {_cell(lat.get('p95'))}</td>"
                   f"<td>{_cell(s['main_rendition'])}</td><td>{s['switches']}</td><td>{s['bytes']}</td>"
                   f"<td>{s['media_requests']}</td><td>{s['request_errors']}</td><td>{e(note)}</td></tr>")
    out.append("</table><p>Figures are defined in docs/playtest.md. Latency percentiles leave out the first "
               f"{report['figures']['settle_s']:g} s after each player's startup.</p></body></html>")
    path.write_text("\n".join(out))
    return path

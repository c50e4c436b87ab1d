"""The plan over 24 hours as a PNG: PV forecast and load, battery state of charge against the
reserve, and the ladder step of each hour."""

from __future__ import annotations

from pathlib import Path

from .errors import EnergyError
from .planner import Plan


def plot_plan(plan: Plan, path: str | Path, title: str = "") -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: a file only
        import matplotlib.pyplot as plt
    except ImportError:
        raise EnergyError("the plot needs matplotlib: pip install 'orbitcast[energy]'") from None
    x = list(range(len(plan.hours)))
    labels = [f"{h.start:%H}" for h in plan.hours]
    fig, (ax_p, ax_s, ax_l) = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True,
                                           gridspec_kw={"height_ratios": [2, 1.4, 1.6]})
    ax_p.bar(x, [h.pv_w for h in plan.hours], width=1.0, align="edge", color="#f2b632", alpha=0.7, label="PV forecast (AC)")
    ax_p.step(x + [len(x)], [h.load_w for h in plan.hours] + [plan.hours[-1].load_w], where="post",
              color="#333333", label="planned load")
    ax_p.set_ylabel("W")
    ax_p.legend(loc="upper left")
    ax_s.plot([0] + [i + 1 for i in x], [plan.hours[0].soc_start * 100] + [h.soc_end * 100 for h in plan.hours],
              color="#2a7ab0", marker=".", label="state of charge")
    ax_s.axhline(plan.reserve * 100, color="#c0392b", linestyle="--", label=f"reserve {plan.reserve:.0%}")
    if plan.end_soc:
        ax_s.plot([len(x)], [plan.end_soc * 100], marker="v", color="#c0392b", linestyle="none", clip_on=False,
                  label=f"to end at {plan.end_soc:.0%}")
    ax_s.set_ylim(0, 100)
    ax_s.set_ylabel("battery %")
    ax_s.legend(loc="upper left")
    ax_l.step(x + [len(x)], [h.step.index for h in plan.hours] + [plan.hours[-1].step.index], where="post", color="#6a3d9a")
    ax_l.set_yticks([s.index for s in plan.steps], [f"{s.index} {s.label}" for s in plan.steps], fontsize=8)
    ax_l.set_ylim(len(plan.steps) - 0.5, -0.5)  # the full ladder on top
    ax_l.set_ylabel("ladder step")
    ax_l.set_xticks(x, labels)
    ax_l.set_xlim(0, len(x))
    ax_l.set_xlabel(f"local hour ({plan.hours[0].start.tzname()})")
    fig.suptitle(title or f"energy plan {plan.hours[0].start:%Y-%m-%d}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

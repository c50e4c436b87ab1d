"""A plan as a person reads it: the steps with their load and saving, then one line per hour."""

from __future__ import annotations

from .planner import Plan


def steps_table(plan: Plan) -> str:
    lines = ["step  action                      load W  saves W  ladder"]
    prev = None
    for s in plan.steps:
        saves = "" if prev is None else f"{prev - s.load_w:7.2f}"
        rungs = " ".join(f"{r}*" if r in s.fast_rungs else r for r in s.rungs)
        extra = [f"{s.fps} fps"] if s.fps else []
        extra += [f"{s.members} members"] if s.members else []
        extra += [] if s.accept_new_feeds else ["no new feeds"]
        lines.append(f"{s.index:>4}  {s.label[:26]:26s} {s.load_w:7.2f}  {saves:>7s}  {rungs}"
                     + (f" ({', '.join(extra)})" if extra else ""))
        prev = s.load_w
    lines.append(f"(* on {plan.steps[0].faster_preset})" if any(s.fast_rungs for s in plan.steps) else "")
    return "\n".join(x for x in lines if x)


def plan_table(plan: Plan) -> str:
    lines = ["hour   PV W  load W  SoC start -> end  step  ladder"]
    for h in plan.hours:
        flag = "" if not h.below_reserve else "  BELOW RESERVE" if h.soc_end < plan.reserve else "  BELOW END TARGET"
        flag += f"  unserved {h.unserved_wh:.1f} Wh" if h.unserved_wh > 0 else ""
        lines.append(f"{h.start:%H:%M} {h.pv_w:6.1f} {h.load_w:7.2f}  {h.soc_start:6.1%} -> {h.soc_end:6.1%}"
                     f"  {h.step.index:>4}  {h.step.label}{flag}")
    load_wh = sum(h.load_w for h in plan.hours)
    pv_wh = sum(h.pv_w for h in plan.hours)
    lines.append(
        f"PV {pv_wh:.0f} Wh, load {load_wh:.0f} Wh, curtailed {sum(h.curtailed_wh for h in plan.hours):.0f} Wh; "
        f"battery {plan.capacity_wh:.0f} Wh, reserve {plan.reserve:.0%}"
        + (f", to end at {plan.end_soc:.0%} or more" if plan.end_soc else "")
        + f", lowest {plan.min_soc:.1%}; "
        + ("the plan holds" if plan.feasible else "the battery falls short even at the last step"))
    return "\n".join(lines)


def plan_report(plan: Plan, site_name: str = "") -> str:
    head = f"energy plan {plan.hours[0].start:%Y-%m-%d} ({plan.hours[0].start.tzname()})" + (f", {site_name}" if site_name else "")
    return "\n\n".join([head, steps_table(plan), plan_table(plan)])

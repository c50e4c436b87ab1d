"""Joules per media second per rung, and the energy each degradation action saves.

Runs the project's `LiveTranscoder` (no Ray) over the demo source, unpaced, in several ladder
variants, and measures this process's CPU time (all threads, x264's included) for each:

- the source alone (lavfi generation and the conversion to raw units; no transcoding),
- the whole demo ladder, the ladder without each rung in turn, and each rung alone, at the
  configured preset: a least-squares fit of "shared + the rungs encoded" over these runs
  gives each rung's cost (what dropping it saves) and the cost the feed shares,
- each rung alone at the faster preset (against the same rung at the configured preset: the
  faster preset's saving),
- the whole ladder at the reduced frame rate.

Each variant runs `--repeat` times, interleaved, and the means count (the spread is shown).

CPU seconds become joules through the power model (`energy.power` in the config, RAPL energy
when the powercap tree is readable: then both are shown). Results print as a table and,
with `--json FILE`, as JSON that `--from-json FILE` turns into the table again (and
`energy.costs` in the config can take its figures).

    .venv/bin/python -m bench.bench_energy --seconds 20 --repeat 3 --json /tmp/bench_energy.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from orbitcast.config import DEMO_SOURCE, LadderConfig, OrbitcastConfig, load_config
from orbitcast.energy.attribution import WorkItem, attribute
from orbitcast.energy.costs import LadderCosts
from orbitcast.energy.meter import IntervalEnergy
from orbitcast.energy.model import PowerModel
from orbitcast.energy.rapl import RaplReader
from orbitcast.media.source import Source, SourceEnded
from orbitcast.media.transcode import LiveTranscoder


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(ladder: LadderConfig | None, seconds: float, rapl: RaplReader, ask: dict | None = None) -> dict[str, float | None]:
    """CPU seconds, wall seconds and (where readable) RAPL joules for `seconds` of media;
    `ladder=None` reads the source only; `ask`: `LiveTranscoder.set_ladder`'s arguments, as the
    live pipeline hands them over when it follows the plan (a faster preset, a lower rate)."""
    cfg = OrbitcastConfig()
    src = Source(DEMO_SOURCE, realtime=False)
    streams = src.open()
    tr = None if ladder is None else LiveTranscoder("bench", ladder, cfg.segment_duration, cfg.part_duration, streams)
    if tr is not None and ask is not None:
        tr.set_ladder(**ask)
    before_rapl = rapl.read() if rapl.available else None
    cpu0, wall0 = _cpu(), time.perf_counter()
    batch = []
    try:
        for unit in src.units():
            batch.append(unit)
            if len(batch) >= 8:
                if tr is not None:
                    tr.push(batch)
                batch = []
            if unit.time >= seconds:
                break
    except SourceEnded:
        pass
    if tr is not None:
        tr.push(batch)
        tr.flush()
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    joules = rapl.joules_since(before_rapl) if before_rapl is not None else None
    src.close()
    return {"cpu_s": cpu, "wall_s": wall, "rapl_j": joules}


def measure(seconds: float, faster_preset: str, reduced_fps: int, repeat: int = 3) -> dict:
    ladder = OrbitcastConfig().ladder
    rapl = RaplReader()
    # (ladder, set_ladder's arguments): the faster preset and the lower rate as the live
    # pipeline applies them (the preset with the base preset's stream headers, media/x264.py;
    # one picture kept in two with the encoder as it was)
    variants: dict[str, tuple[LadderConfig | None, dict | None]] = {"source only": (None, None), "full ladder": (ladder, None)}
    for r in ladder.rungs:
        variants[f"without {r.name}"] = (ladder.model_copy(update={"rungs": tuple(x for x in ladder.rungs if x is not r)}), None)
    for r in ladder.rungs:
        alone = ladder.model_copy(update={"rungs": (r,)})
        variants[f"only {r.name} {ladder.preset}"] = (alone, None)
        variants[f"only {r.name} {faster_preset}"] = (alone, {"rungs": None, "fast": (r.name,), "faster_preset": faster_preset})
    variants[f"full ladder {reduced_fps} fps"] = (ladder, {"rungs": None, "fps": reduced_fps})
    runs: dict[str, list[dict[str, float | None]]] = {name: [] for name in variants}
    # Interleaved repeats, so that other work on a shared machine weighs on every variant
    # alike; the means are compared, and the spread is reported with them.
    for i in range(repeat):
        for name, (lad, ask) in variants.items():
            r = run(lad, seconds, rapl, ask)
            print(f"  {i + 1}/{repeat} {name:28s} {r['cpu_s'] / seconds:.3f} CPU s per media s", flush=True)  # type: ignore[operator]
            runs[name].append(r)
    return {
        "seconds": seconds, "cpus": os.cpu_count(), "rapl_readable": rapl.available,
        "rapl_zones": [z.name for z in rapl.zones], "preset": ladder.preset, "faster_preset": faster_preset,
        "reduced_fps": reduced_fps, "repeat": repeat, "rungs": [r.model_dump() for r in ladder.rungs], "runs": runs,
    }


def mean_cpu(runs: list[dict]) -> float:
    return sum(float(r["cpu_s"]) for r in runs) / len(runs)


def report(data: dict, model: PowerModel) -> str:
    s, runs = data["seconds"], data["runs"]
    per = {k: mean_cpu(v) / s for k, v in runs.items()}
    spread = {k: (max(r["cpu_s"] for r in v) - min(r["cpu_s"] for r in v)) / 2 / s for k, v in runs.items()}
    rapl_j = {k: [r["rapl_j"] for r in v if r["rapl_j"] is not None] for k, v in runs.items()}
    ladder = LadderConfig(rungs=tuple(data["rungs"]), preset=data["preset"])
    costs = LadderCosts.from_bench(data)
    cpus, fps = data["cpus"], data["reduced_fps"]
    lines = [
        f"{s:.0f} media s per run, mean of {data.get('repeat', 1)}, {cpus} logical CPUs, RAPL readable: {data['rapl_readable']}"
        + (f" ({', '.join(data['rapl_zones'])})" if data["rapl_zones"] else ""),
        f"power model: P = {model.idle_w:.2f} W + {model.k_w:.2f} W x utilisation "
        f"(active J per CPU s: {model.joules_per_cpu_s(cpus):.2f})",
        "",
        "| run | CPU s per media s (mean ± half range) | active J per media s (model) |" + (" RAPL J per media s |" if data["rapl_readable"] else ""),
        "|---|---|---|" + ("---|" if data["rapl_readable"] else ""),
    ]
    for name in runs:
        row = f"| {name} | {per[name]:.3f} ± {spread[name]:.3f} | {model.joules_per_cpu_s(cpus) * per[name]:.2f} |"
        if data["rapl_readable"] and rapl_j[name]:
            row += f" {sum(rapl_j[name]) / len(rapl_j[name]) / s:.2f} |"
        lines.append(row)
    j = model.joules_per_cpu_s(cpus)
    # One feed in real time for one second: the host's energy by the model, divided among the
    # rungs (and what the feed shares) by CPU time, idle by wall time.
    full = per["full ladder"]
    second = IntervalEnergy(1.0, full, cpus, model.joules(1.0, full, cpus), model.idle_w, "model", model.rel_error)
    items = [WorkItem(r.name, costs.rung_cpu[r.name], 1.0) for r in ladder.rungs] + [WorkItem("shared", costs.feed_cpu, 1.0)]
    shares = {a.key: a for a in attribute(second, items)}
    lines += ["", "| rung | CPU s per media s (fit over all runs; what dropping it saves) | active J per media s "
              "| J per media s with idle share (one feed, real time) "
              f"| {data['faster_preset']} instead of {data['preset']}: CPU kept |", "|---|---|---|---|---|"]
    for r in ladder.rungs:
        a = shares[r.name]
        lines.append(f"| {r.name} | {costs.rung_cpu[r.name]:.3f} | {j * costs.rung_cpu[r.name]:.2f} "
                     f"| {a.joules:.2f} ± {a.error_joules:.2f} | {costs.faster(r):.2f} |")
    a = shares["shared"]
    lines.append(f"| shared by the feed | {costs.feed_cpu:.3f} | {j * costs.feed_cpu:.2f} | {a.joules:.2f} ± {a.error_joules:.2f} | |")
    lines += ["", "shared: the source, decoding, audio, what no single rung's removal saves",
              f"frame rate {fps} instead of the source's: the rungs keep {costs.reduced_fps_factor:.2f} of their CPU",
              "", "energy.costs for the config:", json.dumps(costs.as_config(), indent=2)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="media seconds per run")
    parser.add_argument("--config", default=None, help="orbitcast.yaml whose energy.power model turns CPU time into joules")
    parser.add_argument("--faster-preset", default="ultrafast")
    parser.add_argument("--reduced-fps", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (interleaved); their mean counts")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    parser.add_argument("--from-json", default=None, help="report measurements written before, measure nothing")
    args = parser.parse_args()
    model = PowerModel.from_config(load_config(args.config).energy.power)
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
    else:
        data = measure(args.seconds, args.faster_preset, args.reduced_fps, args.repeat)
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=2))
    print(report(data, model))


if __name__ == "__main__":
    main()

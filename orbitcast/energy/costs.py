"""What transcoding costs in CPU seconds per media second: per feed, per rung, and what each
degradation action keeps. Measured by bench/bench_energy.py (a rung's cost is its marginal
cost: the whole ladder's CPU time less the ladder's without it), or set in `energy.costs`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Rung
from .config import CostsConfig


@dataclass(frozen=True)
class LadderCosts:
    feed_cpu: float
    rung_cpu: Mapping[str, float]
    cpu_per_mpixel: float
    faster_preset: str
    faster_preset_factor: float
    reduced_fps: int
    reduced_fps_factor: float
    member_cpu: float
    faster_by_rung: Mapping[str, float] = field(default_factory=dict)  # measured per rung, where known

    @classmethod
    def from_config(cls, cfg: CostsConfig) -> "LadderCosts":
        return cls(cfg.feed_cpu, dict(cfg.rung_cpu), cfg.cpu_per_mpixel, cfg.faster_preset, cfg.faster_preset_factor,
                   cfg.reduced_fps, cfg.reduced_fps_factor, cfg.member_cpu)

    def rung(self, rung: Rung, fps: float = 30.0) -> float:
        """CPU seconds per media second of one rung at the ladder's preset and source rate."""
        if rung.name in self.rung_cpu:
            return self.rung_cpu[rung.name]
        return self.cpu_per_mpixel * rung.width * rung.height * fps / 1e6

    def faster(self, rung: Rung) -> float:
        return self.faster_by_rung.get(rung.name, self.faster_preset_factor)

    def weights(self, rungs: Iterable[Rung], fps: float = 30.0) -> dict[str, float]:
        """Relative cost of each rung: how to split one transcoder's CPU time among them."""
        return {r.name: self.rung(r, fps) for r in rungs}

    @classmethod
    def from_bench(cls, data: Mapping[str, Any]) -> "LadderCosts":
        """From bench/bench_energy.py's measurements (its JSON)."""
        s, runs = float(data["seconds"]), data["runs"]

        def per(name: str) -> float:  # the mean of the repeats
            return sum(float(r["cpu_s"]) for r in runs[name]) / len(runs[name]) / s

        rungs = [Rung(**r) for r in data["rungs"]]
        names = [r.name for r in rungs]
        # Every run at the ladder's preset and the source's rate is the shared cost plus the
        # cost of the rungs it encoded: the whole ladder, the ladder less one rung, one rung
        # alone. A least-squares fit over all of them is steadier than any one difference
        # on a machine shared with other work.
        rows, y = [], []
        for name, kept in [("full ladder", set(names))] + [(f"without {n}", set(names) - {n}) for n in names] \
                + [(f"only {n} {data['preset']}", {n}) for n in names]:
            rows.append([1.0] + [1.0 if n in kept else 0.0 for n in names])
            y.append(per(name))
        fit = np.linalg.lstsq(np.array(rows), np.array(y), rcond=None)[0]
        feed = max(float(fit[0]), 0.0)
        marginal = {n: max(float(x), 0.0) for n, x in zip(names, fit[1:])}
        full = per("full ladder")
        faster = {}
        for r in rungs:
            if marginal[r.name] > 0:
                # The two one-rung runs differ in the encoder's preset only: their difference
                # is what the faster preset saves on this rung, free of the shared costs.
                saved = per(f"only {r.name} {data['preset']}") - per(f"only {r.name} {data['faster_preset']}")
                faster[r.name] = min(max(1.0 - saved / marginal[r.name], 0.05), 1.0)
        below_top = sorted(rungs, key=lambda r: -r.video_bitrate)[1:]
        low = [faster[r.name] for r in below_top if r.name in faster] or list(faster.values()) or [1.0]
        fps_kept = (per(f"full ladder {data['reduced_fps']} fps") - feed) / max(full - feed, 1e-9)
        mpix = sum(r.width * r.height * 30.0 / 1e6 for r in rungs)
        return cls(
            feed_cpu=feed, rung_cpu=marginal, cpu_per_mpixel=sum(marginal.values()) / mpix,
            faster_preset=data["faster_preset"], faster_preset_factor=sum(low) / len(low),
            reduced_fps=int(data["reduced_fps"]), reduced_fps_factor=min(max(fps_kept, 0.05), 1.0),
            member_cpu=0.01, faster_by_rung=faster,
        )

    def as_config(self) -> dict[str, Any]:
        """The `energy.costs` section these figures make (rounded as a person writes them)."""
        return {
            "feed_cpu": round(self.feed_cpu, 3), "rung_cpu": {k: round(v, 3) for k, v in self.rung_cpu.items()},
            "cpu_per_mpixel": round(self.cpu_per_mpixel, 4), "faster_preset": self.faster_preset,
            "faster_preset_factor": round(self.faster_preset_factor, 2), "reduced_fps": self.reduced_fps,
            "reduced_fps_factor": round(self.reduced_fps_factor, 2), "member_cpu": self.member_cpu,
        }

"""The site's plan, live: one actor holding a `LadderGovernor` (orbitcast/energy/governor.py).
Transcoder pool members ask it for the hour's step (`ladder`) every `follow_plan.poll_s`; the
Delivery replicas show its `status` in /api/energy. Started only with `energy.follow_plan`.

A restarted one starts its site clock and battery again (a simulated day from its first hour):
the plan is the site's picture, rebuilt from the config, not state worth keeping."""

from __future__ import annotations

import ray

from orbitcast.config import OrbitcastConfig
from orbitcast.energy.governor import LadderGovernor, measured_pipeline_w

MEASURE_TIMEOUT_S = 5.0


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class LadderGovernorActor:
    def __init__(self, config: OrbitcastConfig) -> None:
        self.pool: "ray.actor.ActorHandle | None" = None
        measure = self._measure if config.energy.enabled else None
        self.governor = LadderGovernor(config, measure=measure)  # pvlib: the energy extra

    def _measure(self) -> float | None:
        if self.pool is None:
            return None
        try:
            return measured_pipeline_w(ray.get(self.pool.energy.remote(), timeout=MEASURE_TIMEOUT_S))
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            return None  # the model's level until the pool answers again

    def ladder(self, pool: "ray.actor.ActorHandle | None" = None) -> dict:
        """The step in force: its rungs (the ladder's order), frame rate (None: the source's),
        the rungs on the faster preset and the pool cap. The pool passes itself (every poll, so a
        restarted governor knows it again): its measured watts set the level of the plan's loads."""
        if pool is not None:
            self.pool = pool
        s = self.governor.step()
        return {"step": s.index, "rungs": list(s.rungs), "fps": s.fps, "fast": list(s.fast_rungs),
                "faster_preset": s.faster_preset, "members": s.members}

    def status(self) -> dict:
        return self.governor.status()

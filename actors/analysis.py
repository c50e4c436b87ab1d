"""The analysis stage in the cluster, off the live path.

`AnalysisActor`: one per analysed feed, named `analysis:<feed>` in the pipeline's namespace,
holding an `orbitcast.analysis.FeedAnalysis` (faces, expressions, per-segment tags). It runs at
the bulk work's niceness and reserves no CPU: the pictures wait for cores the live path leaves.

The edge follows each analysed feed's actor by name (`after`, a few calls a second) and puts
its tags into the live window and the analysis table (actors/edge.py): the actor knows nothing
of the delivery side, and a dead or missing one only means no new tags.

`AnalysisLink`: what a transcoder member holds per feed. Its `FrameTap` samples the decoded
input inside the live transcoder; `send()` hands the samples on with an actor call each and
never waits: at most `analysis.queue` calls in flight, a sample beyond that is dropped and
counted, and an analyser that died (or was killed) is looked up again at most every
`RETRY_S` seconds while its samples are dropped. The live stream does not notice either.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import ray
from ray.exceptions import RayError

from orbitcast.analysis import FeedAnalysis, FrameAnalyzer, FrameTap, SampleGate, available
from orbitcast.analysis.config import AnalysisConfig
from orbitcast.analysis.sampling import Sample
from orbitcast.priority import give_way

from .analysis_name import actor_name

log = logging.getLogger(__name__)
RETRY_S = 5.0
KEEP_SAMPLES = 4  # samples the tap holds between two pushes of the feed


@ray.remote(num_cpus=0, max_restarts=-1)
class AnalysisActor:
    def __init__(self, feed: str, config: AnalysisConfig, segment_duration: float) -> None:
        give_way()  # bulk work: after the viewer path and the transcoders' own threads
        analyzer = FrameAnalyzer.default(config.min_face_score, config.detector)
        self.analysis = FeedAnalysis(feed, analyzer, segment_duration)
        self.link_stats: dict[str, int] = {}

    def analyze(self, samples: list[Sample], link_stats: dict[str, int] | None = None) -> list[dict]:
        """Analyse samples; returns the tags of the segments they closed (as dicts)."""
        if link_stats:
            self.link_stats = link_stats
        return [s.as_dict() for s in self.analysis.add(samples)]

    def summaries(self, first_seq: int | None = None, last_seq: int | None = None) -> list[dict]:
        return [s.as_dict() for s in self.analysis.summaries(first_seq, last_seq)]

    def after(self, seq: int | None, limit: int = 64) -> list[dict]:
        """Tags of segments after `seq` (None: the newest `limit`): what the edge follows."""
        return [s.as_dict() for s in self.analysis.after(seq, limit)]

    def between(self, start: float, end: float) -> list[dict]:
        return [s.as_dict() for s in self.analysis.between(start, end)]

    def latest(self) -> dict | None:
        """The picture of the moment (faces, boxes, expressions) for the viewer's overlay."""
        return self.analysis.latest.as_dict() if self.analysis.latest else None

    def stats(self) -> dict:
        return {**self.analysis.stats(), **{f"link_{k}": v for k, v in self.link_stats.items()}}


class AnalysisLink:
    def __init__(self, feed: str, config: AnalysisConfig, segment_duration: float) -> None:
        self.feed = feed
        self.config = config
        self.segment_duration = segment_duration
        self.tap = FrameTap(feed, config.sample_fps, config.width, keep=KEEP_SAMPLES)
        self.gate = SampleGate(config.queue)
        self.failures = 0
        self._refs: deque[ray.ObjectRef] = deque()
        self._actor: ray.actor.ActorHandle | None = None
        self._retry_at = 0.0

    @classmethod
    def for_feed(cls, feed: str, config: AnalysisConfig, segment_duration: float) -> "AnalysisLink | None":
        """A link when `config` analyses this feed and the stage can run here, else None (why
        is logged: a missing extra turns the stage off, never the feed)."""
        if not config.covers(feed):
            return None
        why = available()
        if why is not None:
            log.warning("analysis of feed %s is off: %s", feed, why)
            return None
        return cls(feed, config, segment_duration)

    def stats(self) -> dict[str, int]:
        return {**self.gate.stats(), **self.tap.stats(), "failures": self.failures}

    def send(self) -> None:
        """Hand the tap's samples on; returns at once."""
        self._reap()
        samples = self.tap.take()
        actor = self._analyser() if samples else None
        for sample in samples:
            if actor is None:
                self.gate.drop()
            elif self.gate.admit():
                self._refs.append(actor.analyze.remote([sample], self.stats()))

    def _reap(self) -> None:
        if not self._refs:
            return
        ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        for ref in ready:
            self._refs.remove(ref)
            self.gate.done()
            try:
                ray.get(ref, timeout=0)
            except RayError as err:
                self.failures += 1
                self._actor = None
                self._retry_at = time.monotonic() + RETRY_S
                log.warning("analysis of feed %s: the analyser failed (%s); samples are dropped for now",
                            self.feed, type(err).__name__)

    def _analyser(self) -> "ray.actor.ActorHandle | None":
        if self._actor is None and time.monotonic() >= self._retry_at:
            try:
                self._actor = AnalysisActor.options(name=actor_name(self.feed), get_if_exists=True).remote(
                    self.feed, self.config, self.segment_duration)
            except (RayError, ValueError) as err:
                log.warning("analysis of feed %s: no analyser (%s)", self.feed, err)
                self._retry_at = time.monotonic() + RETRY_S
        return self._actor

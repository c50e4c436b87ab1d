"""A live encoder that cannot keep pace moves to a faster x264 preset, and back when it can.

A live ladder has no slack: when its encoders need more CPU than the machine gives them (a
host shared with other work, a viewer's browser on the same two cores, a burst on a busy
node), the newest media falls further behind the wall clock with every second, viewers stall,
and after seconds the source re-anchors its clock. Live encoders in production trade picture
quality for speed instead (x264's own `--preset` steps; OBS reports "encoding overloaded" and
suggests the same). `OverloadSteps` watches how far behind the wall clock the media a
transcoder has just encoded was captured and, at a segment boundary, asks for the next faster
preset while that lag stays over `behind`; after `calm` seconds without lag it steps back one
preset. A step taken again soon after stepping back doubles the calm needed next time, so a
machine that can only just keep pace does not swing between presets every half minute.

The transcoder applies a step as the energy plan's faster preset is applied (transcode.py,
x264.py): from the next segment's keyframe, with the rung's stream headers kept, so players
and the archive see one init segment throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

# x264's presets, fastest first (x264 common/base.c).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
SETTLE_S = 4.0  # a new preset gets this long to drain the backlog before the next step up
MAX_CALM_S = 600.0


def faster_of(a: str | None, b: str | None) -> str | None:
    """The faster of two presets (None: no preset asked)."""
    if a is None or b is None:
        return a or b
    rank = {p: i for i, p in enumerate(X264_PRESETS)}
    return a if rank.get(a, len(rank)) <= rank.get(b, len(rank)) else b


def steps_for(base: str, presets: tuple[str, ...]) -> tuple[str, ...]:
    """The configured presets that are faster than `base`, slowest first."""
    rank = {p: i for i, p in enumerate(X264_PRESETS)}
    if base not in rank:
        return ()
    return tuple(sorted({p for p in presets if rank.get(p, len(rank)) < rank[base]}, key=rank.__getitem__, reverse=True))


@dataclass
class OverloadSteps:
    """The preset steps of one feed's ladder (see the module's docstring). Times are seconds
    on any monotonic clock; lags are wall-clock seconds."""

    steps: tuple[str, ...]  # faster presets, slowest first (steps_for)
    behind: float = 1.0
    calm: float = 30.0

    def __post_init__(self) -> None:
        self.step = 0  # 0: the ladder's own preset; n: steps[n - 1]
        self.lag: float | None = None  # the newest lag observed
        self.worst = 0.0  # the worst lag since the last boundary
        self.changed_at: float | None = None
        self.lagged_at: float | None = None  # last boundary with a lag over half of `behind`
        self.down_at: float | None = None
        self.ups = 0  # steps up taken, for /api/feeds

    @property
    def preset(self) -> str | None:
        """The faster preset in force (None: the ladder's own)."""
        return self.steps[self.step - 1] if self.step else None

    def observe(self, lag: float) -> None:
        """How far behind the wall clock the newest media just encoded was captured."""
        self.lag = lag
        self.worst = max(self.worst, lag)

    def at_boundary(self, now: float) -> str | None:
        """At a segment's first picture: the faster preset for the segment (None: none)."""
        worst, self.worst = self.worst, 0.0
        settled = self.changed_at is None or now - self.changed_at >= SETTLE_S
        if worst > self.behind and self.step < len(self.steps) and settled:
            if self.down_at is not None and now - self.down_at < 2 * self.calm:
                self.calm = min(2 * self.calm, MAX_CALM_S)  # stepped back too soon: wait longer next time
            self.step += 1
            self.ups += 1
            self.changed_at = now
        elif self.step and worst <= self.behind / 2:
            quiet_since = max(self.changed_at or 0.0, self.lagged_at or 0.0)  # a step up set changed_at
            if now - quiet_since >= self.calm:
                self.step -= 1
                self.changed_at = self.down_at = now
        if worst > self.behind / 2:
            self.lagged_at = now
        return self.preset

    def status(self) -> dict:
        return {"preset": self.preset, "behind_s": None if self.lag is None else round(self.lag, 3),
                "steps_up": self.ups, "calm_s": self.calm}

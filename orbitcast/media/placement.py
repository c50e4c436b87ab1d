"""Which transcoder pool member runs each feed: the least loaded member that is alive, a member
just seen failing for the feed only when no other answers.

The pool actor gives this the members' liveness (a ping each); the rule is here so that it is
tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable


class NoMemberAlive(RuntimeError):
    """Every member failed its liveness check."""


class Placement:
    def __init__(self, members: int) -> None:
        if members < 1:
            raise ValueError("a pool has at least one member")
        self.members = members
        self._placed: dict[str, int] = {}  # feed -> member index

    def assign(self, feed: str, alive: Callable[[int], bool], avoid: int | None = None) -> int:
        """Place `feed` (again) and return its member. Candidates go least loaded first (the feed
        itself not counted), `avoid` last, lower index on ties; the first that `alive` passes
        takes the feed."""
        loads = dict.fromkeys(range(self.members), 0)
        for placed, member in self._placed.items():
            if placed != feed:
                loads[member] += 1
        for member in sorted(loads, key=lambda i: (i == avoid, loads[i], i)):
            if alive(member):
                self._placed[feed] = member
                return member
        raise NoMemberAlive("no transcoder pool member is alive")

    def to_park(self, cap: int | None) -> set[int]:
        """Members to stop under a pool cap of `cap` members (the energy plan's step, docs/energy.md):
        standbys (no feed placed) beyond the cap, highest index first; never one that runs a feed."""
        if cap is None:
            return set()
        busy = set(self._placed.values())
        idle = sorted(set(range(self.members)) - busy, reverse=True)
        return set(idle[:max(self.members - max(cap, len(busy)), 0)])

    def as_dict(self) -> dict[str, int]:
        return dict(self._placed)

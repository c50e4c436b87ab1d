"""A process and its standby: calls go to the active one; when it dies, to the other at once.

Ray starts a killed actor again, but a new worker process, its imports and its `__init__`
take about a second, longer than a low-latency player's part hold-back. A standby already
running takes the calls meanwhile, and the one Ray started again becomes the standby.

Calls made to the active one between its death and the moment the caller hears of it wait in
Ray for the process started again, and would run there after the standby has done them. So
each call names the incarnation it is meant for (a token each process draws at its start), and
a process refuses a call meant for another (`NotThisIncarnation`): the caller has sent it to
the standby already, or asks for the token again and sends it anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

# For the environment of an actor that must hear at once that a process it calls died. A call in
# flight to a dead actor fails after Ray's grace for the death's notice (1 s by default, checked
# on a timer: 1-2 s here); at 0 it fails as the connection drops (about 10 ms). KubeRay sets the
# same for RayService. Only where the caller has somewhere else to go (a standby, another pool
# member): elsewhere Ray's retry on the process it starts again is the way.
DEATH_NOTICE_ENV = {"RAY_timeout_ms_task_wait_for_death_info": "0"}


class NotThisIncarnation(Exception):
    """A call meant for a process that has died since; this one was started in its place."""


def check_incarnation(mine: str, meant: str | None) -> None:
    """Raise NotThisIncarnation for a call meant for another incarnation (None: any)."""
    if meant is not None and meant != mine:
        raise NotThisIncarnation(f"meant for incarnation {meant}, this is {mine}")


class Standby(Generic[T]):
    def __init__(self, members: Sequence[T]) -> None:
        if not members:
            raise ValueError("a standby needs at least one member")
        self.members = tuple(members)
        self.index = 0
        # each member's incarnation as last asked; None: to ask (never asked, or died since)
        self.incarnations: list[str | None] = [None] * len(self.members)
        self.found = False  # whether `found_publishing` has been told what the members said

    def found_publishing(self, answers: Sequence[tuple[str, float] | None]) -> None:
        """What each member said when asked (its incarnation, when it last published, 0: never;
        None: no answer): calls go to the one that published last. A caller that starts anew
        (a pool member Ray started again) keeps to the packager that has the feed, rather than
        move it to the first one, which may be the standby now; two packagers taking turns
        would both keep the feed's catalog."""
        self.found = True
        latest = 0.0  # none has published (a pipeline starting): the first
        for i, answer in enumerate(answers):
            if answer is None:
                continue
            self.incarnations[i] = answer[0]
            if answer[1] > latest:
                latest, self.index = answer[1], i

    @property
    def active(self) -> T:
        return self.members[self.index]

    @property
    def has_standby(self) -> bool:
        return len(self.members) > 1

    def fail_over(self) -> T:
        """The active member died: the next one takes the calls (with one member, itself again)."""
        self.incarnations[self.index] = None
        self.index = (self.index + 1) % len(self.members)
        return self.active

    def started_again(self) -> None:
        """The active member refused a call meant for its predecessor: ask its incarnation anew."""
        self.incarnations[self.index] = None


# A pair of processes of which one runs something that must run once (a feed's source loop) and
# the other stands by. No third party decides: each says its role when asked, and the one that
# stands by keeps a call in flight to the other and takes over the moment it fails.
HOLDING = "holding"
STANDING_BY = "standing by"
DECIDING = "deciding"  # started again by Ray: asking the other what it does


def role_after_restart(index: int, other: str | None) -> str | None:
    """The role a process of a pair takes when Ray has started it again, from the other's answer
    (`HOLDING`, `STANDING_BY`, `DECIDING`; None: no answer). None: ask again.

    The other holds: stand by. Otherwise the first of the pair (index 0) holds, whatever the other
    said or did not say: both started again together (a node lost) must not both hold, and the
    second holds only when it has seen the first die while it stood by. A second that finds the
    first standing by asks again: the first is about to hear of the death it watches for."""
    if other == HOLDING:
        return STANDING_BY
    if index == 0:
        return HOLDING
    return None


class NotHolding(Exception):
    """A call that only the holder of a pair takes, made to the one standing by: the caller goes
    to the other."""

"""A feed's source loop runs in one process of a pair: the rule each follows when Ray starts it
again (orbitcast/standby.py `role_after_restart`), tried over every order of events."""

from __future__ import annotations

import itertools
import random

from orbitcast.standby import DECIDING, HOLDING, STANDING_BY, role_after_restart


def test_a_process_started_again_stands_by_when_the_other_holds() -> None:
    assert role_after_restart(0, HOLDING) == STANDING_BY
    assert role_after_restart(1, HOLDING) == STANDING_BY


def test_the_first_holds_unless_the_other_does_and_the_second_asks_again() -> None:
    for other in (STANDING_BY, DECIDING, None):
        assert role_after_restart(0, other) == HOLDING
        assert role_after_restart(1, other) is None


def _decide_together(order: list[int]) -> list[str]:
    """Both processes started again at once (their node lost). Each asks the other its role,
    then, in a later step, decides on the answer, which may be stale by then: `order` says
    which of the two takes each step (after it, each in turn). Returns the roles at the end."""
    roles = [DECIDING, DECIDING]
    answers: list[str | None | bool] = [False, False]  # the answer each holds (False: none yet)
    steps = [*order, *([0, 1] * 50)]
    for me in steps:
        if DECIDING not in roles:
            break
        if roles[me] != DECIDING:
            continue
        if answers[me] is False:  # ask: the answer is the other's role now
            answers[me] = roles[1 - me]
            continue
        answer, answers[me] = answers[me], False
        decided = role_after_restart(me, answer)  # type: ignore[arg-type]
        if decided is not None:
            roles[me] = decided
    return roles


def test_two_started_again_together_end_with_exactly_one_holding_in_any_order() -> None:
    rng = random.Random(11)
    orders = [list(p) for n in range(1, 6) for p in itertools.product((0, 1), repeat=n)]
    orders += [[rng.choice((0, 1)) for _ in range(rng.randint(1, 30))] for _ in range(300)]
    for order in orders:
        roles = _decide_together(order)
        assert sorted(roles) == [HOLDING, STANDING_BY], (order, roles)

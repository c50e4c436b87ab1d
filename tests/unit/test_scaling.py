"""The Delivery autoscaling policy adds the held LL-HLS requests (which skip Serve's count) to
Serve's ongoing requests, and keeps Serve's rule otherwise."""

from __future__ import annotations

import pytest
from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from deployments.scaling import HELD_METRIC, live_aware_policy

DEPLOYMENT = DeploymentID(name="Delivery", app_name="orbitcast")


def context(replicas: int, serve_requests: float, held: list[float], target: float = 256) -> AutoscalingContext:
    ids = [ReplicaID(f"r{i}", DEPLOYMENT) for i in range(replicas)]
    return AutoscalingContext(
        deployment_id=DEPLOYMENT, deployment_name="Delivery", app_name="orbitcast",
        current_num_replicas=replicas, target_num_replicas=replicas, running_replicas=ids,
        total_num_requests=serve_requests, total_queued_requests=0.0,
        aggregated_metrics={HELD_METRIC: dict(zip(ids, held))}, raw_metrics={},
        capacity_adjusted_min_replicas=1, capacity_adjusted_max_replicas=4, policy_state={},
        last_scale_up_time=None, last_scale_down_time=None, current_time=0.0,
        config=AutoscalingConfig(min_replicas=1, max_replicas=4, target_ongoing_requests=target),
    )


def test_a_thousand_held_viewers_on_one_replica_ask_for_four() -> None:
    desired, _ = live_aware_policy(context(1, serve_requests=24, held=[1000]))
    assert desired == pytest.approx(1024 / 256)


def test_held_requests_on_every_replica_count() -> None:
    desired, _ = live_aware_policy(context(2, serve_requests=0, held=[300, 212]))
    assert desired == pytest.approx(2.0)


def test_without_held_requests_it_is_serves_rule() -> None:
    desired, _ = live_aware_policy(context(2, serve_requests=128, held=[0, 0]))
    assert desired == pytest.approx(0.5)


def test_no_report_yet_counts_as_nothing_held() -> None:
    ctx = context(1, serve_requests=512, held=[])
    assert live_aware_policy(ctx)[0] == pytest.approx(2.0)

"""The Delivery deployment's autoscaling policy: Serve's own rule (ongoing requests over
`target_ongoing_requests`), counting the held LL-HLS requests that Serve does not see.

Requests under /live/ are answered ahead of Serve's request wrapper
(`orbitcast/delivery/fast_path.py`), so Serve's count of ongoing requests misses them; each
replica reports how many it holds (`Delivery.record_autoscaling_stats`), and this policy adds
them back. A low-latency viewer holds about one request at all times, so this scales with
viewers as Serve's count did. Bounds, delays and smoothing stay Serve's (it wraps the policy).
"""

from __future__ import annotations

from ray.serve.autoscaling_policy import replica_queue_length_autoscaling_policy
from ray.serve.config import AutoscalingContext

HELD_METRIC = "orbitcast_live_held"
POLICY = "deployments.scaling:live_aware_policy"
# Serve health-checks each replica this often; a killed replica is replaced only once a check
# fails (its check_health is a flag read: a check a second costs nothing).
DEATH_NOTICED_S = 1.0


def live_aware_policy(ctx: AutoscalingContext) -> tuple[float, dict]:
    if ctx.current_num_replicas == 0:
        return replica_queue_length_autoscaling_policy(ctx)  # cold start: Serve's rule
    held = sum((ctx.aggregated_metrics or {}).get(HELD_METRIC, {}).values())
    return (ctx.total_num_requests + held) / ctx.config.get_target_ongoing_requests(), ctx.policy_state

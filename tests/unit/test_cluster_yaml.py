"""cluster.yaml is a real `ray up` configuration: Ray's own validation accepts it."""

from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_ray_validates_cluster_yaml():
    config = prepare_config(load())
    validate_config(config)
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert workers and all(t["max_workers"] >= t["min_workers"] >= 0 and t["resources"]["CPU"] > 0 for t in workers)
    assert any("pip install" in c and "orbitcast" in c for c in config["setup_commands"])


def test_ray_validation_catches_a_broken_copy():
    # The check above means something only if Ray's validation rejects a bad file.
    broken = load()
    broken["head_node_type"] = "no-such-type"
    with pytest.raises(ValueError):
        validate_config(prepare_config(broken))


def test_every_node_starts_ray_with_the_serve_ingress_settings():
    from pipelines.local import serve_ingress_env

    config = load()
    needed = set(serve_ingress_env())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert all(f"{name}=" in start for name in needed), (key, start)
        assert "orbitcast-haproxy" in start


def test_every_node_requires_the_token_that_ray_up_copies_from_the_users_machine():
    # README: `ray get-auth-token --generate`, then `ray up`; the job server answers only that token.
    config = load()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert "RAY_AUTH_MODE=token" in start, (key, start)
        # relative store and key folders anchored on the node, not in a job's temporary dir
        assert "ORBITCAST_HOME=$HOME/orbitcast-data" in start, (key, start)
    assert config["file_mounts"].get("/home/ubuntu/.ray/auth_token") == "~/.ray/auth_token"


def test_the_head_notices_a_lost_node_as_the_chaos_test_does() -> None:
    """The GCS's health checks on cluster.yaml's head are those the multi-node chaos test runs
    with (pipelines/local.py NODE_LOSS_ENV)."""
    from pipelines.local import NODE_LOSS_ENV

    head = " ".join(load()["head_start_ray_commands"])
    for key, value in NODE_LOSS_ENV.items():
        assert f"{key}={value}" in head


def test_the_side_ports_lie_outside_the_kernels_range_for_any_free_port(tmp_path) -> None:
    """HAProxy binds its side ports after Ray's processes have bound theirs: ports taken from
    the kernel's range for port 0 could be handed to one of them meanwhile."""
    import socket

    from pipelines.local import PICK_FROM, SIDE_PORTS, ephemeral_low, free_port, local_serve_env

    high = ephemeral_low()
    env = local_serve_env()
    for name in SIDE_PORTS:
        assert PICK_FROM <= int(env[name]) < high, (name, env[name])
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free, as said
    (tmp_path / "range").write_text("40000\t60999\n")
    assert ephemeral_low(str(tmp_path / "range")) == 40000
    assert ephemeral_low(str(tmp_path / "missing")) == 32768

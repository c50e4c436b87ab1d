"""The pieces the clock actors are thin shells around: the /api/clock registry, the choice of
transport, and the skewed local clock used by tests (no Ray here)."""

from __future__ import annotations

import pytest

from orbitcast.clock import ClockConfig, SyncClient
from orbitcast.clock.registry import (ENTRY_KEYS, ClockRegistry, authority_entry, client_entry,
                                      client_reference)
from orbitcast.clock.skew import SkewedSource, local_source
from orbitcast.clock.sync_client import AuthorityReply
from orbitcast.clock.transport import ntp_target


class FakeTime:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_skewed_source_adds_offset_and_drift() -> None:
    base = FakeTime()
    src = SkewedSource(0.25, 200.0, base=base)
    assert src() == pytest.approx(base.t + 0.25, abs=1e-9)
    base.t += 100.0
    assert src() == pytest.approx(base.t + 0.25 + 0.02, abs=1e-9)  # 200 ppm of 100 s
    assert src.skewed and not SkewedSource(base=base).skewed
    assert not isinstance(local_source(), SkewedSource)
    assert isinstance(local_source(0.1, 0.0), SkewedSource)


def synced_client(offset: float = 0.25) -> SyncClient:
    base = FakeTime()
    client = SyncClient.from_config(ClockConfig(), SkewedSource(offset, 0.0, base=base))
    res = client.exchange(lambda t1: AuthorityReply(t2=t1 - offset + 0.001,
                                                    t3=t1 - offset + 0.001, stratum=3))
    assert res.ok
    return client


def test_client_entry_has_every_key_and_says_what_was_injected() -> None:
    client = synced_client()
    e = client_entry("feed:iss", client.status(), client_reference("orbitcast-clock", "ok", "answering"),
                     exchanges=1, skew={"offset_s": 0.25, "drift_ppm": 0.0})
    for key in ENTRY_KEYS:
        assert key in e
    assert e["role"] == "client" and e["state"] == "synced"
    assert e["reference"] == {"kind": "authority", "name": "orbitcast-clock", "state": "ok",
                              "reason": "answering"}
    assert e["last_sync_iso"].endswith("Z") and e["injected_skew"]["offset_s"] == 0.25
    assert e["error_bound_s"] is not None and e["delay_s"] is not None


def test_authority_entry_takes_the_reference_and_server() -> None:
    client = synced_client(0.0)
    core = {"clock": client.status().to_dict(),
            "reference": {"kind": "system", "state": "ok"},
            "ntp_server": {"host": "127.0.0.1", "port": 1123}}
    e = authority_entry("orbitcast-clock", core)
    for key in ENTRY_KEYS:
        assert key in e
    assert e["role"] == "authority" and e["reference"]["kind"] == "system"
    assert e["ntp_server"]["port"] == 1123


def test_registry_marks_stale_then_forgets() -> None:
    reg = ClockRegistry(stale_after_s=5.0, forget_after_s=60.0)
    reg.report({"name": "b", "state": "synced"}, received=100.0)
    reg.report({"name": "a", "state": "synced"}, received=101.0)
    snap = reg.snapshot(103.0)
    assert [e["name"] for e in snap] == ["a", "b"]
    assert snap[1]["reported_age_s"] == pytest.approx(3.0) and not snap[1]["stale"]
    snap = reg.snapshot(105.5)
    assert [e["stale"] for e in snap] == [False, True]
    reg.report({"name": "b", "state": "holdover"}, received=107.0)  # a restarted actor
    assert reg.snapshot(107.0)[1]["state"] == "holdover"
    assert [e["name"] for e in reg.snapshot(161.5)] == ["b"]  # a: gone for > 60 s
    with pytest.raises(ValueError):
        reg.report({"state": "synced"}, received=1.0)


@pytest.mark.parametrize("where,me,expected", [
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": ("127.0.0.1", 1123)}, "n1", ("127.0.0.1", 1123)),
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": ("127.0.0.1", 1123)}, "n2", None),
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": ("0.0.0.0", 1123)}, "n1", ("127.0.0.1", 1123)),
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": ("0.0.0.0", 1123)}, "n2", ("10.0.0.1", 1123)),
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": ("10.0.0.5", 1123)}, "n2", ("10.0.0.5", 1123)),
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": None}, "n1", None),
    ({"node_id": "n1", "node_ip": "10.0.0.1", "ntp": ("127.0.0.1", 0)}, "n1", None),
])
def test_ntp_target_only_where_reachable(where, me, expected) -> None:  # type: ignore[no-untyped-def]
    assert ntp_target(where, me) == expected

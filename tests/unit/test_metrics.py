"""The metrics store, the hub that merges every process's snapshots, and the text a scrape gets,
read back with prometheus_client's own parser."""

from __future__ import annotations

import pickle

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orbitcast.metrics import MetricsHub, MetricStore, render
from orbitcast.metrics.pipeline import EdgeMetrics, PackagerMetrics
from orbitcast.metrics.status import clock_families, feed_families, gateway_families


def parsed(text: bytes) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of an exposition."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def replica_store() -> tuple[MetricStore, object, object, object]:
    store = MetricStore()
    requests = store.counter("t_requests_total", "requests", ("kind", "status"))
    latency = store.histogram("t_latency_seconds", "latency", (0.01, 0.1, 1.0), ("kind",))
    viewers = store.sessions("t_viewers", "viewers", ("feed",), window_s=30)
    return store, requests, latency, viewers


def test_a_process_records_and_renders_exact_values() -> None:
    store, requests, latency, _ = replica_store()
    held = store.gauge("t_held", "held now")
    for _ in range(3):
        requests.inc("part", "200")
    requests.inc("playlist", "404")
    held.set(7)
    for seconds in (0.005, 0.01, 0.05, 2.0):  # 0.01 sits on a bound: le is inclusive
        latency.observe(seconds, "part")
    hub = MetricsHub()
    got = parsed(render(hub.collect("delivery/a", store.snapshot(100.0), 100.0)))
    assert got["t_requests_total"] == {(("kind", "part"), ("status", "200")): 3.0,
                                       (("kind", "playlist"), ("status", "404")): 1.0}
    assert got["t_held"] == {(): 7.0}
    buckets = got["t_latency_seconds_bucket"]
    assert [buckets[(("kind", "part"), ("le", le))] for le in ("0.01", "0.1", "1.0", "+Inf")] == [2, 3, 3, 4]
    assert got["t_latency_seconds_count"][(("kind", "part"),)] == 4
    assert got["t_latency_seconds_sum"][(("kind", "part"),)] == pytest.approx(2.065)


def test_families_without_labels_are_there_from_the_start() -> None:
    store = MetricStore()
    store.counter("t_errors_total", "errors")
    store.histogram("t_wait_seconds", "wait", (1.0,))
    got = parsed(render(MetricsHub().collect("x/1", store.snapshot(0), 0)))
    assert got["t_errors_total"] == {(): 0.0}
    assert got["t_wait_seconds_count"] == {(): 0.0}


def test_labels_must_match_the_family() -> None:
    store = MetricStore()
    counter = store.counter("t_total", "x", ("kind",))
    with pytest.raises(ValueError):
        counter.inc("a", "b")
    with pytest.raises(ValueError):
        store.counter("t_total", "again")
    with pytest.raises(ValueError):
        store.histogram("t_h", "unsorted", (1.0, 0.5))


def test_replicas_are_summed_and_a_viewer_seen_by_two_is_one() -> None:
    hub = MetricsHub()
    for name, sids in (("delivery/a", ["s1", "s2"]), ("delivery/b", ["s2", "s3", "s4"])):
        store, requests, latency, viewers = replica_store()
        requests.inc("part", "200", by=10)
        latency.observe(0.5, "part")
        for sid in sids:
            viewers.seen(sid, 95.0, "iss")
        viewers.seen("old", 50.0, "iss")  # 50 s ago: no longer watching
        hub.report(name, pickle.loads(pickle.dumps(store.snapshot(100.0))), 100.0)
    got = parsed(render(hub.merged(100.0)))
    assert got["t_requests_total"] == {(("kind", "part"), ("status", "200")): 20.0}
    assert got["t_latency_seconds_count"] == {(("kind", "part"),): 2.0}
    assert got["t_viewers"] == {(("feed", "iss"),): 4.0}
    assert got["orbitcast_metrics_sources"] == {(("component", "delivery"),): 2.0}


def test_viewers_leave_after_the_window() -> None:
    store, _, _, viewers = replica_store()
    viewers.seen("s1", 100.0, "iss")
    hub = MetricsHub(ttl_s=1000)
    hub.report("delivery/a", store.snapshot(100.0), 100.0)
    assert parsed(render(hub.merged(129.0)))["t_viewers"] == {(("feed", "iss"),): 1.0}
    assert "t_viewers" not in parsed(render(hub.merged(131.0)))


def test_session_ids_are_bounded() -> None:
    store = MetricStore()
    viewers = store.sessions("t_viewers", "v", ("feed",), max_ids=2)
    for sid in ("a", "b", "c", "d"):
        viewers.seen(sid, 1.0, "iss")
    viewers.seen("a", 2.0, "iss")  # one already tracked is still updated
    assert set(viewers.seen_at) == {"a", "b"} and viewers.overflow == 2 and viewers.seen_at["a"][1] == 2.0


def test_counters_never_fall_when_a_process_goes_or_restarts() -> None:
    hub = MetricsHub(ttl_s=20)
    first, requests, _, _ = replica_store()
    held = first.gauge("t_held", "held")
    requests.inc("part", "200", by=5)
    held.set(3)
    hub.report("delivery/a", first.snapshot(0), 0)
    other, other_requests, _, _ = replica_store()
    other_requests.inc("part", "200", by=1)
    hub.report("delivery/b", other.snapshot(0), 0)
    # b keeps reporting, a goes silent: after the ttl its counters stay, its gauge goes
    hub.report("delivery/b", other.snapshot(25), 25)
    got = parsed(render(hub.merged(25)))
    assert got["t_requests_total"][(("kind", "part"), ("status", "200"))] == 6.0
    assert "t_held" not in got or got["t_held"] == {}
    assert got["orbitcast_metrics_sources"] == {(("component", "delivery"),): 1.0}
    # a was only late: it comes back with the same instance and is not counted twice
    requests.inc("part", "200", by=1)
    hub.report("delivery/a", first.snapshot(26), 26)
    assert parsed(render(hub.merged(26)))["t_requests_total"][(("kind", "part"), ("status", "200"))] == 7.0
    # b restarts (a new instance under the same name, counting from zero): b's old 1 stays
    restarted, restarted_requests, _, _ = replica_store()
    restarted_requests.inc("part", "200", by=2)
    hub.report("delivery/b", restarted.snapshot(27), 27)
    assert parsed(render(hub.merged(27)))["t_requests_total"][(("kind", "part"), ("status", "200"))] == 9.0


def test_retired_instances_are_folded_and_still_counted() -> None:
    hub = MetricsHub(ttl_s=1, max_retired=2)
    for i in range(5):
        store = MetricStore()
        store.counter("t_total", "x").inc(by=10)
        hub.report(f"packager/{i}", store.snapshot(i * 10), i * 10)
    got = parsed(render(hub.merged(100)))
    assert got["t_total"] == {(): 50.0} and len(hub.retired) <= 2


def test_a_family_of_another_shape_is_left_out_of_the_sum() -> None:
    hub = MetricsHub()
    a, b = MetricStore(), MetricStore()
    a.histogram("t_h", "h", (1.0, 2.0)).observe(1.5)
    b.histogram("t_h", "h", (1.0, 5.0)).observe(1.5)
    hub.report("x/a", a.snapshot(0), 0)
    hub.report("x/b", b.snapshot(0), 0)
    assert parsed(render(hub.merged(0)))["t_h_count"] == {(): 1.0}


def test_edge_and_packager_metrics() -> None:
    edge = EdgeMetrics()
    for _ in range(5):
        edge.published("part", "iss", "360p", 20_000, 0.2)
    edge.published("media", "iss", "360p", 100_000, 1.0)
    edge.published("init", "iss", "360p", 900, 0.0)
    edge.arrived("part", 0.15)
    edge.receiver({"accepted": 7, "bad_mac": 1})
    packager = PackagerMetrics("iss")
    packager.sealed("media", 0.02)
    packager.counted({"sent": 12, "refused": 1, "refused_429": 1})
    packager.certified([41, None])
    hub = MetricsHub()
    hub.report("edge/edge", edge.store.snapshot(0), 0)
    hub.report("packager/iss", packager.store.snapshot(0), 0)
    got = parsed(render(hub.merged(0)))
    key = (("feed", "iss"), ("rendition", "360p"))
    assert got["orbitcast_parts_published_total"] == {key: 5.0}
    assert got["orbitcast_segments_published_total"] == {key: 1.0}
    assert got["orbitcast_published_bytes_total"][(("feed", "iss"), ("kind", "part"), ("rendition", "360p"))] == 100_000
    assert got["orbitcast_rendition_bitrate_bps"] == {key: 800_000.0}
    assert got["orbitcast_edge_messages_total"] == {(("result", "accepted"),): 7.0, (("result", "bad_mac"),): 1.0}
    assert got["orbitcast_edge_arrival_lag_seconds_count"] == {(("kind", "part"),): 1.0}
    assert got["orbitcast_seal_seconds_count"] == {(("feed", "iss"), ("kind", "segment")): 1.0}
    assert got["orbitcast_packager_messages_total"] == {(("feed", "iss"), ("result", "refused")): 1.0,
                                                        (("feed", "iss"), ("result", "sent")): 12.0}
    assert got["orbitcast_ledger_leaves"] == {(("feed", "iss"),): 42.0}
    assert got["orbitcast_metrics_sources"] == {(("component", "edge"),): 1.0, (("component", "packager"),): 1.0}


def test_status_documents_become_gauges() -> None:
    feeds = [{"feed": "iss", "state": "live", "latency": 1.25, "slate": False, "reconnects": 2, "retries": 0,
              "renditions": [{"name": "360p"}, {"name": "240p"}],
              "input": {"dates": {"reanchors": 1, "last_reanchor": {"at": 1.0, "media_time": 9.0, "jump_s": 5.2}}}},
             {"feed": "broken", "state": "failed", "latency": None, "renditions": []},
             {"feed": "odd", "state": "hibernating"}]
    gateway = {"queue_depth": 3, "alarm": True, "recipients": {
        "*ORBEDGE": {"queued": 3, "retrying": 1, "oldest_s": 0.4, "dead_letters": 2, "refused_queue_full": 0}}}
    clock = {"authority": {"name": "orbitcast-clock", "role": "authority", "state": "synced", "offset_s": 0.0,
                           "error_bound_s": 0.0001, "delay_s": 0.0, "last_sync_age_s": 0.2, "frequency_ppm": 0.0},
             "actors": [{"name": "feed-iss", "role": "client", "state": "holdover", "offset_s": -0.002,
                         "error_bound_s": None}]}
    got = parsed(render(feed_families(feeds, 0), gateway_families(gateway, 0), clock_families(clock, 0)))
    states = got["orbitcast_feed_input_state"]
    assert states[(("feed", "iss"), ("state", "live"))] == 1 and states[(("feed", "iss"), ("state", "failed"))] == 0
    assert states[(("feed", "broken"), ("state", "failed"))] == 1
    assert states[(("feed", "odd"), ("state", "hibernating"))] == 1  # a state this version does not know
    assert sum(v for k, v in states.items() if ("feed", "iss") in k) == 1
    assert got["orbitcast_feed_publish_lag_seconds"] == {(("feed", "iss"),): 1.25}
    assert got["orbitcast_feed_reconnects_total"][(("feed", "iss"),)] == 2
    assert got["orbitcast_feed_renditions"][(("feed", "iss"),)] == 2
    assert got["orbitcast_feed_date_reanchors_total"] == {(("feed", "iss"),): 1.0}
    assert got["orbitcast_gateway_queue_depth"] == {(("recipient", "*ORBEDGE"),): 3.0}
    assert got["orbitcast_gateway_dead_letters_total"] == {(("recipient", "*ORBEDGE"),): 2.0}
    assert got["orbitcast_gateway_alarm"] == {(): 1.0} and got["orbitcast_gateway_up"] == {(): 1.0}
    authority = (("clock", "orbitcast-clock"), ("role", "authority"))
    assert got["orbitcast_clock_error_bound_seconds"] == {authority: 0.0001}  # the client's is None: absent
    assert got["orbitcast_clock_offset_seconds"][(("clock", "feed-iss"), ("role", "client"))] == -0.002
    assert got["orbitcast_clock_state"][(*authority, ("state", "synced"))] == 1
    # what did not answer says so
    down = parsed(render(gateway_families({"error": "gateway status unavailable"}, 0), clock_families(None, 0)))
    assert down["orbitcast_gateway_up"] == {(): 0.0} and down["orbitcast_clock_up"] == {(): 0.0}
    assert "orbitcast_gateway_queue_depth" not in down

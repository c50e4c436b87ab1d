"""The UDP NTP server against a real client (ntplib), our own UDP client, and the
upstream-NTP reference pointed at our own server, all on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from typing import Iterator

import ntplib
import pytest

from orbitcast.clock import (ClockAuthority, ClockConfig, ClockState, DisciplinedClock,
                             NTPPacket, ReferenceState, SyncClient, UDPAsk)
from orbitcast.clock.ntp_packet import decode
from orbitcast.clock.ntp_server import NTPServer, ServerInfo


def wait_for(cond, timeout: float = 5.0, step: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


@pytest.fixture
def authority() -> Iterator[ClockAuthority]:
    auth = ClockAuthority.from_config(ClockConfig(local_stratum=3, ntp_port=0,
                                                  tick_interval_s=0.1)).start()
    try:
        yield auth
    finally:
        auth.stop()


def test_ntplib_queries_our_server(authority: ClockAuthority) -> None:
    server = authority.ntp_server
    assert server is not None and server.host == "127.0.0.1" and server.port > 0
    client = ntplib.NTPClient()
    for version in (2, 3, 4):  # ntplib sends v2 unless told; v2's header is the same
        r = client.request("127.0.0.1", version=version, port=server.port, timeout=2)
        assert abs(r.offset) < 5e-3
        assert r.stratum == 3
        assert r.leap == 0 and r.mode == 4 and r.version == version
        assert r.ref_id.to_bytes(4, "big") == b"LOCL"  # ntplib shows stratum>1 ids as IPs
        assert r.delay < 0.05
        assert r.root_dispersion < 0.01
    assert wait_for(lambda: server.replies >= 3)  # counted just after the send


def test_server_ignores_junk_and_keeps_serving(authority: ClockAuthority) -> None:
    server = authority.ntp_server
    assert server is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(b"\x00" * 10, server.address)  # too short
        s.sendto(NTPPacket(version=4, mode=4).encode(), server.address)  # a server reply
        with pytest.raises(socket.timeout):
            s.recvfrom(512)
        assert wait_for(lambda: server.malformed >= 1 and server.ignored >= 1)
        req = NTPPacket(version=4, mode=3).with_times(tx_ts=time.time())
        s.sendto(req.encode(), server.address)
        reply = decode(s.recvfrom(512)[0])
    assert reply.mode == 4 and reply.orig_ts == req.tx_ts  # origin echoed exactly
    assert reply.recv_ts <= reply.tx_ts
    assert abs(reply.tx_time - time.time()) < 5e-3


def test_unsynced_server_says_so() -> None:
    with NTPServer(time.time, port=0, info=ServerInfo(stratum=16)) as server:
        r = ntplib.NTPClient().request("127.0.0.1", version=4, port=server.port, timeout=2)
        assert r.leap == 3 and r.stratum == 16
        with UDPAsk("127.0.0.1", server.port, timeout=1.0) as ask:
            client = SyncClient()
            res = client.exchange(ask)
            assert not res.ok and "unsynchronized" in (res.error or "")
    assert not server.running


def test_skewed_client_over_udp_syncs_within_1ms(authority: ClockAuthority) -> None:
    server = authority.ntp_server
    assert server is not None
    t0 = time.time()
    client = SyncClient(DisciplinedClock(lambda: (lambda t: t + 0.25 + 200e-6 * (t - t0))(
        time.time())))
    with UDPAsk("127.0.0.1", server.port, timeout=1.0) as ask:
        for _ in range(12):
            assert client.exchange(ask).ok
            time.sleep(0.02)
    worst = max(abs(client.now() - authority.now()) for _ in range(50))
    assert worst < 1e-3
    st = client.status()
    assert st.state is ClockState.SYNCED
    assert st.error_bound_s is not None and st.error_bound_s < 5e-3


def test_udp_ask_times_out_when_nobody_listens() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but never answering
        client = SyncClient()
        with UDPAsk("127.0.0.1", port, timeout=0.2) as ask:
            res = client.exchange(ask)
    assert not res.ok
    assert client.status().state is ClockState.UNSYNCED  # never synced: not holdover


def test_upstream_ntp_reference_follows_our_server(authority: ClockAuthority) -> None:
    upstream = authority.ntp_server
    assert upstream is not None
    cfg = ClockConfig(reference="ntp", ntp_server=f"127.0.0.1:{upstream.port}",
                      upstream_poll_s=0.1, upstream_queries=4, upstream_timeout_s=0.3,
                      silent_after_s=0.8, tick_interval_s=0.05, holdover_after_s=0.5,
                      ntp_port=0)
    downstream = ClockAuthority.from_config(cfg).start()
    try:
        assert wait_for(lambda: downstream.clock.state is ClockState.SYNCED)
        assert downstream.reference.status().state is ReferenceState.OK
        info = downstream.server_info()
        assert info.stratum == 4  # upstream's 3 + 1
        assert info.ref_id == socket.inet_aton("127.0.0.1")
        assert abs(downstream.now() - authority.now()) < 5e-3
        # A stock client of the downstream sees the chain.
        assert downstream.ntp_server is not None
        r = ntplib.NTPClient().request("127.0.0.1", version=4,
                                       port=downstream.ntp_server.port, timeout=2)
        assert r.stratum == 4 and abs(r.offset) < 5e-3
        assert ntplib.ref_id_to_text(r.ref_id, r.stratum) == "127.0.0.1"

        # Upstream goes away: the reference goes silent, the clock holds over.
        authority.stop()
        assert wait_for(lambda: downstream.reference.status().state is ReferenceState.SILENT,
                        timeout=5.0)
        assert wait_for(lambda: downstream.clock.state is ClockState.HOLDOVER)
        st = downstream.status()
        assert st["reference"]["state"] == "silent"
        assert st["reference"]["counters"]["errors"] >= 1
        # The bound grows at 15 ppm from the last sample. It may shrink first: it includes the
        # correction still being slewed in (at 500 ppm), and under load the last samples' steps
        # outweighed a second of growth (146 us before the stop, 116 us in holdover).
        def grows() -> bool:
            before = downstream.clock.error_bound()
            time.sleep(0.2)
            return downstream.clock.error_bound() > before  # type: ignore[operator]

        assert wait_for(grows, timeout=5.0)
        assert abs(downstream.now() - time.time()) < 5e-3  # still good in holdover
    finally:
        downstream.stop()

"""Which way a stamping clock's exchanges go (`orbitcast.clock.transport.Route`), without Ray:
the actor call and the authority's `where()` are plain functions here, UDP a fake socket."""

from __future__ import annotations

from typing import Any

import pytest

from orbitcast.clock import NTPError, SyncClient
from orbitcast.clock.sync_client import AuthorityReply
from orbitcast.clock.transport import REFRESH_AFTER_FAILURES, Route

AHEAD_S = 0.5  # how far the simulated authority is ahead of the client's clock
ME = "node-a"


def reply(t1: float) -> AuthorityReply:
    return AuthorityReply(t2=t1 + AHEAD_S, t3=t1 + AHEAD_S, stratum=3)


class FakeUDP:
    """An open UDP exchange that answers, or stays silent while `net.udp_up` is False."""

    def __init__(self, net: "Network", host: str, port: int, timeout: float) -> None:
        self.net, self.address, self.timeout = net, (host, port), timeout
        self.closed = False

    def __call__(self, t1: float) -> AuthorityReply:
        assert not self.closed
        self.net.udp_asks.append(self.address)
        if not self.net.udp_up or self.address != self.net.serving:
            raise NTPError(f"no reply from {self.address[0]}:{self.address[1]}")
        return reply(t1)

    def close(self) -> None:
        self.closed = True


class Network:
    """The authority as the route sees it: where it runs, whether it answers the call and
    whether its UDP server's datagrams get through."""

    def __init__(self, node: str = ME, ntp: tuple[str, int] | None = ("127.0.0.1", 1123)) -> None:
        self.node, self.serving = node, ntp
        self.up = True  # answers the call and where()
        self.udp_up = True
        self.calls = 0
        self.wheres = 0
        self.udp_asks: list[tuple[str, int]] = []
        self.opened: list[FakeUDP] = []
        self.refuse_sockets = False

    def call(self, t1: float) -> AuthorityReply:
        self.calls += 1
        if not self.up:
            raise TimeoutError("the authority did not answer")
        return reply(t1)

    def where(self) -> dict[str, Any]:
        self.wheres += 1
        if not self.up:
            raise TimeoutError("the authority did not answer")
        return {"node_id": self.node, "node_ip": "10.0.0.2", "ntp": self.serving}

    def open_udp(self, host: str, port: int, timeout: float) -> FakeUDP:
        if self.refuse_sockets:
            raise OSError("no socket for you")
        sock = FakeUDP(self, host, port, timeout)
        self.opened.append(sock)
        return sock

    def route(self, mode: str) -> Route:
        return Route(mode, call=self.call, where=self.where, my_node_id=ME, timeout_s=0.3,
                     open_udp=self.open_udp)


def test_auto_uses_the_authoritys_udp_server_on_its_node() -> None:
    net = Network()
    route = net.route("auto")
    assert route.locate()
    client = SyncClient()
    assert route.exchange(client).ok
    assert net.udp_asks == [("127.0.0.1", 1123)] and net.calls == 0
    assert route.describe() == "udp 127.0.0.1:1123"
    best = client.clock.filter.best()
    assert best is not None and best.offset == pytest.approx(AHEAD_S, abs=0.01)


def test_auto_uses_the_ray_call_when_the_server_is_out_of_reach() -> None:
    # The authority binds loopback on another node: its datagrams cannot reach us.
    net = Network(node="node-b")
    route = net.route("auto")
    assert route.locate()
    assert route.exchange(SyncClient()).ok
    assert net.calls == 1 and not net.udp_asks and not net.opened
    assert route.describe() == "ray"


def test_auto_uses_the_call_when_no_udp_socket_can_be_opened() -> None:
    net = Network()
    net.refuse_sockets = True
    route = net.route("auto")
    assert route.locate()
    assert route.exchange(SyncClient()).ok and net.calls == 1
    assert route.describe() == "ray"


def test_ray_mode_never_asks_where_and_always_calls() -> None:
    net = Network()
    route = net.route("ray")
    assert route.locate()
    client = SyncClient()
    for _ in range(5):
        assert route.exchange(client).ok
    assert net.calls == 5 and net.wheres == 0 and not net.opened
    assert route.describe() == "ray"


def test_udp_mode_without_a_reachable_server_fails_every_exchange() -> None:
    net = Network(node="node-b")
    route = net.route("udp")
    assert route.locate()
    res = route.exchange(SyncClient())
    assert not res.ok and "no reachable NTP server" in (res.error or "")
    assert net.calls == 0 and route.describe() == "udp (no server found)"


def test_auto_falls_back_to_the_call_for_good_when_only_udp_fails() -> None:
    net = Network()
    route = net.route("auto")
    route.locate()
    client = SyncClient()
    assert route.exchange(client).ok
    net.udp_up = False  # a firewall: datagrams lost, the authority still answers over Ray
    results = [route.exchange(client) for _ in range(REFRESH_AFTER_FAILURES)]
    # Two plain failures; the third asks where() again, retries UDP at once, and when that
    # fails too, gives UDP up and closes its socket.
    assert [r.ok for r in results] == [False] * REFRESH_AFTER_FAILURES
    assert route.udp_failing and route.describe() == "ray"
    assert all(s.closed for s in net.opened)
    assert route.exchange(client).ok and net.calls == 1
    # For good: a later look at where the authority is does not bring UDP back.
    net.udp_up = True
    assert route.locate() and route.describe() == "ray"


def test_udp_mode_never_falls_back_to_the_call() -> None:
    net = Network()
    route = net.route("udp")
    route.locate()
    net.udp_up = False
    client = SyncClient()
    for _ in range(2 * REFRESH_AFTER_FAILURES):
        assert not route.exchange(client).ok
    assert net.calls == 0 and not route.udp_failing
    assert route.describe() == "udp 127.0.0.1:1123"


def test_auto_follows_a_restarted_authority_to_its_new_port() -> None:
    net = Network()
    route = net.route("auto")
    route.locate()
    client = SyncClient()
    assert route.exchange(client).ok
    net.serving = ("127.0.0.1", 2246)  # restarted, serving on another port
    results = [route.exchange(client) for _ in range(REFRESH_AFTER_FAILURES)]
    # The third failure looks again, finds the new port and retries there at once.
    assert [r.ok for r in results] == [False] * (REFRESH_AFTER_FAILURES - 1) + [True]
    assert route.describe() == "udp 127.0.0.1:2246" and not route.udp_failing
    assert net.opened[0].closed and not net.opened[-1].closed
    assert route.consecutive_failures == 0 and net.calls == 0


def test_auto_keeps_udp_while_the_authority_is_away_altogether() -> None:
    # Dead or restarting: neither where() nor UDP answers. That is not a UDP problem, so the
    # route must not give UDP up; it holds over until the authority is back.
    net = Network()
    route = net.route("auto")
    route.locate()
    client = SyncClient()
    assert route.exchange(client).ok
    net.up = net.udp_up = False
    for _ in range(2 * REFRESH_AFTER_FAILURES):
        assert not route.exchange(client).ok
    assert not route.udp_failing and route.describe() == "udp 127.0.0.1:1123"
    net.up = net.udp_up = True
    assert route.exchange(client).ok and net.calls == 0


def test_route_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="auto, udp or ray"):
        Network().route("tcp")


# -- where the authority's server listens (clock.ntp_host) ---------------------------------------

def test_a_job_on_a_cluster_binds_the_node_address_which_every_node_reaches() -> None:
    from orbitcast.clock.config import ntp_bind_host
    from orbitcast.clock.transport import ntp_target

    node_ip = "10.0.3.7"
    assert ntp_bind_host("auto", node_ip, on_cluster=True) == node_ip
    host = ntp_bind_host("node", node_ip, on_cluster=False)  # as the authority's actor settles it
    assert host == node_ip
    where = {"node_id": "head", "node_ip": node_ip, "ntp": (host, 1123)}
    # a stamping actor on another node gets the UDP server, not the Ray call
    assert ntp_target(where, "worker-1") == (node_ip, 1123)
    assert ntp_target(where, "head") == (node_ip, 1123)


def test_a_pipeline_started_here_keeps_its_server_on_loopback() -> None:
    from orbitcast.clock.config import ntp_bind_host
    from orbitcast.clock.transport import ntp_target

    host = ntp_bind_host("auto", "10.0.3.7", on_cluster=False)
    assert host == "127.0.0.1"
    where = {"node_id": "head", "node_ip": "10.0.3.7", "ntp": (host, 1123)}
    assert ntp_target(where, "head") == ("127.0.0.1", 1123)
    assert ntp_target(where, "worker-1") is None  # out of reach: the Ray call


@pytest.mark.parametrize("setting", ["0.0.0.0", "192.0.2.9", "127.0.0.1"])
def test_an_address_given_is_bound_as_given(setting: str) -> None:
    from orbitcast.clock.config import ntp_bind_host

    assert ntp_bind_host(setting, "10.0.3.7", on_cluster=True) == setting

"""Which way a stamping actor exchanges timestamps with the authority.

Two transports carry the same four-timestamp exchange:

- UDP NTP to the authority's server: measured on a loaded 2-core host, the least-delay
  samples of a loopback exchange sit within ~20 us of the truth (delay ~300 us);
- a Ray actor call: always available, but its request and reply paths differ (task
  submission vs object return), a systematic asymmetry of ~300 us with 2-4 ms delays.

So a client uses UDP when it can reach the server and the Ray call otherwise (the authority
on another node while it binds loopback, or a firewall in the way). `Route` makes that
choice, and changes it when the authority moves or UDP stops answering; it knows nothing of
Ray: the actor hands it the call and the authority's `where()` as plain functions.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Mapping, Protocol

from .ntp_client import NTPError, UDPAsk
from .sync_client import Ask, AskResult, ExchangeResult, SyncClient

Mode = Literal["auto", "udp", "ray"]
MODES: tuple[str, ...] = ("auto", "udp", "ray")
# Consecutive failures before a client asks the authority where it is again.
REFRESH_AFTER_FAILURES = 3


def check_mode(mode: str) -> str:
    """`mode` if it names a transport; ValueError otherwise."""
    if mode not in MODES:
        raise ValueError(f"transport must be auto, udp or ray, not {mode!r}")
    return mode

LOOPBACK = ("localhost", "::1")
WILDCARD = ("", "0.0.0.0", "::")


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def ntp_target(where: Mapping[str, Any], my_node_id: str | None) -> tuple[str, int] | None:
    """The address to send NTP queries to, from the authority's `where()` answer
    ({"node_id", "node_ip", "ntp": (bind host, port) or None}); None: use the Ray call."""
    ntp = where.get("ntp")
    if not ntp:
        return None
    host, port = str(ntp[0]), int(ntp[1])
    if port <= 0:
        return None
    same_node = my_node_id is not None and my_node_id == where.get("node_id")
    if _is_loopback(host):
        return (host, port) if same_node else None
    if host in WILDCARD:
        if same_node:
            return ("127.0.0.1", port)
        ip = where.get("node_ip")
        return (str(ip), port) if ip else None
    return host, port


class UDPExchange(Protocol):
    """An open UDP NTP exchange to one address (`UDPAsk`; a fake in tests)."""

    address: tuple[str, int]

    def __call__(self, t1: float) -> AskResult: ...

    def close(self) -> None: ...


class Route:
    """Which way one client's exchanges go, and when that changes.

    `mode`: "ray" always uses `call`; "udp" only the authority's NTP server (none reachable
    is a failed exchange); "auto" the server when `ntp_target` finds it reachable, `call`
    otherwise. `where()` is the authority's answer to where it runs and serves NTP; `call`
    and `where` raise (or time out) when the authority is away.

    After `refresh_after_failures` failed exchanges in a row it asks `where()` again (a
    restarted authority may run elsewhere, on another port) and, if that gives a UDP server,
    tries it at once. If the authority answers `where()` but its UDP server still does not
    answer, UDP is what is broken (a firewall): "auto" falls back to `call` for good.
    """

    def __init__(self, mode: str, *, call: Ask, where: Callable[[], Mapping[str, Any]],
                 my_node_id: str | None, timeout_s: float,
                 open_udp: Callable[[str, int, float], UDPExchange] = UDPAsk,
                 refresh_after_failures: int = REFRESH_AFTER_FAILURES) -> None:
        self.mode = check_mode(mode)
        self._call = call
        self._where = where
        self.my_node_id = my_node_id
        self.timeout_s = timeout_s
        self._open_udp = open_udp
        self.refresh_after_failures = refresh_after_failures
        self._udp: UDPExchange | None = None
        self.udp_failing = False
        self.consecutive_failures = 0

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return None if self._udp is None else self._udp.address

    def describe(self) -> str:
        """What /api/clock shows as the client's `transport`."""
        if self._udp is not None:
            return f"udp {self._udp.address[0]}:{self._udp.address[1]}"
        return "udp (no server found)" if self.mode == "udp" else "ray"

    def locate(self) -> bool:
        """Ask the authority where it serves NTP and pick the transport; False if it did
        not answer (the current choice is kept)."""
        if self.mode == "ray":
            return True
        try:
            where = self._where()
        except Exception:  # noqa: BLE001 - away: keep what we have, try again later
            return False
        if self.mode == "auto" and self.udp_failing:
            self._use(None)  # the authority answers while UDP alone fails: the call
        else:
            self._use(ntp_target(where, self.my_node_id))
        return True

    def _use(self, target: tuple[str, int] | None) -> None:
        if self._udp is not None and self._udp.address != target:
            self.close()
        if target is not None and self._udp is None:
            try:
                self._udp = self._open_udp(target[0], target[1], self.timeout_s)
            except OSError:
                self._udp = None

    def ask(self, t1: float) -> AskResult:
        # A timeout is how a restarting authority shows up (calls wait for it, datagrams go
        # unanswered); an exception is how a dead one does. SyncClient turns both into
        # holdover.
        if self._udp is not None:
            return self._udp(t1)
        if self.mode == "udp":
            raise NTPError("no reachable NTP server on the authority")
        return self._call(t1)

    def exchange(self, client: SyncClient) -> ExchangeResult:
        """One exchange of `client` along this route, re-routing after repeated failures."""
        res = client.exchange(self.ask)
        if res.ok:
            self.consecutive_failures = 0
            return res
        self.consecutive_failures += 1
        if (self.consecutive_failures % self.refresh_after_failures == 0 and self.locate()
                and self._udp is not None):
            retry = client.exchange(self.ask)
            if retry.ok:
                self.consecutive_failures = 0
                return retry
            if self.mode == "auto":
                self.udp_failing = True
                self._use(None)
        return res

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None

"""Which way a stamping actor exchanges timestamps with the authority.

Two transports carry the same four-timestamp exchange:

- UDP NTP to the authority's server: measured on a loaded 2-core host, the least-delay
  samples of a loopback exchange sit within ~20 us of the truth (delay ~300 us);
- a Ray actor call: always available, but its request and reply paths differ (task
  submission vs object return), a systematic asymmetry of ~300 us with 2-4 ms delays.

So a client uses UDP when it can reach the server and the Ray call otherwise (the authority
on another node while it binds loopback, or a firewall in the way).
"""

from __future__ import annotations

from typing import Any, Mapping

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

"""Whether a local port is taken, as the kernel lists it in /proc/net (Linux).

For whoever must wait until a receiver listens before it sends (a caller to an SRT or TCP
listener, a UDP sender): looking at /proc never takes the port from the process that waits on
it, as a trial bind or connect could.
"""

from __future__ import annotations

from pathlib import Path

TCP_LISTEN = "0A"  # the state column of a listening TCP socket


def bound(port: int, proto: str) -> bool:
    """Whether a socket on this machine is bound to `port` (`proto` "udp") or listening on it
    ("tcp"), over IPv4 or IPv6."""
    for name in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and (proto == "udp" or fields[3] == TCP_LISTEN):
                return True
    return False

"""NTP over UDP as a transport for the exchange: an `ask` callable for SyncClient.

Used by the upstream-NTP reference of the authority and by any client that syncs to the
authority's UDP server instead of a Ray actor call (the benchmark does).
"""

from __future__ import annotations

import socket
import time

from .ntp_math import unix_to_ntp
from .ntp_packet import LEAP_ALARM, MODE_CLIENT, MODE_SERVER, NTPPacket, decode
from .sync_client import AuthorityReply


class NTPError(RuntimeError):
    """The server did not answer, or answered something we must not use."""


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """'host', 'host:port' or '[v6]:port' -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    if text.count(":") == 1:
        host, port_s = text.split(":")
        return host, int(port_s)
    return text, default_port


class UDPAsk:
    """`ask(t1) -> AuthorityReply` over one NTP mode-3/mode-4 exchange.

    The socket is opened once and connected, so nothing but the datagram itself sits
    between t1 and t4 (socket setup inside the window would bias the offset).
    """

    def __init__(self, host: str, port: int = 123, timeout: float = 1.0,
                 version: int = 4) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.version = version
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.connect(self.address)
        self.last_packet: NTPPacket | None = None

    def __call__(self, t1: float) -> AuthorityReply:
        tx = unix_to_ntp(t1)
        req = NTPPacket(version=self.version, mode=MODE_CLIENT, tx_ts=tx)
        # Drop any late reply to an earlier (timed-out) query still sitting in the buffer.
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(512)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass  # e.g. ECONNREFUSED from an earlier send: consumed, go on
        self._sock.settimeout(self.timeout)
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.send(req.encode())
            while True:
                self._sock.settimeout(max(1e-3, deadline - time.monotonic()))
                data = self._sock.recv(512)
                try:
                    p = decode(data, versions=(3, 4))
                except ValueError:
                    continue  # junk on our port is not an answer
                if p.mode == MODE_SERVER and p.orig_ts == tx:
                    break
        except socket.timeout as exc:
            raise NTPError(f"no reply from {self.address[0]}:{self.address[1]}") from exc
        except OSError as exc:
            raise NTPError(f"{self.address[0]}:{self.address[1]}: {exc}") from exc
        if p.stratum == 0:
            raise NTPError(f"kiss-o'-death {p.ref_id!r}")
        if p.leap == LEAP_ALARM:
            raise NTPError("server is unsynchronized")
        if p.recv_ts == 0 or p.tx_ts == 0:
            raise NTPError("server left receive/transmit timestamps empty")
        self.last_packet = p
        return AuthorityReply(t2=p.recv_time, t3=p.tx_time, stratum=p.stratum, leap=p.leap,
                              root_delay=p.root_delay_s, root_dispersion=p.root_dispersion_s,
                              ref_id=p.ref_id)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "UDPAsk":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

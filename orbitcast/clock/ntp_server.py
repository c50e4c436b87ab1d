"""An NTP server on UDP, so that any host (in the cluster or outside it) can sync to the
clock authority with a stock client (chrony, ntpd, ntplib).

One thread and one socket: an NTP answer costs microseconds of Python, far below what a
cluster of hosts polling every 16-1024 s asks for, and a thread is the simplest thing that
starts and stops cleanly inside an actor.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, replace
from typing import Callable

from .background import Background
from .ntp_math import seconds_to_short, unix_to_ntp
from .ntp_packet import (LEAP_ALARM, LEAP_NONE, MODE_CLIENT, MODE_SERVER, STRATUM_UNSYNC,
                         NTPPacket, decode)

DEFAULT_PORT = 1123  # an unprivileged stand-in for 123, so that no root is needed


@dataclass(frozen=True)
class ServerInfo:
    """What the server advertises about its clock, read at every reply."""

    stratum: int = 10
    ref_id: bytes = b"LOCL"
    leap: int = LEAP_NONE
    root_delay: float = 0.0
    root_dispersion: float = 0.0
    ref_time: float | None = None  # when the clock was last set (Unix seconds)
    precision: int = -20


class NTPServer:
    # Version 2 replies are answered too: its header is the same 48 bytes, and ntplib, the
    # stock Python client, sends version 2 unless told otherwise.
    ACCEPTED_VERSIONS = (2, 3, 4)

    def __init__(self, time_source: Callable[[], float], host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT, info: Callable[[], ServerInfo] | ServerInfo | None = None
                 ) -> None:
        self._time = time_source
        self.host = host
        self._port = port
        if info is None:
            info = ServerInfo()
        self._info: Callable[[], ServerInfo] = info if callable(info) else (lambda: info)
        self._sock: socket.socket | None = None
        self._serving: Background | None = None
        self.requests = 0
        self.replies = 0
        self.malformed = 0
        self.ignored = 0

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port=0)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self._port

    @property
    def running(self) -> bool:
        return self._serving is not None and self._serving.running

    def start(self) -> "NTPServer":
        if self.running:
            return self
        family = socket.getaddrinfo(self.host, self._port, type=socket.SOCK_DGRAM)[0][0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._port))
        except OSError:
            sock.close()
            raise
        # A short timeout lets the loop notice stop() without any wake-up trick.
        sock.settimeout(0.1)
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._serving = Background(f"ntp-server:{self._port}", lambda stop: self._serve(sock, stop))
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "NTPServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, sock: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(1024)
            except socket.timeout:
                continue
            except OSError:
                if stop.is_set():
                    return
                continue
            t2 = self._time()  # receive timestamp: as close to the datagram as Python gets
            self.requests += 1
            try:
                reply = self.answer(data, t2)
            except ValueError:
                self.malformed += 1
                continue
            if reply is None:
                self.ignored += 1
                continue
            # Counted before it leaves: a client that holds the reply and then reads the
            # server's status must find it counted (the thread may be preempted after sendto).
            self.replies += 1
            try:
                sock.sendto(reply, addr)
            except OSError:
                self.replies -= 1
                continue

    def answer(self, data: bytes, t2: float) -> bytes | None:
        """Build the mode-4 reply to one datagram received at `t2` (None: not for us).

        Public so that the reply logic is testable without a socket.
        """
        req = decode(data, versions=self.ACCEPTED_VERSIONS)
        if req.mode != MODE_CLIENT:
            return None  # we serve clients only: no symmetric peers, no broadcast
        info = self._info()
        unsynced = info.leap == LEAP_ALARM or info.stratum >= STRATUM_UNSYNC
        reply = NTPPacket(
            leap=LEAP_ALARM if unsynced else info.leap,
            version=req.version,
            mode=MODE_SERVER,
            stratum=STRATUM_UNSYNC if unsynced else info.stratum,
            poll=req.poll,
            precision=info.precision,
            root_delay=seconds_to_short(info.root_delay),
            root_dispersion=seconds_to_short(info.root_dispersion),
            ref_id=info.ref_id,
            ref_ts=0 if info.ref_time is None else unix_to_ntp(info.ref_time),
            orig_ts=req.tx_ts,  # echoed bit for bit: the client matches on it
            recv_ts=unix_to_ntp(t2),
            tx_ts=0,
        )
        # Transmit timestamp last, just before the bytes leave.
        return replace(reply, tx_ts=unix_to_ntp(self._time())).encode()

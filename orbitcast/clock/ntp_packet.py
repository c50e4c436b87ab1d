"""NTP packet codec (RFC 5905 / RFC 1305 header, 48 bytes).

Timestamps stay as raw 64-bit integers in the packet so that a server echoes the client's
transmit timestamp bit for bit as the origin (clients match replies on it); helpers convert
to and from Unix floats.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from .ntp_math import ntp_to_unix, seconds_to_short, short_to_seconds, unix_to_ntp

HEADER = struct.Struct("!BBbbII4sQQQQ")
assert HEADER.size == 48

MODE_CLIENT = 3
MODE_SERVER = 4
LEAP_NONE = 0
LEAP_ALARM = 3  # clock not synchronized
STRATUM_UNSYNC = 16


@dataclass(frozen=True)
class NTPPacket:
    leap: int = LEAP_NONE
    version: int = 4
    mode: int = MODE_CLIENT
    stratum: int = 0
    poll: int = 0
    precision: int = -20  # log2 seconds: 2^-20 s is about a microsecond
    root_delay: int = 0  # NTP short format (16.16 seconds)
    root_dispersion: int = 0
    ref_id: bytes = b"\0\0\0\0"
    ref_ts: int = 0
    orig_ts: int = 0
    recv_ts: int = 0
    tx_ts: int = 0

    def encode(self) -> bytes:
        _check(self)
        first = (self.leap << 6) | (self.version << 3) | self.mode
        return HEADER.pack(first, self.stratum, self.poll, self.precision, self.root_delay,
                           self.root_dispersion, self.ref_id, self.ref_ts, self.orig_ts,
                           self.recv_ts, self.tx_ts)

    # Convenience views in seconds ------------------------------------------------------
    @property
    def root_delay_s(self) -> float:
        return short_to_seconds(self.root_delay)

    @property
    def root_dispersion_s(self) -> float:
        return short_to_seconds(self.root_dispersion)

    @property
    def tx_time(self) -> float:
        return ntp_to_unix(self.tx_ts)

    @property
    def recv_time(self) -> float:
        return ntp_to_unix(self.recv_ts)

    @property
    def orig_time(self) -> float:
        return ntp_to_unix(self.orig_ts)

    def with_times(self, **unix_times: float) -> "NTPPacket":
        """Copy with timestamps given in Unix seconds, e.g. with_times(tx_ts=time.time())."""
        return replace(self, **{k: unix_to_ntp(v) for k, v in unix_times.items()})

    @staticmethod
    def seconds(s: float) -> int:
        """Seconds -> short format, for root_delay / root_dispersion fields."""
        return seconds_to_short(s)


def _check(p: NTPPacket, versions: tuple[int, ...] = (1, 2, 3, 4)) -> None:
    if not 0 <= p.leap <= 3:
        raise ValueError(f"leap indicator {p.leap} out of range")
    if p.version not in versions:
        raise ValueError(f"unsupported NTP version {p.version}")
    if not 1 <= p.mode <= 7:
        raise ValueError(f"mode {p.mode} is reserved or out of range")
    if not 0 <= p.stratum <= STRATUM_UNSYNC:
        raise ValueError(f"stratum {p.stratum} is reserved")
    if not -128 <= p.poll <= 127 or not -128 <= p.precision <= 127:
        raise ValueError("poll and precision are signed 8-bit")
    if not isinstance(p.ref_id, bytes) or len(p.ref_id) != 4:
        raise ValueError("reference id must be 4 bytes")
    for name in ("root_delay", "root_dispersion"):
        if not 0 <= getattr(p, name) <= 0xFFFF_FFFF:
            raise ValueError(f"{name} out of 32-bit range")
    for name in ("ref_ts", "orig_ts", "recv_ts", "tx_ts"):
        if not 0 <= getattr(p, name) < (1 << 64):
            raise ValueError(f"{name} out of 64-bit range")


def decode(data: bytes, versions: tuple[int, ...] = (3, 4)) -> NTPPacket:
    """Strict decode of one datagram.

    Accepts exactly the 48-byte header, optionally followed by NTPv4 extension fields or a
    MAC (a whole number of 32-bit words, ignored). Anything else raises ValueError:
    a server must never let a malformed datagram reach its answer path.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("NTP packet must be bytes")
    data = bytes(data)
    if len(data) < HEADER.size:
        raise ValueError(f"NTP packet too short: {len(data)} bytes")
    extra = len(data) - HEADER.size
    if extra % 4:
        raise ValueError(f"trailing {extra} bytes are not whole 32-bit words")
    if extra and data[0] >> 3 & 7 != 4:
        raise ValueError("only NTPv4 may carry extension fields or a MAC")
    (first, stratum, poll, precision, rdelay, rdisp, ref_id,
     ref_ts, orig_ts, recv_ts, tx_ts) = HEADER.unpack_from(data)
    p = NTPPacket(leap=first >> 6, version=(first >> 3) & 7, mode=first & 7,
                  stratum=stratum, poll=poll, precision=precision, root_delay=rdelay,
                  root_dispersion=rdisp, ref_id=ref_id, ref_ts=ref_ts, orig_ts=orig_ts,
                  recv_ts=recv_ts, tx_ts=tx_ts)
    _check(p, versions)
    return p

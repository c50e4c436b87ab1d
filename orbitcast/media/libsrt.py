"""The few calls of libsrt (Haivision's SRT library, 1.4 or later) that a receiver needs, through
ctypes: Debian's ffmpeg links the same library (`libsrt1.5-gnutls`), so no package is added.

Why not let ffmpeg receive SRT, as it did: ffmpeg's libsrt protocol keeps the socket to itself,
so neither the sender's address (`srt_accept` returns it) nor SRT's own counters (`srt_bstats`:
packets lost, dropped as too late, retransmitted, the round trip) could reach `/api/feeds`.

ctypes calls release the GIL, so a thread blocked in `srt_accept` or `srt_recvmsg` holds up no
other; `srt_close` from another thread wakes it with an error.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import socket
import struct
import threading
import time
from collections import deque

log = logging.getLogger(__name__)

SRTSOCKET = ctypes.c_int
INVALID_SOCK = -1
ERROR = -1

# enum SRT_SOCKOPT (srt.h); the values have not moved since 1.3
SRTO_RCVSYN = 2
SRTO_RCVBUF = 6
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_TLPKTDROP = 31
SRTO_NAKREPORT = 33
SRTO_CONNTIMEO = 36
SRTO_LOSSMAXTTL = 42
SRTO_RCVLATENCY = 43
SRTO_PEERLATENCY = 44
SRTO_STREAMID = 46
SRTO_PAYLOADSIZE = 49
SRTO_ENFORCEDENCRYPTION = 53

# enum SRT_REJECT_REASON
REJECT_REASONS = {
    10: "wrong passphrase",  # SRT_REJ_BADSECRET
    11: "a passphrase is set on one side only",  # SRT_REJ_UNSECURE
    16: "no listener answered",  # SRT_REJ_TIMEOUT
}
# SRT_ERRNO (major * 1000 + minor)
ECONNREJ = 1002
EBINDCONFLICT = 5015
LOG_CRIT = 2  # syslog levels, as libsrt's
LOG_WARNING = 4

LOG_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                               ctypes.c_char_p, ctypes.c_char_p)


class TraceBStats(ctypes.Structure):
    """struct CBytePerfMon (srt.h, 1.5): the fields up to the 1.5 additions are 1.4's as well, so
    reading only those is right for both (1.4 writes less of the struct, never more)."""

    _fields_ = [
        ("msTimeStamp", ctypes.c_int64), ("pktSentTotal", ctypes.c_int64), ("pktRecvTotal", ctypes.c_int64),
        ("pktSndLossTotal", ctypes.c_int), ("pktRcvLossTotal", ctypes.c_int), ("pktRetransTotal", ctypes.c_int),
        ("pktSentACKTotal", ctypes.c_int), ("pktRecvACKTotal", ctypes.c_int), ("pktSentNAKTotal", ctypes.c_int),
        ("pktRecvNAKTotal", ctypes.c_int), ("usSndDurationTotal", ctypes.c_int64),
        ("pktSndDropTotal", ctypes.c_int), ("pktRcvDropTotal", ctypes.c_int), ("pktRcvUndecryptTotal", ctypes.c_int),
        ("byteSentTotal", ctypes.c_uint64), ("byteRecvTotal", ctypes.c_uint64), ("byteRcvLossTotal", ctypes.c_uint64),
        ("byteRetransTotal", ctypes.c_uint64), ("byteSndDropTotal", ctypes.c_uint64),
        ("byteRcvDropTotal", ctypes.c_uint64), ("byteRcvUndecryptTotal", ctypes.c_uint64),
        ("pktSent", ctypes.c_int64), ("pktRecv", ctypes.c_int64), ("pktSndLoss", ctypes.c_int),
        ("pktRcvLoss", ctypes.c_int), ("pktRetrans", ctypes.c_int), ("pktRcvRetrans", ctypes.c_int),
        ("pktSentACK", ctypes.c_int), ("pktRecvACK", ctypes.c_int), ("pktSentNAK", ctypes.c_int),
        ("pktRecvNAK", ctypes.c_int), ("mbpsSendRate", ctypes.c_double), ("mbpsRecvRate", ctypes.c_double),
        ("usSndDuration", ctypes.c_int64), ("pktReorderDistance", ctypes.c_int),
        ("pktRcvAvgBelatedTime", ctypes.c_double), ("pktRcvBelated", ctypes.c_int64),
        ("pktSndDrop", ctypes.c_int), ("pktRcvDrop", ctypes.c_int), ("pktRcvUndecrypt", ctypes.c_int),
        ("byteSent", ctypes.c_uint64), ("byteRecv", ctypes.c_uint64), ("byteRcvLoss", ctypes.c_uint64),
        ("byteRetrans", ctypes.c_uint64), ("byteSndDrop", ctypes.c_uint64), ("byteRcvDrop", ctypes.c_uint64),
        ("byteRcvUndecrypt", ctypes.c_uint64),
        ("usPktSndPeriod", ctypes.c_double), ("pktFlowWindow", ctypes.c_int), ("pktCongestionWindow", ctypes.c_int),
        ("pktFlightSize", ctypes.c_int), ("msRTT", ctypes.c_double), ("mbpsBandwidth", ctypes.c_double),
        ("byteAvailSndBuf", ctypes.c_int), ("byteAvailRcvBuf", ctypes.c_int), ("mbpsMaxBW", ctypes.c_double),
        ("byteMSS", ctypes.c_int), ("pktSndBuf", ctypes.c_int), ("byteSndBuf", ctypes.c_int),
        ("msSndBuf", ctypes.c_int), ("msSndTsbPdDelay", ctypes.c_int), ("pktRcvBuf", ctypes.c_int),
        ("byteRcvBuf", ctypes.c_int), ("msRcvBuf", ctypes.c_int), ("msRcvTsbPdDelay", ctypes.c_int),
        # the rest of 1.5's struct (filter and unique counters): room for the library to write
        ("_reserved", ctypes.c_byte * 256),
    ]


class SrtUnavailable(Exception):
    """libsrt is not installed; str(err) says what to install."""


class SrtError(Exception):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class _Library:
    """libsrt loaded once per process; its log lines are kept (the last few hundred) so that a
    refusal the library saw while no call of ours failed (a caller with a wrong passphrase
    never reaches `srt_accept`) can still be named."""

    def __init__(self) -> None:
        name = next((n for n in ("srt-gnutls", "srt-openssl", "srt") if ctypes.util.find_library(n)), None)
        if name is None:
            raise SrtUnavailable("SRT needs libsrt (Debian: apt-get install libsrt1.5-gnutls, which ffmpeg brings)")
        lib = self.lib = ctypes.CDLL(ctypes.util.find_library(name))
        lib.srt_startup.restype = ctypes.c_int
        lib.srt_create_socket.restype = SRTSOCKET
        lib.srt_bind.argtypes = [SRTSOCKET, ctypes.c_char_p, ctypes.c_int]
        lib.srt_listen.argtypes = [SRTSOCKET, ctypes.c_int]
        lib.srt_accept.argtypes = [SRTSOCKET, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        lib.srt_accept.restype = SRTSOCKET
        lib.srt_connect.argtypes = [SRTSOCKET, ctypes.c_char_p, ctypes.c_int]
        lib.srt_close.argtypes = [SRTSOCKET]
        lib.srt_getpeername.argtypes = [SRTSOCKET, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        lib.srt_setsockflag.argtypes = [SRTSOCKET, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        lib.srt_recvmsg.argtypes = [SRTSOCKET, ctypes.c_char_p, ctypes.c_int]
        lib.srt_getlasterror.argtypes = [ctypes.POINTER(ctypes.c_int)]
        lib.srt_getlasterror_str.restype = ctypes.c_char_p
        lib.srt_bstats.argtypes = [SRTSOCKET, ctypes.POINTER(TraceBStats), ctypes.c_int]
        lib.srt_getrejectreason.argtypes = [SRTSOCKET]
        lib.srt_setloghandler.argtypes = [ctypes.c_void_p, LOG_HANDLER]
        lib.srt_setloglevel.argtypes = [ctypes.c_int]
        if lib.srt_startup() < 0:
            raise SrtError("libsrt did not start: " + self.last_error()[2])
        self.lines: deque[tuple[float, str]] = deque(maxlen=300)
        self._handler = LOG_HANDLER(self._log)  # kept: libsrt holds only the pointer
        lib.srt_setloglevel(LOG_WARNING)
        lib.srt_setloghandler(None, self._handler)
        atexit.register(self._quiet_at_exit)

    def _quiet_at_exit(self) -> None:
        # libsrt's threads may still log while the interpreter shuts down, when Python can no
        # longer be called: back to libsrt's own writer, and only for what is critical
        self.lib.srt_setloglevel(LOG_CRIT)
        self.lib.srt_setloghandler(None, LOG_HANDLER())

    def _log(self, _opaque: object, level: int, _file: bytes, _line: int, _area: bytes, message: bytes) -> None:
        text = (message or b"").decode("utf-8", "replace").strip()
        self.lines.append((time.monotonic(), text))
        # a listener closed under a waiting srt_accept is how a relay stops waiting: not news
        quiet = level > LOG_WARNING or "already closed" in text
        log.log(logging.DEBUG if quiet else logging.WARNING, "libsrt: %s", text)

    def log_since(self, since: float) -> str:
        return "\n".join(text for at, text in list(self.lines) if at >= since)

    def last_error(self) -> tuple[int, int, str]:
        """The calling thread's last SRT error: its code, the system errno behind it, its text."""
        errno_ = ctypes.c_int(0)
        code = self.lib.srt_getlasterror(ctypes.byref(errno_))
        return code, errno_.value, (self.lib.srt_getlasterror_str() or b"").decode("utf-8", "replace")


_lock = threading.Lock()
_library: _Library | None = None


def library() -> _Library:
    global _library
    with _lock:
        if _library is None:
            _library = _Library()
        return _library


# -- socket addresses as struct sockaddr bytes (Linux layout) --------------------------------------
def sockaddr(host: str, port: int) -> bytes:
    """The first address `host` resolves to, as a struct sockaddr_in or sockaddr_in6."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as err:
        raise SrtError(f"cannot resolve {host}: {err.strerror}") from None
    if family == socket.AF_INET:
        return struct.pack("=H", family) + struct.pack("!H", port) + socket.inet_aton(addr[0]) + bytes(8)
    return (struct.pack("=H", family) + struct.pack("!HI", port, addr[2]) + socket.inet_pton(family, addr[0])
            + struct.pack("=I", addr[3]))


def address_text(raw: bytes) -> str | None:
    """"host:port" ("[v6]:port") of a struct sockaddr."""
    if len(raw) < 8:
        return None
    family = struct.unpack("=H", raw[:2])[0]
    port = struct.unpack("!H", raw[2:4])[0]
    if family == socket.AF_INET:
        return f"{socket.inet_ntoa(raw[4:8])}:{port}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        return f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{port}"
    return None

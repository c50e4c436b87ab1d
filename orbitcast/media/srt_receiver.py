"""One SRT session received with libsrt in this process (`libsrt.py`): the relay hands its
bytes to ffmpeg, and `/api/feeds` gets the sender's address and SRT's own counters.

URLs keep the form and units of ffmpeg's libsrt protocol, which received SRT before (so a
config written for it means the same): `latency`, `rcvlatency` and `peerlatency` in
microseconds, `connect_timeout` in milliseconds. An option this receiver does not know is
refused by name rather than ignored.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from . import libsrt

MESSAGE_BYTES = 1500  # a live-mode message is at most 1456 bytes of payload
STATS_EVERY_S = 0.5


def _us_to_ms(value: str) -> int:
    return int(value) // 1000


def _flag(value: str) -> int:
    if value.lower() in ("1", "true", "yes", "on"):
        return 1
    if value.lower() in ("0", "false", "no", "off"):
        return 0
    raise ValueError(value)


# name in the URL -> (socket option, conversion, is a string)
OPTIONS: dict[str, tuple[int, Callable[[str], int | str]]] = {
    "latency": (libsrt.SRTO_LATENCY, _us_to_ms),
    "rcvlatency": (libsrt.SRTO_RCVLATENCY, _us_to_ms),
    "peerlatency": (libsrt.SRTO_PEERLATENCY, _us_to_ms),
    "passphrase": (libsrt.SRTO_PASSPHRASE, str),
    "pbkeylen": (libsrt.SRTO_PBKEYLEN, int),
    "streamid": (libsrt.SRTO_STREAMID, str),
    "srt_streamid": (libsrt.SRTO_STREAMID, str),
    "connect_timeout": (libsrt.SRTO_CONNTIMEO, int),
    "rcvbuf": (libsrt.SRTO_RCVBUF, int),
    "payload_size": (libsrt.SRTO_PAYLOADSIZE, int),
    "tlpktdrop": (libsrt.SRTO_TLPKTDROP, _flag),
    "nakreport": (libsrt.SRTO_NAKREPORT, _flag),
    "lossmaxttl": (libsrt.SRTO_LOSSMAXTTL, int),
    "enforced_encryption": (libsrt.SRTO_ENFORCEDENCRYPTION, _flag),
}
# what ffmpeg's protocol takes that means nothing here: `mode` is read below, `transtype` may
# only say live, and the relay has its own read timeout
IGNORED = ("mode", "transtype", "timeout")


@dataclass
class SrtUrl:
    host: str
    port: int
    listener: bool
    options: list[tuple[str, int, int | str]] = field(default_factory=list)  # (name, option, value)


def parse_srt_url(url: str) -> SrtUrl:
    """The URL's address, mode and socket options; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "srt" or parts.port is None:
        raise ValueError("an SRT URL is srt://host:port?options")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    mode = query.get("mode", "caller")
    if mode not in ("caller", "listener"):
        raise ValueError(f"SRT mode {mode!r} is not supported (caller or listener)")
    if query.get("transtype", "live") != "live":
        raise ValueError("SRT transtype must be live")
    options = []
    for name, value in query.items():
        if name in IGNORED:
            continue
        if name not in OPTIONS:
            raise ValueError(f"unknown SRT option {name!r} (known: {', '.join(sorted(OPTIONS))})")
        opt, convert = OPTIONS[name]
        try:
            options.append((name, opt, convert(value)))
        except ValueError:
            raise ValueError(f"SRT option {name}={value!r} is not valid") from None
    if not parts.hostname and mode == "caller":
        raise ValueError("an SRT caller needs the host to call")
    return SrtUrl(parts.hostname or "0.0.0.0", parts.port, mode == "listener", options)


# Sessions not closed yet. A thread waiting in srt_accept or srt_recvmsg keeps libsrt's own
# teardown (run when the process exits) waiting for ever: closing the sockets first lets it end.
_open_sessions: weakref.WeakSet[SrtSession] = weakref.WeakSet()


def _close_open_sessions() -> None:
    for session in list(_open_sessions):
        session.close()


class SrtSession:
    """Receives one SRT session and hands each message to `sink`.

    `open()` binds (listener) or does nothing yet (caller); `run()` waits for the sender (or
    connects), then receives until the sender leaves, `sink` raises (the reader is gone) or
    `close()` is called from another thread. `failure` says why it stopped when that was not
    the sender leaving; `link()` is what `/api/feeds` shows of the connection.
    """

    def __init__(self, url: str, sink: Callable[[bytes], None]) -> None:
        self.url = parse_srt_url(url)
        self.sink = sink
        self.started = time.monotonic()
        self.failure: str | None = None
        self.ended_by_sender = False
        self.remote_address: str | None = None
        self.connected_at: float | None = None
        self._lib = libsrt.library()
        self._lock = threading.Lock()
        self._closed = False
        self._listen_sock = libsrt.INVALID_SOCK
        self._sock = libsrt.INVALID_SOCK
        self._last_stats: dict | None = None
        if not _open_sessions:
            # registered after libsrt.library()'s own exit hook, so it runs before it: libsrt
            # still logs through our handler while these close
            atexit.unregister(_close_open_sessions)
            atexit.register(_close_open_sessions)
        _open_sessions.add(self)

    # -- setting up ---------------------------------------------------------------------------------
    def _set_options(self, sock: int) -> None:
        lib = self._lib.lib
        for name, opt, value in self.url.options:
            if isinstance(value, str):
                raw = value.encode()
                ok = lib.srt_setsockflag(sock, opt, ctypes.c_char_p(raw), len(raw))
            else:
                box = ctypes.c_int(value)
                ok = lib.srt_setsockflag(sock, opt, ctypes.byref(box), ctypes.sizeof(box))
            if ok == libsrt.ERROR:
                if name == "passphrase":
                    raise libsrt.SrtError("invalid passphrase (10 to 79 characters)")
                raise libsrt.SrtError(f"SRT option {name} refused: {self._lib.last_error()[2]}")

    def open(self) -> None:
        """For a listener: bind and listen now, so a taken port is known at once."""
        if not self.url.listener:
            return
        lib = self._lib.lib
        sock = lib.srt_create_socket()
        if sock == libsrt.INVALID_SOCK:
            raise libsrt.SrtError("no SRT socket: " + self._lib.last_error()[2])
        self._listen_sock = sock
        self._set_options(sock)
        addr = libsrt.sockaddr(self.url.host, self.url.port)
        if lib.srt_bind(sock, addr, len(addr)) == libsrt.ERROR:
            code, sys_errno, text = self._lib.last_error()
            if sys_errno == errno.EADDRINUSE or code == libsrt.EBINDCONFLICT:
                raise libsrt.SrtError(f"port {self.url.port} is already in use")
            raise libsrt.SrtError(f"cannot listen on {self.url.host}:{self.url.port}: {text}")
        if lib.srt_listen(sock, 1) == libsrt.ERROR:
            raise libsrt.SrtError(f"cannot listen on {self.url.host}:{self.url.port}: {self._lib.last_error()[2]}")

    def _accept(self) -> int:
        lib = self._lib.lib
        raw = ctypes.create_string_buffer(128)
        size = ctypes.c_int(len(raw))
        sock = lib.srt_accept(self._listen_sock, raw, ctypes.byref(size))
        if sock == libsrt.INVALID_SOCK:
            raise libsrt.SrtError("" if self._closed else f"accept failed: {self._lib.last_error()[2]}")
        self.remote_address = libsrt.address_text(raw.raw[:size.value])
        # one sender at a time, as ffmpeg's listener: the next one is taken by the next session
        self._close_listener()
        return sock

    def _connect(self) -> int:
        lib = self._lib.lib
        sock = lib.srt_create_socket()
        if sock == libsrt.INVALID_SOCK:
            raise libsrt.SrtError("no SRT socket: " + self._lib.last_error()[2])
        with self._lock:
            self._sock = sock
        self._set_options(sock)
        addr = libsrt.sockaddr(self.url.host, self.url.port)
        if lib.srt_connect(sock, addr, len(addr)) == libsrt.ERROR:
            if self._closed:
                raise libsrt.SrtError("")
            reason = libsrt.REJECT_REASONS.get(lib.srt_getrejectreason(sock))
            where = f"{self.url.host}:{self.url.port}"
            if reason == "no listener answered" or reason is None:
                raise libsrt.SrtError(f"could not connect to {where} (no listener answered)")
            raise libsrt.SrtError(f"the listener refused us: {reason}")
        # libsrt 1.5.1 answers srt_getpeername with no address on a caller's socket: the peer
        # is then the address called
        self.remote_address = self._peer(sock) or libsrt.address_text(addr)
        return sock

    def _peer(self, sock: int) -> str | None:
        raw = ctypes.create_string_buffer(128)
        size = ctypes.c_int(len(raw))
        if self._lib.lib.srt_getpeername(sock, raw, ctypes.byref(size)) == libsrt.ERROR:
            return None
        return libsrt.address_text(raw.raw[:size.value])

    # -- receiving ------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            sock = self._accept() if self.url.listener else self._connect()
            with self._lock:
                if self._closed:
                    self._lib.lib.srt_close(sock)
                    return
                self._sock = sock
            self.connected_at = time.time()
            self._receive(sock)
        except libsrt.SrtError as err:
            if not self._closed and str(err):
                self.failure = str(err)
        finally:
            self.close()

    def _receive(self, sock: int) -> None:
        lib = self._lib.lib
        buf = ctypes.create_string_buffer(MESSAGE_BYTES)
        sampled = 0.0
        while True:
            n = lib.srt_recvmsg(sock, buf, MESSAGE_BYTES)
            if n == libsrt.ERROR:
                if not self._closed:
                    self.ended_by_sender = True  # the sender closed, or went silent past SRT's peer idle timeout
                return
            now = time.monotonic()
            if now - sampled >= STATS_EVERY_S:
                # a socket the sender has left has no counters to read: keep recent ones
                self._last_stats, sampled = self._stats(sock) or self._last_stats, now
            if n == 0:
                continue
            try:
                self.sink(buf.raw[:n])
            except OSError:
                return  # the reader (ffmpeg) is gone: the relay ends this session

    def close(self) -> None:
        """Idempotent; from any thread (a blocked accept or receive then returns)."""
        with self._lock:
            self._closed, sock, self._sock = True, self._sock, libsrt.INVALID_SOCK
        if sock != libsrt.INVALID_SOCK:
            stats = self._stats(sock)
            if stats is not None:
                self._last_stats = stats
            self._lib.lib.srt_close(sock)
        self._close_listener()

    def _close_listener(self) -> None:
        with self._lock:
            sock, self._listen_sock = self._listen_sock, libsrt.INVALID_SOCK
        if sock != libsrt.INVALID_SOCK:
            self._lib.lib.srt_close(sock)

    # -- what is known of the link ----------------------------------------------------------------------
    def refusal(self) -> str | None:
        """A caller the library refused while this listener waited, by what it logged."""
        text = self._lib.log_since(self.started)
        if "BADSECRET" in text or "Incorrect passphrase" in text:
            return "wrong passphrase"
        if "UNSECURE" in text or "Password required or unexpected" in text:
            return "a passphrase is set on one side only"
        return None

    def _stats(self, sock: int) -> dict | None:
        perf = libsrt.TraceBStats()
        if self._lib.lib.srt_bstats(sock, ctypes.byref(perf), 0) == libsrt.ERROR:
            return None
        return {
            "rtt_ms": round(perf.msRTT, 3),
            "recv_rate_mbps": round(perf.mbpsRecvRate, 3),
            "latency_ms": perf.msRcvTsbPdDelay,
            "buffer_ms": perf.msRcvBuf,
            "packets_received": perf.pktRecvTotal,
            "packets_lost": perf.pktRcvLossTotal,
            "packets_retransmitted": perf.pktRcvRetrans,
            "packets_dropped": perf.pktRcvDropTotal,
            "packets_belated": perf.pktRcvBelated,
            "packets_undecrypted": perf.pktRcvUndecryptTotal,
            "bytes_received": perf.byteRecvTotal,
        }

    def link(self) -> dict:
        """The sender's address and SRT's counters for this session (the last ones once it ended)."""
        with self._lock:
            sock = self._sock
        stats = self._stats(sock) if sock != libsrt.INVALID_SOCK else None
        connected = stats is not None
        return {"remote_address": self.remote_address,
                "srt": {"connected": connected, **(stats or self._last_stats or {})}}

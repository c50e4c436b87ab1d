"""Reference sources for the clock authority: the system clock, an upstream NTP server,
or NMEA sentences from a GPS receiver.

Every reference produces `Sample`s (reference time minus the authority's raw local clock)
and passes them through a `TrustGate` first: a reference that jumps away from its own
recent history, or goes silent, is reported and not trusted, and the authority holds over on
its disciplined clock instead of following it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import select
import socket
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from .config import ClockConfig
from .filter import ClockFilter, Sample
from .nmea import NMEAError, parse
from .ntp_client import NTPError, UDPAsk, parse_hostport
from .ntp_math import offset_delay

TimeSource = Callable[[], float]


class ReferenceState(str, Enum):
    OK = "ok"
    SILENT = "silent"  # no valid time for silent_after_s
    JUMPED = "jumped"  # last samples disagree with the reference's own history
    UNSYNCED = "unsynced"  # no valid time yet


@dataclass(frozen=True)
class ReferenceStatus:
    name: str
    kind: str
    state: ReferenceState
    last_update: float | None  # local time of the last trusted sample
    reason: str
    stratum: int
    ref_id: str
    counters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "state": self.state.value,
                "last_update": self.last_update, "reason": self.reason,
                "stratum": self.stratum, "ref_id": self.ref_id, "counters": dict(self.counters)}


class TrustGate:
    """Accepts a sample only if it agrees with the reference's recent history.

    The history is the last `history` trusted offsets; a sample further than `threshold`
    from their median is a jump. A jump that persists for `confirm` consecutive samples
    that agree with each other is accepted as the reference's new truth (a real correction,
    e.g. the host clock was stepped), and the authority then slews to it.
    """

    def __init__(self, threshold: float, confirm: int, history: int = 8,
                 min_history: int = 3) -> None:
        self.threshold = threshold
        self.confirm = confirm
        self.min_history = min_history
        self._history: deque[float] = deque(maxlen=history)
        self._pending: list[Sample] = []
        self.jumps = 0

    @property
    def jumped(self) -> bool:
        return bool(self._pending)

    def offer(self, s: Sample) -> tuple[list[Sample], str | None]:
        """-> (samples now trusted, reason if this one was not)."""
        if len(self._history) < self.min_history:
            # Too little history to judge; a wild start still shows up as a jump later.
            self._history.append(s.offset)
            return [s], None
        ref = statistics.median(self._history)
        if abs(s.offset - ref) <= self.threshold:
            self._pending.clear()
            self._history.append(s.offset)
            return [s], None
        if self._pending and abs(s.offset - self._pending[-1].offset) > self.threshold:
            self._pending.clear()  # not even consistent with the previous outlier
        if not self._pending:
            self.jumps += 1
        self._pending.append(s)
        if len(self._pending) >= self.confirm:
            accepted = self._pending
            self._pending = []
            self._history.clear()
            self._history.extend(p.offset for p in accepted)
            return accepted, None
        return [], (f"jump of {s.offset - ref:+.3f}s against recent history "
                    f"({len(self._pending)}/{self.confirm} to re-trust)")


class Reference:
    """Base: the gate, the queue of trusted samples, the state report."""

    kind = "base"

    def __init__(self, local: TimeSource, *, name: str | None = None, stratum: int = 1,
                 ref_id: bytes = b"LOCL", silent_after_s: float = 5.0,
                 jump_threshold_s: float = 0.5, jump_confirm: int = 10) -> None:
        self.local = local
        self.name = name or self.kind
        self.stratum = stratum
        self.ref_id = ref_id
        self.silent_after_s = silent_after_s
        self.gate = TrustGate(jump_threshold_s, jump_confirm)
        self._lock = threading.Lock()
        self._queue: list[Sample] = []
        self._started_at = local()
        self._last_update: float | None = None
        self._reason = "waiting for first sample"
        self._jump_reason: str | None = None
        self.counters: dict[str, int] = {"samples": 0, "trusted": 0, "rejected_jump": 0,
                                         "errors": 0}

    # Life cycle: references with a thread override these.
    def start(self) -> "Reference":
        return self

    def stop(self) -> None:
        pass

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def _error(self, reason: str) -> None:
        with self._lock:
            self.counters["errors"] += 1
            self._reason = reason

    def _offer(self, s: Sample) -> None:
        with self._lock:
            self.counters["samples"] += 1
            trusted, why = self.gate.offer(s)
            if why is not None:
                self.counters["rejected_jump"] += 1
                self._jump_reason = why
                return
            self._jump_reason = None
            self.counters["trusted"] += len(trusted)
            self._queue.extend(trusted)
            self._last_update = self.local()
            self._reason = "ok"

    def _poll(self) -> None:
        """Synchronous references measure here (called from collect)."""

    def collect(self) -> list[Sample]:
        """Trusted samples since the last call, for the authority's disciplined clock."""
        self._poll()
        with self._lock:
            out, self._queue = self._queue, []
            return out

    def status(self) -> ReferenceStatus:
        now = self.local()
        with self._lock:
            if self._jump_reason is not None:
                state, reason = ReferenceState.JUMPED, self._jump_reason
            elif self._last_update is None:
                silent = now - self._started_at > self.silent_after_s
                state = ReferenceState.SILENT if silent else ReferenceState.UNSYNCED
                reason = self._reason if not silent else f"no valid time since start ({self._reason})"
            elif now - self._last_update > self.silent_after_s:
                state = ReferenceState.SILENT
                reason = (f"no valid time for {now - self._last_update:.1f}s "
                          f"(last error: {self._reason})")
            else:
                state, reason = ReferenceState.OK, self._reason
            return ReferenceStatus(name=self.name, kind=self.kind, state=state,
                                   last_update=self._last_update, reason=reason,
                                   stratum=self.stratum,
                                   ref_id=self.ref_id.rstrip(b"\0").decode("latin-1"),
                                   counters=dict(self.counters))


class SystemReference(Reference):
    """The host's clock (time.time): trusted as is; the default for a laptop demo."""

    kind = "system"

    def __init__(self, local: TimeSource, wall: TimeSource = time.time, *,
                 stratum: int = 10, **kw: Any) -> None:
        super().__init__(local, stratum=stratum, ref_id=b"LOCL", **kw)
        self.wall = wall

    def _poll(self) -> None:
        # Bracket the wall read with two raw reads: their gap is the measurement's delay.
        a = self.local()
        w = self.wall()
        b = self.local()
        self._offer(Sample(time=(a + b) / 2, offset=w - (a + b) / 2, delay=b - a))


def _ref_id_for(host: str) -> bytes:
    """RFC 5905: an IPv4 upstream is named by its address; others by 4 bytes of MD5."""
    try:
        addr = ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0])
    except (OSError, ValueError):
        return hashlib.md5(host.encode()).digest()[:4]
    if addr.version == 4:
        return addr.packed
    return hashlib.md5(addr.packed).digest()[:4]


class NTPReference(Reference):
    """An upstream NTP server: every poll, a burst of queries; the least-delay one counts."""

    kind = "ntp"

    def __init__(self, local: TimeSource, server: str, *, queries: int = 4,
                 poll_s: float = 16.0, timeout_s: float = 1.0, spacing_s: float = 0.05,
                 **kw: Any) -> None:
        host, port = parse_hostport(server, 123)
        super().__init__(local, name=f"ntp:{host}:{port}", stratum=16,
                         ref_id=_ref_id_for(host), **kw)
        self.host, self.port = host, port
        self.queries = queries
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.spacing_s = spacing_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> Sample | None:
        """One burst; the best sample is offered to the gate (and returned)."""
        burst = ClockFilter(size=self.queries)
        upstream_stratum = None
        try:
            ask = UDPAsk(self.host, self.port, timeout=self.timeout_s)
        except OSError as exc:
            self._error(f"cannot reach {self.host}:{self.port}: {exc}")
            return None
        with ask:
            for i in range(self.queries):
                if i:
                    time.sleep(self.spacing_s)
                t1 = self.local()
                try:
                    r = ask(t1)
                except NTPError as exc:
                    self._error(str(exc))
                    continue
                t4 = self.local()
                ow = offset_delay(t1, r.t2, r.t3, t4)
                if ow.delay < 0 or r.t3 < r.t2:
                    self._error("upstream reply with negative delay")
                    continue
                upstream_stratum = r.stratum
                burst.add(Sample(time=(t1 + t4) / 2, offset=ow.offset, delay=ow.delay,
                                 root_delay=r.root_delay, root_dispersion=r.root_dispersion))
        best = burst.best()
        if best is None or upstream_stratum is None:
            return None
        self.stratum = min(15, upstream_stratum + 1)
        self._offer(best)
        return best

    def start(self) -> "NTPReference":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s * self.queries + 2)
            self._thread = None


class NMEAReference(Reference):
    """A GPS receiver speaking NMEA 0183 on a serial device path or a TCP 'host:port'.

    Sentences carry the UTC second they describe and arrive some time after it; without a
    PPS line that latency (`delay_s`, constant per receiver model) is the dominant error,
    so each sample admits `uncertainty_s` of dispersion.
    """

    kind = "nmea"

    def __init__(self, local: TimeSource, source: str, *, delay_s: float = 0.0,
                 uncertainty_s: float = 0.05, **kw: Any) -> None:
        super().__init__(local, name=f"nmea:{source}", stratum=1, ref_id=b"GPS\0", **kw)
        self.source = source
        self.delay_s = delay_s
        self.uncertainty_s = uncertainty_s
        self.counters.update({"bad_checksum": 0, "malformed": 0, "nofix": 0,
                              "unsupported": 0, "valid": 0})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_tcp(self) -> bool:
        return not self.source.startswith("/") and ":" in self.source

    def feed_line(self, line: str | bytes, received: float) -> None:
        """One line as received at local raw time `received` (public for tty-less tests)."""
        if isinstance(line, bytes):
            line = line.decode("ascii", errors="replace")
        if not line.strip():
            return
        try:
            fix = parse(line)
        except NMEAError as exc:
            key = {"checksum": "bad_checksum", "format": "malformed", "nofix": "nofix",
                   "unsupported": "unsupported"}[exc.kind]
            self._count(key)
            if exc.kind != "unsupported":
                with self._lock:
                    self._reason = f"{key}: {exc}"
            return
        self._count("valid")
        self._offer(Sample(time=received, offset=fix.time + self.delay_s - received,
                           delay=0.0, dispersion=self.uncertainty_s))

    def start(self) -> "NMEAReference":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if self.is_tcp:
                    self._read_tcp()
                else:
                    self._read_device()
                backoff = 0.2
            except OSError as exc:
                self._error(f"{self.source}: {exc}")
            # Reconnect with capped backoff: a receiver that is unplugged comes back.
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _lines(self, chunks: Callable[[], bytes | None]) -> None:
        buf = b""
        while not self._stop.is_set():
            data = chunks()
            if data is None:
                continue  # nothing yet (timeout): check stop and wait again
            received = self.local()  # as early as possible after the bytes arrived
            if data == b"":
                return  # closed: reconnect
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.feed_line(line, received)
            if len(buf) > 4096:  # no newline in 4 KiB: not NMEA, resynchronise
                self._count("malformed")
                buf = b""

    def _read_tcp(self) -> None:
        host, port = parse_hostport(self.source, 10110)  # 10110: the NMEA-over-IP port
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.settimeout(0.2)

            def chunk() -> bytes | None:
                try:
                    return sock.recv(4096)
                except socket.timeout:
                    return None
            self._lines(chunk)

    def _read_device(self) -> None:
        # A plain non-blocking read with select works for ttys, pipes and regular files;
        # line settings (baud rate) are the operator's `stty` business, not ours.
        fd = os.open(self.source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        regular = os.path.isfile(self.source)
        try:
            def chunk() -> bytes | None:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    return None
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    return None
                if data == b"" and regular:
                    self._stop.wait(0.2)  # a file being appended to: follow it
                    return None
                return data
            self._lines(chunk)
        finally:
            os.close(fd)


def build_reference(cfg: ClockConfig, local: TimeSource) -> Reference:
    """The reference named by config, reading time against the authority's raw clock."""
    common: dict[str, Any] = dict(silent_after_s=cfg.silent_after_s,
                                  jump_threshold_s=cfg.jump_threshold_s,
                                  jump_confirm=cfg.jump_confirm)
    if cfg.reference == "system":
        return SystemReference(local, stratum=cfg.local_stratum, **common)
    if cfg.reference == "ntp":
        assert cfg.ntp_server is not None
        return NTPReference(local, cfg.ntp_server, queries=cfg.upstream_queries,
                            poll_s=cfg.upstream_poll_s, timeout_s=cfg.upstream_timeout_s,
                            **common)
    assert cfg.nmea_source is not None
    return NMEAReference(local, cfg.nmea_source, delay_s=cfg.nmea_delay_s,
                         uncertainty_s=cfg.nmea_uncertainty_s, **common)

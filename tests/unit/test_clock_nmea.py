"""NMEA reference: a fake GPS receiver on a real local TCP socket (and a device path that is
a plain file being appended to) feeds sentences to the real reader thread."""

from __future__ import annotations

import queue
import re
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from orbitcast.clock import (ClockAuthority, ClockConfig, ClockState, DisciplinedClock,
                             NMEAReference, ReferenceState)
from orbitcast.clock.nmea import format_rmc, format_zda


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class FakeGPS:
    """A TCP server on 127.0.0.1 that sends whatever lines are queued, to one client."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._srv.settimeout(0.1)
        self.port = self._srv.getsockname()[1]
        self._stop = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with conn:
                while not self._stop.is_set():
                    try:
                        line = self.lines.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    try:
                        conn.sendall(line.encode("ascii") + b"\r\n")
                    except OSError:
                        break

    def send(self, *lines: str) -> None:
        for line in lines:
            self.lines.put(line)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._srv.close()


@pytest.fixture
def gps() -> Iterator[FakeGPS]:
    g = FakeGPS()
    try:
        yield g
    finally:
        g.close()


def corrupt(line: str) -> str:
    """Same sentence, one digit of the time changed, checksum left as it was."""
    i = line.index(",") + 1
    return line[:i] + ("1" if line[i] != "1" else "2") + line[i + 1:]


def test_fake_gps_over_tcp_valid_bad_silent_jump(gps: FakeGPS) -> None:
    cfg = ClockConfig(reference="nmea", nmea_source=f"127.0.0.1:{gps.port}",
                      silent_after_s=0.6, jump_threshold_s=0.5, jump_confirm=4,
                      holdover_after_s=0.5, tick_interval_s=0.05, ntp_serve=False)
    auth = ClockAuthority.from_config(cfg, source=time.time)
    ref = auth.reference
    assert isinstance(ref, NMEAReference) and ref.is_tcp
    auth.start()
    try:
        assert ref.status().state is ReferenceState.UNSYNCED
        # Valid sentences, GP and GN talkers, RMC and ZDA, interleaved with corrupted ones.
        for i in range(4):
            now = time.time()
            gps.send(format_rmc(now, "GP"), corrupt(format_rmc(now + 3600, "GN")),
                     format_zda(now, "GN"), format_rmc(now, "GP", valid=False))
            time.sleep(0.05)
        assert wait_for(lambda: ref.counters["valid"] >= 8)
        assert wait_for(lambda: auth.clock.state is ClockState.SYNCED)
        st = ref.status()
        assert st.state is ReferenceState.OK and st.stratum == 1 and st.ref_id == "GPS"
        assert st.counters["bad_checksum"] == 4  # each corrupted line counted, not used
        assert st.counters["nofix"] == 4  # status V is not GPS time
        # Time comes through: sentence times are truncated to 10 ms, loopback adds ~0.
        assert abs(auth.now() - time.time()) < 0.03
        assert auth.server_info().stratum == 1 and auth.server_info().ref_id == b"GPS\0"

        # Silence: the receiver stops talking.
        assert wait_for(lambda: ref.status().state is ReferenceState.SILENT, timeout=3)
        assert "no valid time" in ref.status().reason
        assert wait_for(lambda: auth.clock.state is ClockState.HOLDOVER)

        # A jump: the receiver suddenly reports an hour later. Reported, not trusted.
        for _ in range(3):
            gps.send(format_rmc(time.time() + 3600.0))
            time.sleep(0.05)
        assert wait_for(lambda: ref.status().state is ReferenceState.JUMPED)
        assert re.search(r"jump of \+3(599\.9|600\.0)\d*s", ref.status().reason)
        time.sleep(0.2)
        assert abs(auth.now() - time.time()) < 0.05  # the authority did not follow
        assert auth.clock.state is ClockState.HOLDOVER
        assert auth.status()["reference"]["state"] == "jumped"
        assert ref.counters["rejected_jump"] == 3

        # Back to the truth: trusted again at once (it agrees with the history).
        gps.send(format_rmc(time.time()))
        assert wait_for(lambda: ref.status().state is ReferenceState.OK)
        assert wait_for(lambda: auth.clock.state is ClockState.SYNCED)
    finally:
        auth.stop()


def test_persistent_new_offset_is_retrusted_after_confirmations() -> None:
    # Drive the reader by hand (feed_line) to check the gate's re-trust rule exactly.
    ref = NMEAReference(time.time, "/dev/null", jump_threshold_s=0.5, jump_confirm=3)
    base = 1_795_000_000.0
    for i in range(4):
        ref.feed_line(format_rmc(base + i), received=base + i)
    assert len(ref.collect()) == 4
    ref.feed_line(format_rmc(base + 4 + 10), received=base + 4)
    ref.feed_line(format_rmc(base + 5 + 10), received=base + 5)
    assert ref.collect() == []
    ref.feed_line(format_rmc(base + 6 + 10), received=base + 6)
    accepted = ref.collect()
    assert [round(s.offset) for s in accepted] == [10, 10, 10]


def test_device_path_reader(tmp_path: Path) -> None:
    # A serial device is read as a file path; a regular file being appended to stands in.
    dev = tmp_path / "ttyGPS"
    dev.write_bytes(b"")
    clock = DisciplinedClock(time.time)
    ref = NMEAReference(clock.raw_now, str(dev), silent_after_s=2.0).start()
    try:
        with dev.open("a") as f:
            for _ in range(3):
                f.write(format_zda(time.time()) + "\r\n")
                f.write("$GPRMC,garbage*00\r\n")
                f.flush()
                time.sleep(0.05)
        assert wait_for(lambda: ref.counters["valid"] >= 3)
        samples = ref.collect()
        assert len(samples) == 3 and all(abs(s.offset) < 0.5 for s in samples)
        assert ref.counters["bad_checksum"] == 3
        assert ref.status().state is ReferenceState.OK
    finally:
        ref.stop()


def test_missing_device_is_an_error_not_a_crash(tmp_path: Path) -> None:
    ref = NMEAReference(time.time, str(tmp_path / "nope"), silent_after_s=0.3).start()
    try:
        assert wait_for(lambda: ref.counters["errors"] >= 1)
        assert wait_for(lambda: ref.status().state is ReferenceState.SILENT)
        assert "No such file" in ref.status().reason
    finally:
        ref.stop()

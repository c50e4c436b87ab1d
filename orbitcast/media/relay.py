"""Relays for contribution protocols that PyAV's bundled FFmpeg lacks (SRT).

Debian's ffmpeg (built with libsrt) receives the stream and copies it, unchanged (no
re-encode), as NUT to a pipe; the `Relay` is the file object PyAV reads that pipe through.
NUT, not MPEG-TS: a NUT packet is a whole frame the moment it is written, where an MPEG-TS
reader knows a picture's PES is complete only when the next one begins and then parses the
frame out again (about two pictures); and packets are written as they come, not held to
interleave the streams (`max_interleave_delta` 1 us). bench/bench_ingest.py: SRT's median
ingest-to-part 541 ms with an MPEG-TS pipe, 348 ms with this one.
The child is killed when the relay is closed, and by the kernel when the thread that started it
dies (a parent-death signal), so a feed never leaves an ffmpeg behind. Its stderr is kept to
turn a refused or failed connection into a reason a person understands.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
from urllib.parse import parse_qs, urlsplit

RELAYED_SCHEMES = ("srt://",)
FFMPEG = "ffmpeg"
# A larger pipe smooths the hand-over between the relay and PyAV's 32 KiB reads.
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031
STDERR_TAIL = 8192


class RelayFailed(Exception):
    """The relay could not receive the stream; str(err) is the reason shown to users."""


class RelayIdle(RelayFailed):
    """A listening relay that no sender reached in time: the feed waits, it has not failed."""


class RelayEnded(Exception):
    """The sender closed the connection (or the relay was closed)."""


def needs_relay(url: str) -> bool:
    return url.startswith(RELAYED_SCHEMES)


def is_listener(url: str) -> bool:
    """An SRT URL in listener mode (a sender calls us); SRT's default mode is caller."""
    return parse_qs(urlsplit(url).query).get("mode", ["caller"])[0] == "listener"


def redact(text: str) -> str:
    """`text` without SRT passphrases or URL passwords (ffmpeg repeats the URL in its messages,
    and reasons end up in /api/feeds)."""
    text = re.sub(r"(passphrase=)[^&\s:'\"]*", r"\1***", text)
    return re.sub(r"(://[^/\s:@]*):[^/\s@]*@", r"\1:***@", text)


def relay_command(url: str, ffmpeg: str = FFMPEG) -> list[str]:
    # Every video and audio stream is copied; Source chooses among them as it does for any input.
    cmd = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-analyzeduration", "1000000", "-i", url,
        "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-max_interleave_delta", "1", "-f", "nut", "-flush_packets", "1",
        "pipe:1",
    ]
    # The kernel kills the relay if the thread that started it dies (setpriv is in util-linux).
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *cmd] if setpriv else cmd


class Relay:
    """One ffmpeg child receiving `url`; a non-seekable file object PyAV can open.

    `read` waits at most `open_timeout` for the first bytes and `read_timeout` for any later
    ones; on a timeout it kills the child and reports the end of the stream, and `outcome()`
    then says why.
    """

    def __init__(self, url: str, *, open_timeout: float = 10.0, read_timeout: float = 5.0, ffmpeg: str = FFMPEG) -> None:
        self.url = url
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.ffmpeg = ffmpeg
        self.bytes_read = 0
        self.timed_out = False
        self.closed = False
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()
        self._proc: subprocess.Popen[bytes] | None = None

    # -- the child ---------------------------------------------------------------------------
    def start(self) -> Relay:
        if shutil.which(self.ffmpeg) is None:
            raise RelayFailed(f"{self.scheme} needs Debian's ffmpeg (with libsrt) on PATH: apt-get install ffmpeg")
        self._proc = subprocess.Popen(
            relay_command(self.url, self.ffmpeg), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, close_fds=True,
        )
        assert self._proc.stdout is not None
        try:
            fcntl.fcntl(self._proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe still works
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.upper()

    @property
    def listening(self) -> bool:
        return is_listener(self.url)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Stop the child (idempotent; safe from another thread, which unblocks a `read`)."""
        with self._lock:
            self.closed = True
            proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if proc.stdout is not None:
            proc.stdout.close()

    # -- the file object PyAV reads ------------------------------------------------------------
    def read(self, size: int) -> bytes:
        proc = self._proc
        if proc is None or proc.stdout is None or self.closed:
            return b""
        fd = proc.stdout.fileno()
        timeout = self.read_timeout if self.bytes_read else self.open_timeout
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                self.timed_out = True
                proc.kill()
                return b""
            data = os.read(fd, size)
        except (OSError, ValueError):  # closed from another thread
            return b""
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True

    # -- why it stopped ------------------------------------------------------------------------
    def stderr_tail(self) -> str:
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - STDERR_TAIL))
            return redact(self._stderr.read().decode("utf-8", "replace"))
        except (OSError, ValueError):
            return ""

    def outcome(self) -> RelayEnded | RelayFailed:
        """Why the stream stopped, once `read` has returned b"" (the end of the pipe)."""
        if self.closed and not self.timed_out:
            return RelayEnded("relay closed")
        proc = self._proc
        rc = None
        if proc is not None:
            try:
                rc = proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
        refused = self._refusal()
        if self.timed_out:
            if not self.bytes_read and self.listening:
                where = urlsplit(self.url).netloc
                extra = f"; {refused}" if refused else ""
                return RelayIdle(f"{self.scheme} listener on {where}: no sender connected within {self.open_timeout:g} s{extra}")
            if not self.bytes_read:
                return RelayFailed(refused or f"{self.scheme}: no media from {urlsplit(self.url).netloc} within {self.open_timeout:g} s")
            return RelayFailed(f"{self.scheme}: no data for {self.read_timeout:g} s")
        if rc == 0:
            return RelayEnded(f"{self.scheme}: the sender closed the connection")
        return RelayFailed(refused or self._last_error(rc))

    def _refusal(self) -> str | None:
        err = self.stderr_tail()
        who = "a sender was refused" if self.listening else "the listener refused us"
        if "Incorrect passphrase" in err or "BADSECRET" in err:
            return f"{self.scheme}: {who}: wrong passphrase"
        if "Password required or unexpected" in err or "UNSECURE" in err:
            return f"{self.scheme}: {who}: a passphrase is set on one side only"
        if "Address already in use" in err:
            return f"{self.scheme}: port {urlsplit(self.url).port} is already in use"
        if "passphrase" in err.lower() and ("length" in err.lower() or "invalid" in err.lower()):
            return f"{self.scheme}: invalid passphrase (10 to 79 characters)"
        return None

    def _last_error(self, rc: int | None) -> str:
        err = self.stderr_tail()
        lines = [re.sub(r"^\d\d:\d\d:\d\d\.\d+/\S+\s*", "", line).strip() for line in err.splitlines()]
        lines = [line for line in lines if line]
        if not self.listening and any("Connection to" in line and "failed" in line for line in lines):
            return f"{self.scheme}: could not connect to {urlsplit(self.url).netloc} (no listener answered)"
        if lines:
            return f"{self.scheme} relay: {lines[-1]}"
        return f"{self.scheme} relay exited with status {rc}"


"""Relays for contribution protocols that PyAV's bundled FFmpeg lacks (SRT).

The SRT session is received in this process with libsrt (`srt_receiver.py`, which also gives
the sender's address and SRT's counters), and its bytes go to Debian's ffmpeg, which copies the
stream, unchanged (no re-encode), as NUT to a pipe; the `Relay` is the file object PyAV reads
that pipe through. NUT, not the MPEG-TS that arrived: a NUT packet is a whole frame the moment
it is written, where an MPEG-TS reader knows a picture's PES is complete only when the next one
begins and then parses the frame out again (about two pictures); and packets are written as
they come, not held to interleave the streams (`max_interleave_delta` 1 us).
bench/bench_ingest.py: SRT's median ingest-to-part 541 ms with an MPEG-TS pipe, 348 ms with this one.
The child is killed when the relay is closed, and by the kernel when the thread that started it
dies (a parent-death signal), so a feed never leaves an ffmpeg behind; the receiving thread
then finds its pipe broken and closes the SRT socket.
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

from . import libsrt
from .srt_receiver import SrtSession

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


def relay_command(ffmpeg: str = FFMPEG) -> list[str]:
    """ffmpeg reading what the SRT session received on its stdin."""
    # Every video and audio stream is copied; Source chooses among them as it does for any input.
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-analyzeduration", "1000000", "-i", "pipe:0",
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
        self._session: SrtSession | None = None

    # -- the session and the child ------------------------------------------------------------
    def start(self) -> Relay:
        if shutil.which(self.ffmpeg) is None:
            raise RelayFailed(f"{self.scheme} needs Debian's ffmpeg on PATH: apt-get install ffmpeg")
        try:
            session = self._session = SrtSession(self.url, self._write)
            session.open()
        except ValueError as err:
            raise RelayFailed(f"{self.scheme}: {err}") from None
        except libsrt.SrtUnavailable as err:
            raise RelayFailed(str(err)) from None
        except libsrt.SrtError as err:
            self.close()
            raise RelayFailed(f"{self.scheme}: {err}") from None
        try:
            self._proc = subprocess.Popen(
                relay_command(self.ffmpeg), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, close_fds=True,
            )
        except OSError:
            self.close()
            raise
        assert self._proc.stdout is not None
        try:
            fcntl.fcntl(self._proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # a smaller pipe still works
        threading.Thread(target=self._receive, name=f"srt-{urlsplit(self.url).port}", daemon=True).start()
        return self

    def _write(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise BrokenPipeError
        view = memoryview(data)
        while view:
            view = view[os.write(proc.stdin.fileno(), view):]

    def _receive(self) -> None:
        """The receiving thread: the session, then the end of ffmpeg's input (it then writes out
        what it holds and exits)."""
        assert self._session is not None and self._proc is not None
        try:
            self._session.run()
        finally:
            try:
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            except OSError:
                pass

    def link(self) -> dict | None:
        """The sender's address and SRT's counters (`SrtSession.link`), None before a session."""
        return self._session.link() if self._session is not None else None

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
        if self._session is not None:
            self._session.close()
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
                if self._session is not None:
                    self._session.close()
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
        session = self._session
        if session is not None and session.failure:
            return RelayFailed(f"{self.scheme}: {session.failure}")
        if self.timed_out:
            if not self.bytes_read and self.listening:
                where = urlsplit(self.url).netloc
                refused = session.refusal() if session is not None else None
                extra = f"; {self.scheme}: a sender was refused: {refused}" if refused else ""
                return RelayIdle(f"{self.scheme} listener on {where}: no sender connected within {self.open_timeout:g} s{extra}")
            if not self.bytes_read:
                return RelayFailed(f"{self.scheme}: no media from {urlsplit(self.url).netloc} within {self.open_timeout:g} s")
            return RelayFailed(f"{self.scheme}: no data for {self.read_timeout:g} s")
        if rc == 0:
            return RelayEnded(f"{self.scheme}: the sender closed the connection")
        return RelayFailed(self._last_error(rc))

    def _last_error(self, rc: int | None) -> str:
        err = self.stderr_tail()
        lines = [re.sub(r"^\d\d:\d\d:\d\d\.\d+/\S+\s*", "", line).strip() for line in err.splitlines()]
        lines = [line for line in lines if line]
        if lines:
            return f"{self.scheme} relay: {lines[-1]}"
        return f"{self.scheme} relay exited with status {rc}"


"""NMEA 0183 time sentences from a GPS receiver: RMC and ZDA, any GNSS talker.

Only the checksum stands between a noisy serial line and a wrong time, so a sentence
without a valid checksum is never used. RMC with status `V` (no fix) carries the
receiver's free-running guess, not GPS time, and is not used either.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

# GP GPS, GN multi-constellation, GL GLONASS, GA Galileo, GB/BD BeiDou, GQ QZSS.
TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "BD", "GQ"})


class NMEAError(ValueError):
    """Not a sentence we can use; `kind` says why (for counters)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "checksum" | "format" | "nofix" | "unsupported"


@dataclass(frozen=True)
class NMEAFix:
    sentence: str  # "RMC" or "ZDA"
    talker: str
    time: float  # Unix seconds (UTC) the sentence reports


def checksum(body: str) -> int:
    """XOR of the characters between '$' and '*'."""
    c = 0
    for ch in body:
        c ^= ord(ch)
    return c


def with_checksum(body: str) -> str:
    """Frame a sentence body (without '$'): `$BODY*HH` (what a receiver sends)."""
    return f"${body}*{checksum(body):02X}"


def _split(line: str) -> tuple[str, list[str]]:
    line = line.strip()
    if not line.startswith("$"):
        raise NMEAError("format", "sentence does not start with '$'")
    star = line.rfind("*")
    if star < 0 or len(line) - star != 3:
        # NMEA 0183 makes the checksum optional; for time we do not accept that.
        raise NMEAError("checksum", "sentence has no checksum")
    body, given = line[1:star], line[star + 1:]
    try:
        want = int(given, 16)
    except ValueError:
        raise NMEAError("checksum", f"checksum {given!r} is not hex") from None
    if checksum(body) != want:
        raise NMEAError("checksum", f"checksum mismatch: {given} != {checksum(body):02X}")
    fields = body.split(",")
    if len(fields[0]) != 5:
        raise NMEAError("format", f"bad address field {fields[0]!r}")
    return fields[0], fields[1:]


def _hms(text: str) -> float:
    if len(text) < 6 or not text[:6].isdigit():
        raise NMEAError("format", f"bad time {text!r}")
    h, m, s = int(text[0:2]), int(text[2:4]), float(text[4:])
    if h > 23 or m > 59 or s >= 61:  # 60.x is a leap second
        raise NMEAError("format", f"time out of range {text!r}")
    return h * 3600 + m * 60 + s


def _day(year: int, month: int, day: int) -> float:
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise NMEAError("format", f"bad date {year}-{month}-{day}")
    try:
        return float(calendar.timegm((year, month, day, 0, 0, 0)))
    except (ValueError, OverflowError):
        raise NMEAError("format", f"bad date {year}-{month}-{day}") from None


def parse(line: str) -> NMEAFix:
    """One line -> the UTC time it carries, or NMEAError saying why not."""
    address, f = _split(line)
    talker, kind = address[:2], address[2:]
    if talker not in TALKERS or kind not in ("RMC", "ZDA"):
        raise NMEAError("unsupported", f"not a time sentence: {address}")
    try:
        if kind == "RMC":
            # hhmmss.ss,A|V,lat,N,lon,E,speed,course,ddmmyy,...
            if len(f) < 9:
                raise NMEAError("format", "RMC with too few fields")
            if f[1] != "A":
                raise NMEAError("nofix", "RMC status is not A (no valid fix)")
            d = f[8]
            if len(d) != 6 or not d.isdigit():
                raise NMEAError("format", f"bad RMC date {d!r}")
            yy = int(d[4:6])
            # Two-digit year: the receivers this talks to were built after 1980.
            year = 2000 + yy if yy < 80 else 1900 + yy
            t = _day(year, int(d[2:4]), int(d[0:2])) + _hms(f[0])
        else:
            # hhmmss.ss,dd,mm,yyyy,zone_h,zone_m  (the time itself is UTC)
            if len(f) < 4 or not all(x.isdigit() for x in f[1:4]):
                raise NMEAError("format", "ZDA without a full date")
            t = _day(int(f[3]), int(f[2]), int(f[1])) + _hms(f[0])
    except ValueError as exc:
        if isinstance(exc, NMEAError):
            raise
        raise NMEAError("format", str(exc)) from None
    return NMEAFix(sentence=kind, talker=talker, time=t)


def format_rmc(t: float, talker: str = "GP", valid: bool = True) -> str:
    """An RMC sentence for Unix time `t` (used by fake receivers in tests and demos)."""
    tm = time.gmtime(int(t))
    cs = int((t - int(t)) * 100)  # truncate: hundredths already elapsed
    body = (f"{talker}RMC,{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.{cs:02d},"
            f"{'A' if valid else 'V'},4807.038,N,01131.000,E,0.0,0.0,"
            f"{tm.tm_mday:02d}{tm.tm_mon:02d}{tm.tm_year % 100:02d},,,A")
    return with_checksum(body)


def format_zda(t: float, talker: str = "GP") -> str:
    tm = time.gmtime(int(t))
    cs = int((t - int(t)) * 100)
    body = (f"{talker}ZDA,{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.{cs:02d},"
            f"{tm.tm_mday:02d},{tm.tm_mon:02d},{tm.tm_year:04d},00,00")
    return with_checksum(body)

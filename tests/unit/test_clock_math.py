"""RFC 5905 arithmetic, timestamp formats, packet codec, NMEA parsing, ISO formatting."""

from __future__ import annotations

import calendar
import struct

import pytest

from orbitcast.clock.iso import format_iso_ms, parse_iso
from orbitcast.clock.nmea import NMEAError, format_rmc, format_zda, parse, with_checksum
from orbitcast.clock.ntp_math import (NTP_UNIX_DELTA, ntp_to_unix, offset_delay,
                                      seconds_to_short, short_to_seconds, unix_to_ntp)
from orbitcast.clock.ntp_packet import NTPPacket, decode


# -- four timestamps ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "t1,t2,t3,t4,offset,delay",
    [
        # synchronized clocks, 10 ms each way, 1 ms server turnaround
        (100.000, 100.010, 100.011, 100.021, 0.0, 0.020),
        # server 1 s ahead, symmetric 5 ms legs
        (100.000, 101.005, 101.006, 100.011, 1.0, 0.010),
        # server 0.5 s behind
        (100.000, 99.505, 99.505, 100.010, -0.5, 0.010),
        # asymmetric path (20 ms out, 0 back): offset wrong by exactly delay/2
        (100.000, 100.020, 100.020, 100.020, 0.010, 0.020),
    ],
)
def test_offset_delay_vectors(t1: float, t2: float, t3: float, t4: float,
                              offset: float, delay: float) -> None:
    ow = offset_delay(t1, t2, t3, t4)
    assert ow.offset == pytest.approx(offset, abs=1e-9)
    assert ow.delay == pytest.approx(delay, abs=1e-9)


def test_ntp_timestamp_round_trip_and_known_values() -> None:
    assert unix_to_ntp(0.0) == NTP_UNIX_DELTA << 32
    assert unix_to_ntp(0.5) == (NTP_UNIX_DELTA << 32) | (1 << 31)
    # 2026-11-25T00:00:00Z
    t = float(calendar.timegm((2026, 11, 25, 0, 0, 0)))
    assert unix_to_ntp(t) >> 32 == int(t) + 2_208_988_800
    for x in (0.0, 1.25, 1_795_000_000.123456, t + 0.999999):
        assert ntp_to_unix(unix_to_ntp(x)) == pytest.approx(x, abs=1e-6)
    with pytest.raises(ValueError):
        unix_to_ntp(-NTP_UNIX_DELTA - 1.0)  # before 1900
    with pytest.raises(ValueError):
        unix_to_ntp(float(2**32))  # past era 0 (2036)
    with pytest.raises(ValueError):
        unix_to_ntp(float("nan"))


def test_short_format() -> None:
    assert seconds_to_short(1.0) == 0x0001_0000
    assert seconds_to_short(0.5) == 0x0000_8000
    assert short_to_seconds(0x0002_4000) == 2.25
    assert seconds_to_short(1e9) == 0xFFFF_FFFF  # saturates
    with pytest.raises(ValueError):
        seconds_to_short(-1.0)


# -- packet codec -------------------------------------------------------------------------
def test_packet_round_trip() -> None:
    p = NTPPacket(leap=0, version=4, mode=4, stratum=2, poll=6, precision=-20,
                  root_delay=seconds_to_short(0.0125), root_dispersion=seconds_to_short(0.5),
                  ref_id=b"GPS\0").with_times(ref_ts=1_700_000_000.0, orig_ts=1_700_000_001.5,
                                              recv_ts=1_700_000_001.6, tx_ts=1_700_000_001.7)
    data = p.encode()
    assert len(data) == 48
    assert data[0] == (0 << 6) | (4 << 3) | 4
    q = decode(data)
    assert q == p
    assert q.tx_time == pytest.approx(1_700_000_001.7, abs=1e-6)
    assert q.root_delay_s == pytest.approx(0.0125, abs=2e-5)


def test_packet_decode_is_strict() -> None:
    good = NTPPacket(version=3, mode=3).with_times(tx_ts=1_700_000_000.0).encode()
    assert decode(good).version == 3
    with pytest.raises(ValueError):
        decode(good[:47])  # short
    with pytest.raises(ValueError):
        decode(good + b"\0\0\0")  # not whole words
    with pytest.raises(ValueError):
        decode(good + b"\0" * 20)  # v3 cannot carry extensions/MAC
    v4 = NTPPacket(version=4, mode=3).encode()
    assert decode(v4 + b"\0" * 20).version == 4  # v4 with a MAC is fine
    with pytest.raises(ValueError):
        decode(bytes([(0 << 6) | (5 << 3) | 3]) + good[1:])  # version 5
    with pytest.raises(ValueError):
        decode(bytes([(0 << 6) | (2 << 3) | 3]) + good[1:])  # v2 not accepted by default
    assert decode(bytes([(0 << 6) | (2 << 3) | 3]) + good[1:], versions=(2, 3, 4)).version == 2
    with pytest.raises(ValueError):
        decode(bytes([(0 << 6) | (4 << 3) | 0]) + good[1:])  # mode 0 reserved
    with pytest.raises(ValueError):
        decode(good[:1] + bytes([17]) + good[2:])  # stratum 17 reserved
    with pytest.raises(ValueError):
        decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        NTPPacket(ref_id=b"GPS").encode()


def test_packet_layout_matches_struct() -> None:
    # Field offsets straight from RFC 5905 figure 8.
    p = NTPPacket(leap=3, version=4, mode=3, stratum=16, poll=-6, precision=-29,
                  root_delay=0x01020304, root_dispersion=0x05060708, ref_id=b"ABCD",
                  ref_ts=1, orig_ts=2, recv_ts=3, tx_ts=4).encode()
    assert p[0] == 0xE3 and p[1] == 16 and struct.unpack("b", p[2:3])[0] == -6
    assert p[4:8] == b"\x01\x02\x03\x04" and p[8:12] == b"\x05\x06\x07\x08"
    assert p[12:16] == b"ABCD"
    assert struct.unpack("!4Q", p[16:48]) == (1, 2, 3, 4)


# -- NMEA ---------------------------------------------------------------------------------
def test_nmea_known_sentences() -> None:
    # The classic RMC example (checksum *6A) from the NMEA reference.
    fix = parse("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A")
    assert fix.sentence == "RMC" and fix.talker == "GP"
    assert fix.time == calendar.timegm((1994, 3, 23, 12, 35, 19))
    zda = parse(with_checksum("GNZDA,201530.25,04,07,2002,00,00"))
    assert zda.time == pytest.approx(calendar.timegm((2002, 7, 4, 20, 15, 30)) + 0.25)
    t = 1_795_000_000.37
    assert parse(format_rmc(t, "GN")).time == pytest.approx(1_795_000_000.37, abs=0.011)
    assert parse(format_zda(t)).time == pytest.approx(1_795_000_000.37, abs=0.011)


@pytest.mark.parametrize("line,kind", [
    ("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B", "checksum"),
    ("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "checksum"),
    ("GPRMC,123519,A*00", "format"),
    (with_checksum("GPRMC,123519,V,,,,,,,230394,,"), "nofix"),
    (with_checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
     "unsupported"),
    (with_checksum("GPZDA,256199,04,07,2002,00,00"), "format"),
    (with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,321394,003.1,W"),
     "format"),
])
def test_nmea_rejects(line: str, kind: str) -> None:
    with pytest.raises(NMEAError) as ei:
        parse(line)
    assert ei.value.kind == kind


# -- ISO ----------------------------------------------------------------------------------
def test_iso_ms() -> None:
    t = calendar.timegm((2026, 11, 25, 0, 0, 0)) + 0.123
    assert format_iso_ms(t) == "2026-11-25T00:00:00.123Z"
    assert format_iso_ms(calendar.timegm((2026, 12, 31, 23, 59, 59)) + 0.9999) == \
        "2026-12-31T23:59:59.999Z"  # truncated, never rounded into the future
    assert parse_iso("2026-11-25T00:00:00.123Z") == pytest.approx(t, abs=1e-6)
    with pytest.raises(ValueError):
        parse_iso("2026-11-25T00:00:00")

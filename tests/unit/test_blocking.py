"""LL-HLS delivery directives (draft-pantos-hls-rfc8216bis 6.2.5): the query parser and the pure
blocking decisions over a `LiveEdge`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitcast.delivery.blocking import (
    BadDirective,
    LiveEdge,
    PlaylistRequest,
    Readiness,
    parse_playlist_query,
    part_readiness,
    playlist_readiness,
)
from orbitcast.delivery.names import BadName

# No example database in the working tree; no deadline, since CI machines stall at times.
SETTINGS = settings(database=None, deadline=None)
READY, WAIT, TOO_FAR, UNKNOWN = Readiness.READY, Readiness.WAIT, Readiness.TOO_FAR, Readiness.UNKNOWN
MAX = 2**64 - 1


# -- parsing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params,expected",
    [
        ([], PlaylistRequest(None, None, False)),
        ([("_HLS_msn", "1700000000")], PlaylistRequest(1700000000, None, False)),
        ([("_HLS_msn", "12"), ("_HLS_part", "3")], PlaylistRequest(12, 3, False)),
        ([("_HLS_part", "3"), ("_HLS_msn", "12")], PlaylistRequest(12, 3, False)),  # any order
        ([("_HLS_skip", "YES")], PlaylistRequest(None, None, True)),
        ([("_HLS_skip", "v2")], PlaylistRequest(None, None, True, True)),  # old date ranges skipped too
        ([("_HLS_msn", "0"), ("_HLS_part", "0"), ("_HLS_skip", "YES")], PlaylistRequest(0, 0, True)),
        ([("_HLS_msn", "007")], PlaylistRequest(7, None, False)),  # 4.2 decimal-integer allows it
        ([("_HLS_msn", str(MAX)), ("_HLS_part", str(MAX))], PlaylistRequest(MAX, MAX, False)),
        # not directives: cache busters, tokens, and other (reserved, unknown) _HLS_ names
        ([("t", "1"), ("_HLS_msn", "5"), ("t", "2"), ("token", "-x")], PlaylistRequest(5, None, False)),
        ([("_HLS_MSN", "abc"), ("_hls_msn", "x"), ("_HLS_push", "1")], PlaylistRequest(None, None, False)),
    ],
)
def test_parse_valid(params: list[tuple[str, str]], expected: PlaylistRequest) -> None:
    assert parse_playlist_query(params) == expected
    assert expected.blocking == (expected.msn is not None)


@pytest.mark.parametrize(
    "params",
    [
        # not a decimal-integer
        [("_HLS_msn", "")], [("_HLS_msn", "-1")], [("_HLS_msn", "+1")], [("_HLS_msn", " 1")],
        [("_HLS_msn", "1 ")], [("_HLS_msn", "1.0")], [("_HLS_msn", "0x1")], [("_HLS_msn", "1e3")],
        [("_HLS_msn", "１")], [("_HLS_msn", "٣")], [("_HLS_msn", "1\n")], [("_HLS_msn", "YES")],
        [("_HLS_msn", "1"), ("_HLS_part", "")], [("_HLS_msn", "1"), ("_HLS_part", "-1")],
        [("_HLS_msn", "1"), ("_HLS_part", "x")],
        # absurdly long or out of range
        [("_HLS_msn", "9" * 21)], [("_HLS_msn", str(MAX + 1))], [("_HLS_msn", "1" * 10_000)],
        [("_HLS_msn", "1"), ("_HLS_part", str(MAX + 1))],
        # repeated, even with the same value
        [("_HLS_msn", "1"), ("_HLS_msn", "1")], [("_HLS_msn", "1"), ("_HLS_msn", "2")],
        [("_HLS_msn", "1"), ("_HLS_part", "0"), ("_HLS_part", "0")],
        [("_HLS_skip", "YES"), ("_HLS_skip", "YES")],
        # 6.2.5.2: _HLS_part without _HLS_msn
        [("_HLS_part", "0")], [("_HLS_part", "3"), ("_HLS_skip", "YES")],
        # _HLS_skip is YES or v2, case-sensitive (4.2 enumerated-string)
        [("_HLS_skip", "")], [("_HLS_skip", "yes")], [("_HLS_skip", "NO")], [("_HLS_skip", "V2")],
        [("_HLS_skip", "v3")], [("_HLS_skip", "YES ")], [("_HLS_skip", "true")],
    ],
)
def test_parse_bad(params: list[tuple[str, str]]) -> None:
    with pytest.raises(BadDirective):
        parse_playlist_query(params)


def test_bad_directive_is_a_bad_name_without_echoing_input() -> None:
    assert issubclass(BadDirective, BadName) and issubclass(BadDirective, ValueError)
    with pytest.raises(BadName) as info:
        parse_playlist_query([("_HLS_msn", "<script>")])
    assert "<script>" not in str(info.value) and "_HLS_msn" in str(info.value)


NAMES = st.sampled_from(["_HLS_msn", "_HLS_part", "_HLS_skip", "t", "_HLS_x", ""]) | st.text(max_size=8)


@SETTINGS
@given(st.lists(st.tuples(NAMES, st.text(max_size=24)), max_size=6))
def test_random_queries_never_raise_anything_but_bad_directive(params: list[tuple[str, str]]) -> None:
    try:
        request = parse_playlist_query(params)
    except BadDirective:
        return
    assert request.part is None or request.msn is not None


@SETTINGS
@given(
    st.none() | st.integers(0, MAX),
    st.none() | st.integers(0, MAX),
    st.none() | st.sampled_from(["YES", "v2"]),
    st.lists(st.tuples(st.sampled_from(["t", "token", "_HLS_pathway"]), st.text(max_size=8)), max_size=3),
    st.randoms(use_true_random=False),
)
def test_valid_queries_round_trip(msn, part, skip, junk, rnd) -> None:  # type: ignore[no-untyped-def]
    if part is not None and msn is None:
        msn = 0
    params = list(junk)
    params += [("_HLS_msn", str(msn))] if msn is not None else []
    params += [("_HLS_part", str(part))] if part is not None else []
    params += [("_HLS_skip", skip)] if skip is not None else []
    rnd.shuffle(params)
    assert parse_playlist_query(params) == PlaylistRequest(msn, part, skip is not None, skip == "v2")


# -- blocking decisions -------------------------------------------------------------------------
def edge(newest: int = 100, complete: bool = False, parts: int = 2, previous_parts: int = 4,
         pps: int = 4, limit: float = 6.0) -> LiveEdge:
    return LiveEdge(newest, complete, parts, previous_parts, pps, limit)


@pytest.mark.parametrize(
    "e,hint",
    [
        (edge(parts=2), (100, 2)),
        (edge(parts=0), (100, 0)),  # part 0 not here yet
        (edge(parts=3), (100, 3)),
        (edge(parts=4), (101, 0)),  # 3 was the last the transcoder cuts
        (edge(parts=5), (101, 0)),  # one more than usual (29.97 fps)
        (edge(complete=True, parts=4), (101, 0)),
        (edge(complete=True, parts=0), (101, 0)),
    ],
)
def test_hint_is_the_part_after_the_last_listed(e: LiveEdge, hint: tuple[int, int]) -> None:
    assert e.hint == hint
    assert e.distance(*hint) == 1
    assert part_readiness(e, *hint, have_bytes=False) == WAIT


def test_last_msn_is_the_last_listed_segment() -> None:
    assert edge(complete=False).last_msn == 99
    assert edge(complete=True).last_msn == 100


@pytest.mark.parametrize(
    "e,msn,part,expected",
    [
        # _HLS_msn alone: a segment with that MSN or later is listed
        (edge(), 99, None, READY),
        (edge(), 100, None, WAIT),  # in progress
        (edge(complete=True), 100, None, READY),
        (edge(), 101, None, WAIT),  # last listed 99: up to 101 may block
        (edge(), 102, None, TOO_FAR),  # > last MSN + 2 (6.2.5.2)
        (edge(complete=True), 102, None, WAIT),
        (edge(complete=True), 103, None, TOO_FAR),
        (edge(), 0, None, READY),  # long gone: the whole playlist is delivered anyway (6.2.5.2)
        (edge(), 5, 900, READY),
        # _HLS_msn with _HLS_part
        (edge(parts=2), 100, 1, READY),
        (edge(parts=2), 100, 2, WAIT),  # the hinted part
        (edge(parts=2), 100, 3, WAIT),
        (edge(parts=2), 101, 0, WAIT),
        (edge(parts=2), 101, 3, WAIT),  # 5 parts past 100.1: within the Advance Part Limit (6)
        (edge(parts=2), 101, 4, TOO_FAR),  # 6 parts past... 7 > 6
        (edge(parts=2, limit=3.0), 101, 0, WAIT),  # 3 past
        (edge(parts=2, limit=3.0), 101, 1, TOO_FAR),
        (edge(parts=2), 100, 999, TOO_FAR),
        (edge(parts=0), 100, 0, WAIT),
        (edge(parts=0), 100, 5, WAIT),  # 6 past the last listed part (99's)
        (edge(parts=0), 100, 6, TOO_FAR),
        # 6.2.5.2: an index past a segment's final part means part 0 of the next segment
        (edge(parts=0, previous_parts=4), 99, 3, READY),
        (edge(parts=0, previous_parts=4), 99, 4, WAIT),  # = (100, 0), not here yet
        (edge(parts=1, previous_parts=4), 99, 4, READY),  # = (100, 0), here
        (edge(parts=0, previous_parts=4), 99, 10**6, WAIT),  # still just (100, 0): not too far
        (edge(complete=True, parts=4), 100, 4, WAIT),  # = (101, 0)
        (edge(complete=True, parts=4), 100, 3, READY),
        (edge(complete=True, parts=0), 100, 2, READY),  # listed without parts: it holds them all
        (edge(parts=0, previous_parts=0), 99, 3, READY),  # 99 listed without parts (or a gap)
        (edge(parts=0, complete=False), 98, 17, READY),  # 99 is listed after it
    ],
)
def test_playlist_readiness(e: LiveEdge, msn: int, part: int | None, expected: Readiness) -> None:
    assert playlist_readiness(e, msn, part) == expected


def test_a_segment_with_an_extra_part_still_blocks_on_it() -> None:
    # 29.97 fps: the transcoder may cut one part more than usual; until the segment closes, a
    # request for that part is a plain wait, and once it closed, it means the next segment
    assert playlist_readiness(edge(parts=4), 100, 4) == WAIT
    assert playlist_readiness(edge(parts=5), 100, 4) == READY
    assert part_readiness(edge(parts=4), 100, 4, have_bytes=False) == WAIT


@pytest.mark.parametrize(
    "e,seq,index,have,expected",
    [
        (edge(), 100, 0, True, READY),
        (edge(), 90, 0, True, READY),  # bytes still kept
        (edge(), 100, 2, False, WAIT),  # hinted
        (edge(), 101, 0, False, WAIT),  # a few parts ahead
        (edge(), 101, 3, False, WAIT),
        (edge(), 101, 4, False, UNKNOWN),  # beyond the Advance Part Limit
        (edge(), 100, 999, False, UNKNOWN),
        (edge(), 5000, 0, False, UNKNOWN),
        (edge(), 99, 2, False, UNKNOWN),  # closed segment without that part
        (edge(), 99, 4, False, UNKNOWN),
        (edge(), 10, 0, False, UNKNOWN),  # older than keep
        (edge(complete=True, parts=4), 100, 4, False, UNKNOWN),  # closed: takes no more parts
        (edge(complete=True, parts=4), 101, 0, False, WAIT),
    ],
)
def test_part_readiness(e: LiveEdge, seq: int, index: int, have: bool, expected: Readiness) -> None:
    assert part_readiness(e, seq, index, have) == expected


@SETTINGS
@given(
    st.integers(0, 10**9), st.booleans(), st.integers(0, 6), st.integers(0, 6), st.integers(1, 8),
    st.integers(0, 10**9 + 5), st.none() | st.integers(0, 50),
)
def test_readiness_is_monotonic_in_the_request(newest, complete, parts, prev, pps, msn, part) -> None:  # type: ignore[no-untyped-def]
    """Asking for less than a READY request is READY too; asking for more than a TOO_FAR one is
    TOO_FAR too (so a client can never be told to wait for something behind what it has)."""
    e = LiveEdge(newest, complete, parts, prev, pps, 6.0)
    got = playlist_readiness(e, msn, part)
    if got == READY and msn > 0:
        assert playlist_readiness(e, msn - 1, part) == READY
    if got == TOO_FAR:
        assert playlist_readiness(e, msn + 1, part) == TOO_FAR

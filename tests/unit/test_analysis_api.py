"""GET /api/analysis/{feed}: tags in a time range from the live window (near the edge) and the
analysis table (older), times as the time-shift playlists take them, 400 for bad parameters,
404 for a feed that is unknown or not analysed; through the delivery app's own routes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import json

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployments.delivery import pages
from orbitcast.analysis.table import AnalysisTable
from orbitcast.delivery.analysis_api import DEFAULT_SPAN_S, AnalysisAPI, parse_range
from orbitcast.delivery.playlists import iso_ms
from orbitcast.delivery.timeshift import BadWindow, Listed, Timeshift
from orbitcast.store import Store
from tests.unit.test_playlists_daterange import BASE, attrs, empty, feed, happy, window, when

NOW = BASE + 40.0  # the live window holds BASE+20.. (keep 14); the table the older ones


def api(tmp_path: Path) -> AnalysisAPI:
    w = window()
    feed(w, BASE + 20, BASE + 38)
    for seq in range(BASE + 30, BASE + 38):
        w.set_tag("iss", happy(seq) if seq < BASE + 34 else empty(seq))
    table = AnalysisTable(Store(str(tmp_path)), flush_every=1000)
    for seq in range(BASE, BASE + 32):  # overlaps the window's tags at BASE+30, BASE+31
        table.add("iss", empty(seq), when(seq), 1.0)
    table.flush()
    return AnalysisAPI(w, table.query, ["iss", "dock"], ["iss"], 3600.0, lambda: NOW)


def ask(a: AnalysisAPI, feed: str = "iss", **params: str) -> tuple[int, dict]:
    answer = asyncio.run(a.answer(feed, list(params.items())))
    return answer.status, answer.body


def test_tags_from_the_table_and_the_live_window_by_seq(tmp_path: Path) -> None:
    a = api(tmp_path)
    status, body = ask(a, start=str(BASE + 10), end="2023-11-14T22:13:56Z")  # BASE + 36
    assert status == 200 and body["feed"] == "iss"
    assert body["start"] == "2023-11-14T22:13:30.000Z" and body["end"] == "2023-11-14T22:13:56.000Z"
    segs = body["segments"]
    assert [s["seq"] for s in segs] == list(range(BASE + 10, BASE + 32)) + list(range(BASE + 32, BASE + 36))
    by_seq = {s["seq"]: s for s in segs}
    # BASE+30 is in both: the window's (a face) wins over the table's row
    assert by_seq[BASE + 30]["faces"] == 1 and by_seq[BASE + 30]["expression"] == "happy"
    assert by_seq[BASE + 30]["confidence"] == pytest.approx(0.9123, abs=1e-4)
    assert by_seq[BASE + 30]["probabilities"]["happy"] == pytest.approx(0.9123, abs=1e-4)
    assert by_seq[BASE + 30]["program_date_time"] == "2023-11-14T22:13:50.000Z"
    assert by_seq[BASE + 12] == {"seq": BASE + 12, "program_date_time": "2023-11-14T22:13:32.000Z", "duration": 1.0,
                                 "faces": 0, "expression": None, "confidence": None, "frames": 2, "probabilities": {}}
    assert by_seq[BASE + 35]["faces"] == 0


def test_without_a_range_the_last_minute(tmp_path: Path) -> None:
    status, body = ask(api(tmp_path))
    assert status == 200
    assert body["end"] == "2023-11-14T22:14:00.000Z"  # now
    assert [s["seq"] for s in body["segments"]] == list(range(BASE, BASE + 38))  # all of it: within 60 s
    assert DEFAULT_SPAN_S == 60.0


@pytest.mark.parametrize("params,why", [
    ({"start": "yesterday"}, "start: expected ISO 8601"),
    ({"start": str(BASE + 10), "end": str(BASE + 5)}, "end must be after start"),
    ({"start": str(BASE - 7200), "end": str(BASE)}, "longer than 3600 s"),
    ({"end": "2023-13-45T99:00:00Z"}, "end: not an ISO 8601 time"),
    ({"start": "1"}, "before 2000"),
])
def test_bad_parameters_are_400(tmp_path: Path, params: dict, why: str) -> None:
    status, body = ask(api(tmp_path), **params)
    assert status == 400 and why in body["error"]


def test_parse_range_takes_what_time_shift_takes() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    start, end = parse_range([("start", "2024-05-01T11:59:00+02:00"), ("end", "1714564800")], now, 86400)
    assert start == datetime(2024, 5, 1, 9, 59, tzinfo=timezone.utc) and end == now
    with pytest.raises(BadWindow, match="twice"):
        parse_range([("start", "1714564000"), ("start", "1714564001")], now, 86400)


def test_unknown_and_unanalysed_feeds_are_404_and_malformed_names_400(tmp_path: Path) -> None:
    a = api(tmp_path)
    assert ask(a, "nope") == (404, {"error": "feed nope not found"})
    status, body = ask(a, "dock")
    assert status == 404 and "not analysed" in body["error"]
    assert ask(a, "../etc")[0] == 400


def get(app, path: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
    """One GET through the ASGI app, as the replica's server passes it on."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "headers": [], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "scheme": "http",
             "http_version": "1.1", "root_path": ""}
    asyncio.run(app(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_the_route_of_the_delivery_app(tmp_path: Path) -> None:
    # pages() reads only this attribute of its replica for this route
    app = pages(SimpleNamespace(analysis=api(tmp_path)))
    status, headers, body = get(app, "/api/analysis/iss", f"start={BASE + 33}&end={BASE + 35}")
    assert status == 200 and headers["cache-control"] == "no-store" and headers["content-type"] == "application/json"
    assert [s["seq"] for s in json.loads(body)["segments"]] == [BASE + 33, BASE + 34]
    assert get(app, "/api/analysis/iss", "start=soon")[0] == 400
    assert get(app, "/api/analysis/moon")[0] == 404
    status, _, body = get(app, "/api/analysis/iss", "end=x")
    assert status == 400 and b"Traceback" not in body



def fuzz_api() -> AnalysisAPI:
    w = window()
    feed(w, BASE, BASE + 5)
    w.set_tag("iss", happy(BASE + 2))
    return AnalysisAPI(w, None, ["iss"], ["iss"], 3600.0, lambda: NOW)


FUZZ_API = fuzz_api()


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["start", "end", "x"]), st.text(max_size=30) | st.sampled_from(
    [str(BASE), str(BASE + 3), "2023-11-14T22:13:21Z", "2023-11-14T22:13:21+23:59", "9" * 12, "2000-01-01"])), max_size=3),
    st.sampled_from(["iss", "dock", ""]) | st.text(max_size=12))
def test_any_query_gets_an_answer_never_an_exception(params: list[tuple[str, str]], name: str) -> None:
    answer = asyncio.run(FUZZ_API.answer(name, params))
    assert answer.status in (200, 400, 404), (params, name, answer.body)
    assert answer.status == 200 or set(answer.body) == {"error"}
    json.dumps(answer.body)  # always JSON


def test_time_shift_playlists_carry_the_tags_of_an_analysed_feed(tmp_path: Path) -> None:
    """A time-shift range lists each segment's DATERANGE as the live playlist did: the table's
    for old seqs, the window's near the edge; a feed not analysed gets none."""
    a = api(tmp_path)
    w = a.window
    # catalog rows for every seq of the range (what the packager writes beside the table)
    rows = [Listed.at(seq, float(seq), 1.0, datetime.fromtimestamp(seq, tz=timezone.utc), None)
            for seq in range(BASE, BASE + 38)]

    def catalog(feed, rendition, start, end):  # noqa: ANN001, ANN202 - a RowQuery
        return [r for r in rows if start.timestamp() * 1000 <= r.pdt_ms < end.timestamp() * 1000]

    def answer(analysed: list[str]) -> str:
        ts = Timeshift(w, catalog, None, 1.0, 3600.0, lambda: NOW, a.table, analysed)
        got = asyncio.run(ts.media("iss", "360p", [("start", str(BASE + 10)), ("end", str(BASE + 36))]))
        assert got.status == 200
        return got.body.decode()

    text = answer(["iss"])
    pl = m3u8.loads(text)
    ranges = {int(d.id.removeprefix("expr-")): d for s in pl.segments for d in s.dateranges}
    assert sorted(ranges) == list(range(BASE + 10, BASE + 36))  # one per segment, table and window
    assert attrs(ranges[BASE + 30]) == {"x_faces": "1", "x_expression": '"happy"', "x_confidence": "0.912"}  # the window's
    assert attrs(ranges[BASE + 12]) == {"x_faces": "0"}  # the table's
    seg30 = next(s for s in pl.segments if s.uri == f"{BASE + 30}.m4s")
    assert ranges[BASE + 30].start_date == iso_ms(seg30.current_program_date_time)
    assert "#EXT-X-DATERANGE" not in answer([])

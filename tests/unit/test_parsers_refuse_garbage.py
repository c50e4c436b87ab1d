"""Every parser a stranger can reach, fed bytes and text at random (hypothesis, a fixed seed and
a bounded number of examples): each answers with its result or its own declared refusal, never
with any other exception. Near-valid inputs are built from valid ones, so the search reaches
past the first check of each parser."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbitcast.clock import nmea
from orbitcast.clock.ntp_packet import NTPPacket, decode
from orbitcast.config import ConfigError, parse_config
from orbitcast.delivery.blocking import parse_playlist_query
from orbitcast.delivery.live_http import LiveHTTP
from orbitcast.delivery.names import BadName, parse_media_name
from orbitcast.delivery.replica import ReplicaState
from orbitcast.delivery.signed_urls import Refused, parse, sign, split_path
from orbitcast.delivery.updates import Batch
from orbitcast.delivery.window import InitUpdate, PartUpdate, SegmentUpdate
from orbitcast.gateway.errors import BadRequest
from orbitcast.gateway.multipart import parse_form_data
from orbitcast.media import fmp4
from orbitcast.sealing.callback import build_callback_fields, encode_callback, parse_callback_body
from orbitcast.sealing.errors import SealingError
from tests.unit.test_window import POLICY, S, info, part, whole

FUZZ = settings(max_examples=300, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def mutations(draw: st.DrawFn, valid: bytes) -> bytes:
    """The valid input cut, extended, or with a few bytes changed."""
    b = bytearray(valid)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(b) - 1))
        b[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(b)))
    return bytes(b[:cut]) + draw(st.binary(max_size=16))


# -- NTP packets on the authority's UDP port ------------------------------------------------------
VALID_NTP = NTPPacket(version=4, mode=3, tx_ts=(3_900_000_000 << 32)).encode()


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutations(VALID_NTP)))
def test_ntp_datagrams_decode_or_are_refused(data: bytes) -> None:
    try:
        decode(data)
    except ValueError:
        pass


# -- NMEA lines from a GPS reference --------------------------------------------------------------
VALID_RMC = nmea.format_rmc(1_700_000_000.25)


@FUZZ
@given(st.one_of(st.text(max_size=100), mutations(VALID_RMC.encode()).map(lambda b: b.decode("latin-1"))))
def test_nmea_lines_parse_or_are_refused(line: str) -> None:
    try:
        nmea.parse(line)
    except nmea.NMEAError:
        pass


# -- the gateway API's multipart bodies and the callbacks it posts --------------------------------
BOUNDARY = "xYzZY"
VALID_FORM = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"blob\"\r\n\r\nBYTES\r\n--{BOUNDARY}--\r\n").encode()


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutations(VALID_FORM)),
       st.sampled_from([f"multipart/form-data; boundary={BOUNDARY}", "multipart/form-data", "text/plain",
                        'multipart/form-data; boundary=""', "multipart/form-data; boundary=" + "b" * 300]))
def test_multipart_bodies_parse_or_are_a_400(body: bytes, content_type: str) -> None:
    try:
        parse_form_data(body, content_type)
    except BadRequest:
        pass


def _upload_app():  # type: ignore[no-untyped-def]
    import tempfile
    from pathlib import Path

    from orbitcast.gateway.http import build_gateway_app
    from tests.unit.gateway_fixtures import make_gateway, new_account

    account = new_account("*ORBPACK")
    gateway = make_gateway(Path(tempfile.mkdtemp(prefix="orbitcast-fuzz-")), [account.config()], max_blob_bytes=256,
                           rate_per_client=1e9, burst_per_client=10**9)
    return build_gateway_app(gateway), f"from={account.identity}&secret={account.secret}".encode()


UPLOAD_APP, UPLOAD_AUTH = _upload_app()


@FUZZ
@given(st.one_of(st.just(VALID_FORM), mutations(VALID_FORM), st.binary(max_size=400)),
       st.just(f"multipart/form-data; boundary={BOUNDARY}") | st.sampled_from([f'multipart/form-data; boundary="{BOUNDARY}"',
                        "multipart/form-data", "text/plain", "", 'multipart/form-data; boundary=""',
                        "multipart/form-data; boundary=" + "b" * 300, "multipart/form-data; boundary=\u00ff"]),
       st.lists(st.integers(1, 64), max_size=8), st.booleans())
def test_upload_blob_bodies_get_an_answer_never_a_5xx(body: bytes, content_type: str, cuts: list[int],
                                                      declared: bool) -> None:
    """POST /upload_blob through the gateway's ASGI app, the body arriving in pieces: 200, 400 or
    413 with a short plain reason."""
    chunks, rest = [], body
    for n in cuts:
        chunks.append(rest[:n])
        rest = rest[n:]
    chunks.append(rest)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-type", content_type.encode("latin-1", "replace"))]
    if declared:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/upload_blob", "raw_path": b"/upload_blob",
             "query_string": UPLOAD_AUTH, "headers": headers, "client": ("127.0.0.1", 5000), "server": ("t", 80),
             "scheme": "http", "http_version": "1.1", "root_path": ""}
    asyncio.run(UPLOAD_APP(scope, receive, send))
    status = sent[0]["status"]
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    assert status in (200, 400, 413), (body, content_type, status, answer)
    assert status == 200 or (len(answer) < 80 and b"Traceback" not in answer)


VALID_CALLBACK = encode_callback(build_callback_fields(
    "secret", from_id="*ORBCAST", to_id="*ORBEDGE", message_id="00" * 8, date=1_700_000_000, nonce_hex="11" * 24, box_hex="22" * 40))


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutations(VALID_CALLBACK)))
def test_callback_bodies_parse_or_are_refused(raw: bytes) -> None:
    try:
        parse_callback_body(raw)
    except SealingError:
        pass


# -- the fMP4 reader (segments a recording or a transcoder hands over) ----------------------------
@FUZZ
@given(st.binary(max_size=200))
def test_mp4_boxes_read_or_are_refused(data: bytes) -> None:
    try:
        list(fmp4.iter_boxes(data))
        fmp4.tracks_of(data)
        fmp4.fragment_decode_time(data, 1)
        fmp4.fragment_duration(data, 1)
    except fmp4.Fmp4Error:
        pass


# -- configuration files ----------------------------------------------------------------------------
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from(["feeds", "ladder", "segment_duration", "part_duration", "live_window", "store", "serve",
                          "threema", "clock", "transcoders", "part_hold_back"])


@FUZZ
@given(st.dictionaries(fields, yaml_values, max_size=4) | yaml_values)
def test_config_files_load_or_name_what_is_wrong(data: object) -> None:
    text = yaml.safe_dump(data)
    try:
        parse_config(yaml.safe_load(text))
    except ConfigError as err:
        assert "Traceback" not in str(err)


# -- names, directives and tokens in viewer URLs ----------------------------------------------------
@FUZZ
@given(st.text(max_size=40))
def test_media_names_parse_or_are_refused(name: str) -> None:
    try:
        seq, index = parse_media_name(name)
        assert seq >= 0 and (index is None or index >= 0)
    except BadName:
        pass


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["_HLS_msn", "_HLS_part", "_HLS_skip", "v", "x"]), st.text(max_size=24)),
                max_size=5))
def test_playlist_directives_parse_or_are_refused(params: list[tuple[str, str]]) -> None:
    try:
        parse_playlist_query(params)
    except BadName:
        pass


KEYS = {"k": "k" * 40}
VALID_TOKEN = str(sign(KEYS, "k", "iss", 1_900_000_000)).encode()


@FUZZ
@given(st.one_of(st.text(max_size=120), mutations(VALID_TOKEN).map(lambda b: b.decode("latin-1"))))
def test_viewer_tokens_parse_or_are_refused(text: str) -> None:
    try:
        parse(text)
        split_path("/live/t/" + text + "/iss/master.m3u8")
    except Refused:
        pass


# -- the viewer path itself: any path and query, no 5xx and no trace --------------------------------
def _replica() -> LiveHTTP:
    state = ReplicaState(POLICY)
    ups = [InitUpdate("iss", info("360p"), b"init"), *(PartUpdate(part(S, i)) for i in range(4)),
           SegmentUpdate(whole(S)), PartUpdate(part(S + 1, 0))]
    state.apply(Batch("edge", 1, ups, False, {}))

    async def fallback(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    live = LiveHTTP(state, fallback, POLICY.segment_duration, KEYS, tokens_required=False)
    live.hold_s = 0.001  # a blocking request for a part that will not come answers at once
    return live


LIVE = _replica()
segment = st.sampled_from(["live", "iss", "360p", "720p", "t", "master.m3u8", "index.m3u8", "init.mp4", f"{S}.m4s",
                           f"{S}.1.m4s", f"{S + 1}.0.m4s", "..", ".", "", str(VALID_TOKEN, "ascii")]) | st.text(max_size=12)
query_key = st.sampled_from(["_HLS_msn", "_HLS_part", "_HLS_skip", "v", "&", "="]) | st.text(max_size=6)


@FUZZ
@given(st.lists(segment, min_size=1, max_size=6), st.lists(st.tuples(query_key, st.text(max_size=10)), max_size=4),
       st.sampled_from(["GET", "HEAD", "POST"]))
def test_any_live_request_gets_an_answer_never_a_5xx_or_a_trace(parts: list[str], query: list[tuple[str, str]],
                                                              method: str) -> None:
    path = "/live/" + "/".join(parts)
    raw_query = "&".join(f"{k}={v}" for k, v in query).encode("utf-8", "surrogatepass")
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": raw_query, "headers": [],
             "client": ("127.0.0.1", 5000)}
    asyncio.run(LIVE(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    # 503: a held request whose part did not come in time (Retry-After), the one 5xx LL-HLS asks for
    assert status in (200, 400, 403, 404, 405, 503), (path, raw_query, status, body)
    assert b"Traceback" not in body and len(body) < 200 or status == 200

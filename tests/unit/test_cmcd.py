"""CMCD (CTA-5004) from headers and the query: the spec's own examples, what hls.js sends, and
garbage, which is ignored and counted, never raised."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitcast.delivery.cmcd import CmcdError, Token, parse, read

SID = "6e2fb550-c457-11e9-bb97-0800200c9a66"


def test_the_spec_examples_parse_to_typed_values() -> None:
    # CTA-5004 appendix: a query payload of every type
    values = parse(f'bl=21300,br=3200,bs,cid="faec5fc2-ac30-11ea-bb37-0242ac130002",d=4004,dl=18500,mtp=48100,'
                   f'nor="..%2F300kbps%2Ftrack.m4v",nrr="12323-48763",ot=v,pr=1.08,rtp=12000,sf=d,sid="{SID}",st=v,su,tb=6000')
    assert values["bl"] == 21300 and values["br"] == 3200 and values["tb"] == 6000
    assert values["bs"] is True and values["su"] is True
    assert values["sid"] == SID and values["cid"] == "faec5fc2-ac30-11ea-bb37-0242ac130002"
    assert values["ot"] == "v" and isinstance(values["ot"], Token) and not isinstance(values["sid"], Token)
    assert values["pr"] == pytest.approx(1.08)
    assert values["nrr"] == "12323-48763"


def test_strings_keep_commas_quotes_and_backslashes() -> None:
    assert parse(r'cid="a,b",sid="say \"hi\" \\ bye"') == {"cid": "a,b", "sid": 'say "hi" \\ bye'}


def test_hls_js_headers_are_read_together() -> None:
    # what hls.js 1.x sends with cmcd.useHeaders on a part request
    headers = [
        (b"host", b"127.0.0.1"),
        (b"cmcd-object", b"br=630,d=200,ot=av,tb=630"),
        (b"cmcd-request", b"bl=1800,mtp=9900,su"),
        (b"cmcd-session", f'sid="{SID}",sf=h,st=l'.encode()),
        (b"cmcd-status", b"bs"),
    ]
    reading = read(headers, b"")
    assert reading is not None and reading.invalid == 0 and reading.via == "header"
    assert reading.sid == SID and reading.buffer_s == pytest.approx(1.8)
    assert reading.values["st"] == "l" and reading.values["bs"] is True and reading.values["ot"] == "av"


def test_the_query_form_is_url_encoded_and_other_parameters_are_left_alone() -> None:
    payload = f'bl=500,ot=v,sid="{SID}"'
    query = f"_HLS_msn=12&_HLS_part=3&CMCD={quote(payload)}".encode()
    reading = read([], query)
    assert reading is not None and reading.via == "query" and reading.invalid == 0
    assert reading.sid == SID and reading.values["bl"] == 500
    assert read([], b"_HLS_msn=12&_HLS_part=3") is None
    assert read([(b"accept", b"*/*")], b"") is None


def test_header_and_query_together() -> None:
    reading = read([(b"cmcd-request", b"bl=100")], f"CMCD={quote('sid=' + chr(34) + 'x' + chr(34))}".encode())
    assert reading is not None and reading.via == "both" and reading.sid == "x" and reading.values["bl"] == 100


@pytest.mark.parametrize("payload", [
    'sid="unterminated', "bl=1,,br=2", "bl=1,", "=1", "bl=1 br=2", 'sid="\x01"', "BL=?", "bl=1e5",
    'sid="a"x', "ot=v;br=1", "k\u00e9y=1", 'sid="' + "a" * 5000 + '"',
])
def test_malformed_payloads_raise_a_cmcd_error(payload: str) -> None:
    with pytest.raises(CmcdError):
        parse(payload)


def test_a_malformed_payload_is_ignored_and_counted_the_others_kept() -> None:
    reading = read([(b"cmcd-request", b'bl=1,"'), (b"cmcd-session", b'sid="ok"')], b"")
    assert reading is not None and reading.invalid == 1 and reading.values == {"sid": "ok"}


def test_known_keys_with_the_wrong_type_are_dropped_and_counted() -> None:
    too_long = "s" * 65  # sid and cid: 64 characters at most
    reading = read([(b"cmcd-request", f'bl="fast",br=-3,ot=zz,su=7,sid="{too_long}",pr=1.5,d=4004'.encode())], b"")
    assert reading is not None
    assert reading.invalid == 5 and reading.values == {"pr": 1.5, "d": 4004}
    assert reading.sid is None and reading.buffer_s is None


def test_unknown_and_custom_keys_are_kept_as_they_came() -> None:
    assert parse('com.example-myNumericKey=500,com.example-myStringKey="myStringValue",nrr="0-99",v=2,sta=p') == {
        "com.example-myNumericKey": 500, "com.example-myStringKey": "myStringValue", "nrr": "0-99", "v": 2,
        "sta": "p"}


@given(st.text(max_size=300))
def test_any_text_is_read_or_counted_never_raised(text: str) -> None:
    reading = read([(b"cmcd-request", text.encode("utf-8", "surrogatepass"))], f"CMCD={quote(text, safe='')}".encode())
    assert reading is not None and reading.invalid >= 0


@given(st.binary(max_size=300))
def test_any_bytes_in_a_header_are_read_or_counted_never_raised(raw: bytes) -> None:
    reading = read([(b"cmcd-session", raw), (b"cmcd-object", raw)], b"CMCD=" + raw)
    assert reading is not None

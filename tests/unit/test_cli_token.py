"""`orbitcast token`: a signed URL that the server's check admits, or a clear refusal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from orbitcast.delivery.signed_urls import check, parse
from pipelines.cli import main

KEYS = {"old": "o" * 40, "new": "n" * 40}


def config(tmp_path: Path, **serve: object) -> Path:
    p = tmp_path / "orbitcast.yaml"
    # in the order written, as a person writes the file: the last key listed signs
    p.write_text(yaml.safe_dump({"feeds": [{"name": "iss", "source": "lavfi:testsrc2"}], "serve": {"port": 8123, **serve}},
                                sort_keys=False))
    return p


def test_it_prints_a_signed_master_url_the_server_admits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "iss", "--config", str(config(tmp_path, viewer_auth={"keys": KEYS})), "--ttl", "60"]) == 0
    out, err = capsys.readouterr()
    url = out.strip()
    assert url.startswith("http://127.0.0.1:8123/live/t/new~") and url.endswith("/iss/master.m3u8")
    token = parse(url.split("/live/t/")[1].split("/")[0])
    check(KEYS, token, "iss", time.time(), None)  # signed with the newest key, admitted
    assert token.expires <= time.time() + 61 and "viewer page: http://127.0.0.1:8123/?feed=iss&token=" in err


@pytest.mark.parametrize("serve,args,message", [
    ({}, ["iss"], "no serve.viewer_auth.keys"),
    ({"viewer_auth": {"keys": KEYS}}, ["mars"], "no feed 'mars'"),
    ({"viewer_auth": {"keys": KEYS}}, ["iss", "--key", "gone"], "no viewer key 'gone'"),
])
def test_what_it_cannot_sign_is_said_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 serve: dict, args: list[str], message: str) -> None:
    assert main(["token", *args, "--config", str(config(tmp_path, **serve))]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1

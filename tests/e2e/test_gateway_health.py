"""The embedded gateway's health in /api/feeds on the live pipeline: queues and dead letters
reach the viewer port (Delivery app -> threema app -> gateway actor), and a message the edge
refuses becomes a counted dead letter with its reason and the alarm, while the feeds go on."""

from __future__ import annotations

import os
import time

import pytest
import ray
import requests

pytestmark = pytest.mark.e2e


def _gateway(live) -> dict:
    deadline = time.monotonic() + 60  # the threema app deploys in the background at start
    while True:
        body = live.get("/api/feeds").json()
        status = body.get("gateway", {})
        if "recipients" in status or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def test_feeds_api_shows_the_gateway_queues_and_a_refused_message_as_a_dead_letter(live) -> None:
    edge = live.config.threema.edge
    sender = live.config.threema.sender
    status = _gateway(live)
    assert status["recipients"][edge]["dead_letters"] == 0, status
    assert status["recipients"][edge]["refused_queue_full"] == 0
    assert status["queue_depth"] >= 0 and isinstance(status["alarm"], bool)
    before = live.feeds()["synth"]["last_segment"]["seq"]

    # A box the edge cannot open, sent through the public HTTP API as the packager's identity:
    # the edge's receiver answers 400, so the gateway gives it up at once.
    secret = next(a.secret for a in ray.get(live.pipeline.gateway.config.remote()).identities if a.identity == sender)
    response = live.get("/threema/credits", params={"from": sender, "secret": secret})
    assert response.status_code == 200
    sent = requests.post(f"{live.base}/threema/send_e2e", timeout=10, data={
        "from": sender, "secret": secret, "to": edge, "nonce": os.urandom(24).hex(), "box": os.urandom(64).hex()})
    assert sent.status_code == 200, sent.text
    message_id = sent.text

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        report = _gateway(live)["recipients"][edge]
        if report["dead_letters"] >= 1:
            break
        time.sleep(0.5)
    assert report["dead_letters"] == 1 and report["alarm"] and report["last_reason"] == "http_400", report
    assert [letter["message_id"] for letter in report["recent"]] == [message_id]
    assert report["recent"][0]["attempts"] == 1
    deadline = time.monotonic() + 30
    while live.feeds()["synth"]["last_segment"]["seq"] < before + 2:  # the feed goes on
        assert time.monotonic() < deadline, "synth stopped publishing"
        time.sleep(0.5)

"""The analysis stage's tags sealed to subscribers (optional, per recipient `tags: true`): who
gets them, and the text each one is: JSON that the official SDK's receiver opens as a text
message (tests/e2e/test_analysis_live.py) and that reads back to the summary it was made of."""

from __future__ import annotations

import json

from nacl.public import PrivateKey

from orbitcast.analysis.results import SegmentSummary
from orbitcast.config import parse_config
from orbitcast.sealed_delivery import parse_tag_text, recipients_for, tag_recipients, tag_text
from orbitcast.sealing.envelope import open_envelope
from orbitcast.sealing.keys import generate_key_pair
from orbitcast.sealing.messages import TextMessage, decode_message
from orbitcast.sealing.sealer import SegmentSealer


def _public() -> str:
    return "public:" + bytes(PrivateKey.generate().public_key).hex()


def config(analysed: list[str]) -> object:
    return parse_config({
        "feeds": [{"name": "astro", "source": "lavfi:testsrc2"}, {"name": "iss", "source": "lavfi:testsrc2"}],
        "analysis": {"enabled": True, "feeds": analysed},
        "threema": {"recipients": [
            {"identity": "*TAGSALL", "public_key": _public(), "tags": True},
            {"identity": "*TAGSISS", "public_key": _public(), "tags": True, "feeds": ["iss"]},
            {"identity": "*MEDIA01", "public_key": _public()},
        ]},
    })


def test_only_the_subscribers_that_asked_get_the_tags_of_their_analysed_feeds() -> None:
    cfg = config(["astro"])
    assert set(tag_recipients(cfg, "astro")) == {"*TAGSALL"}  # *TAGSISS subscribes to iss only
    assert tag_recipients(cfg, "iss") == {}  # iss is not analysed
    assert set(tag_recipients(config([]), "iss")) == {"*TAGSALL", "*TAGSISS"}  # every feed analysed
    # tags change nothing of who gets the media
    assert "*MEDIA01" in recipients_for(cfg, PrivateKey.generate().public_key, "astro", "360p")


def test_a_tag_is_json_of_its_summary_and_opens_as_a_text_message() -> None:
    summary = SegmentSummary(1_796_400_000, frames=2, faces=1, expression="happy", confidence=0.91234,
                             probabilities={"happy": 0.91234, "neutral": 0.08766}, start=12.1, end=12.6)
    text = tag_text("astro", summary.as_dict())
    parsed = parse_tag_text(text)
    assert parsed is not None and parsed["feed"] == "astro" and parsed["class"] == "org.orbitcast.expression"
    assert SegmentSummary.from_dict(parsed) == SegmentSummary.from_dict(summary.as_dict())
    assert parse_tag_text("hello") is None and parse_tag_text(json.dumps({"class": "other"})) is None
    # sealed to a subscriber with the sender's key; the subscriber opens it with its own
    sender, receiver = generate_key_pair(), generate_key_pair()
    envelope = SegmentSealer(sender).seal_text("*TAGSALL", receiver.public, text)
    opened = open_envelope(envelope.nonce, envelope.box, receiver.private, sender.public)
    message = decode_message(opened.type, opened.body)
    assert isinstance(message, TextMessage) and parse_tag_text(message.text) == parsed

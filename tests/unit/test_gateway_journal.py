"""Undelivered messages outlive the gateway: what it accepted and did not settle is kept in the
store and delivered by the next gateway on that store, in order, each once; what it settles at
once is never written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from orbitcast.gateway.callback_app import build_callback_app
from orbitcast.gateway.delivery import RequestsPoster
from orbitcast.gateway.journal import JournalKeeper, QueueJournal
from orbitcast.gateway.queues import QueuedMessage, RecipientQueue
from orbitcast.sealing.receiver import Received, Receiver
from orbitcast.sealing.sealer import SegmentSealer
from tests.conftest import reserved_port

try:
    from tests.unit.gateway_fixtures import ServerThread, make_gateway, new_account, wait_for
except ImportError:
    from gateway_fixtures import ServerThread, make_gateway, new_account, wait_for  # type: ignore[no-redef]


def _message(n: int, to: str = "*ORBEDGE", date: int = 1_800_000_000) -> QueuedMessage:
    return QueuedMessage(message_id=f"{n:016x}", from_id="*ORBPACK", to_id=to, date=date,
                         nonce_hex="00" * 24, box_hex=f"{n:02x}" * 40)


def _kept(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def test_a_message_is_kept_once_it_has_waited_and_leaves_once_settled(tmp_path: Path) -> None:
    now = [0.0]
    queue = RecipientQueue("*ORBEDGE", 100, clock=lambda: now[0])
    keeper = JournalKeeper(QueueJournal.from_uri(str(tmp_path / "queues")), lambda: {"*ORBEDGE": queue}, after_s=1.0)
    first, second = _message(1), _message(2)
    queue.put(first)
    now[0] = 0.5
    queue.put(second)
    keeper.keep()
    assert _kept(tmp_path) == []  # neither has waited a second: a send never waits for the store
    now[0] = 1.2
    keeper.keep()
    assert [p.stem for p in _kept(tmp_path)] == [first.message_id]
    queue.done(first)
    now[0] = 1.6
    keeper.keep()
    assert [p.stem for p in _kept(tmp_path)] == [second.message_id]
    restored = QueueJournal.from_uri(str(tmp_path / "queues")).load()
    assert [(m.message_id, m.box_hex, m.nonce_hex, m.date) for m in restored] == \
        [(second.message_id, second.box_hex, second.nonce_hex, second.date)]
    queue.done(second)
    keeper.keep()
    assert _kept(tmp_path) == []


def test_a_file_that_cannot_be_read_is_left_in_place_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = QueueJournal.from_uri(str(tmp_path))
    journal.write(_message(7))
    bad = tmp_path / "_ORBEDGE" / "ffffffffffffffff.json"
    bad.write_text("{not json")
    wrong = tmp_path / "_ORBEDGE" / "eeeeeeeeeeeeeeee.json"
    wrong.write_text(json.dumps({"message_id": "e" * 16, "to_id": "../../etc"}))
    with caplog.at_level(logging.WARNING):
        loaded = journal.load()
    assert [m.message_id for m in loaded] == [f"{7:016x}"]
    assert bad.exists() and wrong.exists()
    assert "ffffffffffffffff.json" in caplog.text and "eeeeeeeeeeeeeeee.json" in caplog.text


def test_undelivered_messages_outlive_the_gateway_and_arrive_in_order_once(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    journal = tmp_path / "queues"
    settings = dict(queue_journal=str(journal), journal_after_s=0.1, retry_initial_s=0.01, retry_max_s=0.05)
    # The recipient is down: nothing listens at its callback.
    down = f"http://127.0.0.1:{reserved_port()}/callback"
    first = make_gateway(tmp_path, [pack.config(), edge.config(callback_url=down)], **settings)
    first.start_delivery(RequestsPoster(timeout_s=1))
    sealer = SegmentSealer(pack.keys)
    sent = [first.send_e2e("*ORBPACK", "*ORBEDGE", e.nonce_hex, e.box_hex)
            for e in (sealer.seal_text("*ORBEDGE", edge.keys.public, f"m{i}") for i in range(5))]
    assert wait_for(lambda: len(_kept(journal)) == 5, timeout=10)
    # The gateway's process dies: nothing is settled, nothing more is written.
    first.stop_delivery()
    assert first.journal is not None
    first.journal.stop()

    got: list[Received] = []
    receiver = Receiver(edge.identity, edge.keys, edge.secret, {"*ORBPACK": pack.keys.public}.get)
    with ServerThread(build_callback_app(receiver, got.append)) as recipient:
        second = make_gateway(tmp_path, [pack.config(), edge.config(callback_url=recipient.url + "/callback")],
                              **settings)
        assert second.counters["restored"] == 5
        assert [m.message_id for m in second.pending("*ORBEDGE")] == sent
        second.start_delivery(RequestsPoster(timeout_s=5))
        try:
            assert wait_for(lambda: len(got) == 5)
            assert wait_for(lambda: _kept(journal) == [])  # settled: gone from the store too
        finally:
            second.close()
    assert [r.message_id for r in got] == sent  # each once, in the order they were accepted
    assert [r.message.text for r in got] == [f"m{i}" for i in range(5)]  # type: ignore[union-attr]
    assert all(second.message_status(i).state == "delivered" for i in sent)


def test_a_restored_message_is_as_old_as_it_is_and_expires_as_a_dead_letter(tmp_path: Path) -> None:
    pack, edge = new_account("*ORBPACK"), new_account("*ORBEDGE")
    journal = QueueJournal.from_uri(str(tmp_path / "queues"))
    stale = _message(3, date=1_000)  # accepted long ago, beyond max_age_s
    journal.write(stale)
    gateway = make_gateway(tmp_path, [pack.config(), edge.config(callback_url=f"http://127.0.0.1:{reserved_port()}/cb")],
                           queue_journal=str(tmp_path / "queues"), max_age_s=300)
    gateway.start_delivery(RequestsPoster(timeout_s=1))
    try:
        assert wait_for(lambda: gateway.delivery_status()["dead_letters"] == 1)
    finally:
        gateway.close()
    assert gateway.message_status(stale.message_id).state == "dead_letter"
    assert "expired" in (gateway.message_status(stale.message_id).reason or "")
    assert _kept(tmp_path / "queues") == []

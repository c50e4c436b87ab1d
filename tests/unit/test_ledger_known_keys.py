"""Ledger keys pinned on first use (`known_keys`): the known-ledgers file of `orbitcast verify`."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from orbitcast.ledger.known_keys import (
    KnownKeysError,
    LedgerKeyChanged,
    Trust,
    default_path,
    origin_of,
    read_known,
    trust_on_first_use,
)

A = SigningKey(b"a" * 32).verify_key
B = SigningKey(b"b" * 32).verify_key


def test_first_use_pins_the_key_in_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "config" / "orbitcast" / "known_ledgers"
    assert trust_on_first_use(path, "http://edge.test:8000/ledger", A) is Trust.FIRST_USE
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert lines == [f"http://edge.test:8000 ed25519:{bytes(A).hex()}"]


def test_the_same_key_passes_on_later_runs_and_the_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "known_ledgers"
    trust_on_first_use(path, "http://edge.test:8000/ledger", A)
    before = path.read_text()
    assert trust_on_first_use(path, "http://EDGE.test:8000/live/iss/master.m3u8", A) is Trust.KNOWN
    assert path.read_text() == before


def test_a_changed_key_is_refused_and_the_pin_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "known_ledgers"
    trust_on_first_use(path, "http://edge.test:8000/ledger", A)
    before = path.read_text()
    with pytest.raises(LedgerKeyChanged) as caught:
        trust_on_first_use(path, "http://edge.test:8000/ledger", B)
    message = str(caught.value)
    assert "HAS CHANGED" in message and "http://edge.test:8000" in message
    assert bytes(A).hex() in message and bytes(B).hex() in message
    assert f"delete line 2 of {path}" in message  # line 1 is the header comment
    assert path.read_text() == before


def test_accepting_a_new_key_is_deleting_its_line(tmp_path: Path) -> None:
    path = tmp_path / "known_ledgers"
    trust_on_first_use(path, "http://edge.test:8000/ledger", A)
    with pytest.raises(LedgerKeyChanged) as caught:
        trust_on_first_use(path, "http://edge.test:8000/ledger", B)
    lines = path.read_text().splitlines()
    del lines[caught.value.line - 1]
    path.write_text("\n".join(lines) + "\n")
    assert trust_on_first_use(path, "http://edge.test:8000/ledger", B) is Trust.FIRST_USE
    assert trust_on_first_use(path, "http://edge.test:8000/ledger", B) is Trust.KNOWN


def test_a_file_with_several_servers_keeps_each_servers_key(tmp_path: Path) -> None:
    path = tmp_path / "known_ledgers"
    trust_on_first_use(path, "http://edge.test:8000/ledger", A)
    trust_on_first_use(path, "https://cdn.example/ledger", B)
    trust_on_first_use(path, "http://edge.test:9000/ledger", B)  # another port: another server
    known = read_known(path)
    assert {o: p.key for o, p in known.items()} == {
        "http://edge.test:8000": bytes(A),
        "https://cdn.example:443": bytes(B),
        "http://edge.test:9000": bytes(B),
    }
    assert trust_on_first_use(path, "https://cdn.example:443/ledger", B) is Trust.KNOWN
    with pytest.raises(LedgerKeyChanged):
        trust_on_first_use(path, "http://edge.test:8000/ledger", B)


def test_a_hand_written_file_with_comments_and_no_final_newline_is_extended(tmp_path: Path) -> None:
    path = tmp_path / "known_ledgers"
    path.write_text(f"# mine\n\nhttp://edge.test:8000 ed25519:{bytes(A).hex()}")
    assert trust_on_first_use(path, "http://other.test:8000/ledger", B) is Trust.FIRST_USE
    assert trust_on_first_use(path, "http://edge.test:8000/ledger", A) is Trust.KNOWN
    assert path.read_text().splitlines()[-1] == f"http://other.test:8000 ed25519:{bytes(B).hex()}"


@pytest.mark.parametrize("line,reason", [
    ("http://edge.test:8000", "expected 'ORIGIN ed25519:HEX'"),
    ("http://edge.test:8000 ed25519:abcd", "64 hex digits"),
    (f"http://edge.test:8000 {'ab' * 32}", "64 hex digits"),
    (f"http://edge.test:8000 ed25519:{'zz' * 32}", "64 hex digits"),
    (f"edge.test:8000 ed25519:{'ab' * 32}", "not an http(s) URL"),
    (f"http://edge.test ed25519:{'ab' * 32}", "write the server as http://edge.test:80"),
])
def test_a_corrupt_line_is_an_error_naming_the_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "known_ledgers"
    path.write_text(f"# pinned\nhttp://ok.test:8000 ed25519:{bytes(A).hex()}\n{line}\n")
    with pytest.raises(KnownKeysError) as caught:
        trust_on_first_use(path, "http://ok.test:8000/ledger", A)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert reason in str(caught.value)


def test_one_server_pinned_to_two_keys_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "known_ledgers"
    path.write_text(f"http://edge.test:8000 ed25519:{bytes(A).hex()}\nhttp://edge.test:8000 ed25519:{bytes(B).hex()}\n")
    with pytest.raises(KnownKeysError, match="known_ledgers:2: .* another key on line 1"):
        read_known(path)


def test_origins_are_one_spelling_per_server() -> None:
    assert origin_of("http://Edge.Test/live/iss/master.m3u8") == "http://edge.test:80"
    assert origin_of("HTTPS://edge.test/ledger") == "https://edge.test:443"
    assert origin_of("http://[::1]:8000/ledger") == "http://[::1]:8000"
    with pytest.raises(ValueError):
        origin_of("file:///etc/passwd")


def test_the_default_file_is_under_the_xdg_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "orbitcast" / "known_ledgers"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".config" / "orbitcast" / "known_ledgers"
    assert default_path({}) == expected
    assert default_path({"XDG_CONFIG_HOME": "relative/dir"}) == expected  # ignored, as the spec says

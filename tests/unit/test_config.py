"""Configuration: demo defaults, YAML loading, and errors that name the bad field."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orbitcast.config import ConfigError, OrbitcastConfig, load_config, parse_config


def _rung(name: str = "a", width: int = 640, height: int = 360, bitrate: int = 500_000) -> dict[str, Any]:
    return {"name": name, "width": width, "height": height, "video_bitrate": bitrate}


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


# -- defaults -----------------------------------------------------------------------------
def test_defaults_serve_the_demo() -> None:
    cfg = load_config(None)
    assert isinstance(cfg, OrbitcastConfig)
    assert [f.name for f in cfg.feeds] == ["iss"]
    iss = cfg.feed("iss")
    assert iss.source.startswith("lavfi:")
    rungs = cfg.ladder.rungs
    assert [r.name for r in rungs] == ["720p", "480p", "360p"]
    assert [r.video_bitrate for r in rungs] == [2_500_000, 1_200_000, 600_000]
    assert [r.height for r in rungs] == [720, 480, 360]
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in rungs)
    assert cfg.ladder.preset == "veryfast"
    # low-latency defaults: 1 s segments (a keyframe each) of five 0.2 s LL-HLS parts
    assert (cfg.segment_duration, cfg.part_duration, cfg.part_hold_back) == (1.0, 0.2, None)
    assert cfg.live_window * cfg.segment_duration >= 6 * 2  # room for delta updates to skip
    with pytest.raises(KeyError):
        cfg.feed("nope")


def test_empty_file_and_none_give_defaults(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("", encoding="utf-8")
    assert load_config(p) == load_config(None) == parse_config(None) == parse_config({})


def test_valid_yaml_file(tmp_path: Path) -> None:
    p = tmp_path / "orbitcast.yaml"
    p.write_text(
        """
feeds:
  - name: cam-1
    source: /data/cam1.mp4
    loop: false
  - name: net_2
    source: udp://239.0.0.1:1234
    options: {fifo_size: "100000"}
ladder:
  rungs:
    - {name: 1080p, width: 1920, height: 1080, video_bitrate: 5000000}
    - {name: 240p, width: 426, height: 240, video_bitrate: 300000}
  audio_bitrate: 96000
segment_duration: 4
part_duration: 1
live_window: 10
store: s3://bucket/prefix
serve: {port: 9000}
""",
        encoding="utf-8",
    )
    cfg = load_config(str(p))
    assert [f.name for f in cfg.feeds] == ["cam-1", "net_2"]
    assert cfg.feed("cam-1").loop is False
    assert cfg.feed("net_2").loop is True
    assert cfg.feed("net_2").options == {"fifo_size": "100000"}
    assert [(r.name, r.width, r.height) for r in cfg.ladder.rungs] == [("1080p", 1920, 1080), ("240p", 426, 240)]
    assert cfg.ladder.audio_bitrate == 96000
    assert cfg.segment_duration == 4.0 and cfg.part_duration == 1.0
    assert cfg.live_window == 10
    assert cfg.store == "s3://bucket/prefix"
    assert cfg.serve.port == 9000
    assert cfg.serve.host == "127.0.0.1"


# -- bad files ----------------------------------------------------------------------------
def test_unreadable_path_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(missing) in str(info.value)
    assert "cannot read" in str(info.value)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


@contextmanager
def _as_unprivileged_user() -> Iterator[None]:
    """File modes do not bind root (CI runs as root): act as `nobody` meanwhile, by effective
    ids only, so that root can be restored afterwards."""
    if os.geteuid() != 0:
        yield
        return
    uid, gid = os.geteuid(), os.getegid()
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(uid)
        os.setegid(gid)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_config_the_user_may_not_read_gives_a_clear_error() -> None:
    # Not in pytest's tmp_path (closed to other users): only the file's own mode may refuse.
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        p = Path(folder) / "secret.yaml"
        p.write_text("live_window: 6\n", encoding="utf-8")
        p.chmod(0)
        with _as_unprivileged_user(), pytest.raises(ConfigError, match="cannot read") as info:
            load_config(p)
        assert str(p) in str(info.value)


def test_invalid_yaml(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("feeds: [unclosed\n  - : :\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(p) in str(info.value)
    assert "not valid YAML" in str(info.value)


@pytest.mark.parametrize("text,kind", [("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int")])
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    p = tmp_path / "top.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert "top level must be a mapping" in msg
    assert kind in msg


def test_unknown_field_top_level() -> None:
    msg = _error({"segment_duraton": 2})
    assert "segment_duraton" in msg
    assert "not permitted" in msg or "extra" in msg.lower()


def test_unknown_field_nested_names_the_path() -> None:
    msg = _error({"feeds": [{"name": "a", "source": "x", "lop": True}]})
    assert "feeds.0.lop" in msg


def test_odd_width_names_the_rung_field() -> None:
    msg = _error({"ladder": {"rungs": [_rung("ok"), _rung("odd", width=641)]}})
    assert "ladder.rungs.1.width" in msg
    assert "even" in msg


def test_odd_height_names_the_rung_field() -> None:
    msg = _error({"ladder": {"rungs": [_rung(height=361)]}})
    assert "ladder.rungs.0.height" in msg


def test_duplicate_feed_names() -> None:
    msg = _error({"feeds": [{"name": "a", "source": "x"}, {"name": "a", "source": "y"}]})
    assert "feeds" in msg
    assert "unique" in msg


def test_duplicate_rung_names() -> None:
    msg = _error({"ladder": {"rungs": [_rung("a"), _rung("a", 320, 180)]}})
    assert "ladder.rungs" in msg
    assert "unique" in msg


def test_empty_ladder() -> None:
    msg = _error({"ladder": {"rungs": []}})
    assert "ladder.rungs" in msg


def test_segment_not_a_multiple_of_part() -> None:
    msg = _error({"segment_duration": 2.0, "part_duration": 0.3})
    assert "segment_duration" in msg
    assert "part_duration" in msg
    assert "multiple" in msg


@pytest.mark.parametrize("seg,part", [(2.0, 0.5), (0.3, 0.1), (1.2, 0.4), (6.0, 0.2), (1.0, 1.0)])
def test_float_multiples_are_accepted(seg: float, part: float) -> None:
    cfg = parse_config({"segment_duration": seg, "part_duration": part})
    assert cfg.segment_duration == seg


@pytest.mark.parametrize("name", ["bad name", "-lead", "", "a/b", "..", "é", "x" * 65])
def test_bad_feed_name(name: str) -> None:
    msg = _error({"feeds": [{"name": name, "source": "x"}]})
    assert "feeds.0.name" in msg


def test_bad_rung_name() -> None:
    msg = _error({"ladder": {"rungs": [_rung("../x")]}})
    assert "ladder.rungs.0.name" in msg


def test_empty_source() -> None:
    msg = _error({"feeds": [{"name": "a", "source": "   "}]})
    assert "feeds.0.source" in msg


def test_every_bad_field_is_reported_once_per_line() -> None:
    msg = _error({"live_window": 1, "serve": {"port": 70000}, "transcoders": 0})
    lines = msg.splitlines()[1:]
    fields = {line.split(":", 1)[0] for line in lines}
    assert {"live_window", "serve.port", "transcoders"} <= fields


def test_serve_replicas() -> None:
    msg = _error({"serve": {"min_replicas": 3, "max_replicas": 2}})
    assert "serve" in msg and "max_replicas" in msg


def test_yaml_file_error_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "o.yaml"
    p.write_text("ladder:\n  rungs:\n    - {name: a, width: 3, height: 2, video_bitrate: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(p) in str(info.value)
    assert "ladder.rungs.0.width" in str(info.value)


def test_config_is_frozen() -> None:
    cfg = load_config(None)
    with pytest.raises(Exception):
        cfg.live_window = 9  # type: ignore[misc]


def test_feed_name_with_trailing_newline_is_refused() -> None:
    msg = _error({"feeds": [{"name": "iss\n", "source": "x"}]})
    assert "feeds.0.name" in msg


def test_relative_store_and_key_paths_are_anchored_to_orbitcast_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orbitcast.config import anchored

    monkeypatch.setenv("ORBITCAST_HOME", str(tmp_path / "home"))
    cfg = anchored(parse_config({"store": "./orbitcast-data", "ledger_key": "keys/ledger.key",
                                 "threema": {"keys_dir": "orbitcast-keys"}}))
    assert cfg.store == str(tmp_path / "home" / "orbitcast-data")
    assert cfg.ledger_key == str(tmp_path / "home" / "keys" / "ledger.key")
    assert cfg.threema.keys_dir == str(tmp_path / "home" / "orbitcast-keys")


def test_absolute_paths_and_uris_stay_where_they_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orbitcast.config import anchored

    monkeypatch.setenv("ORBITCAST_HOME", str(tmp_path / "home"))
    cfg = anchored(parse_config({"store": "s3://bucket/orbitcast", "threema": {"keys_dir": str(tmp_path / "k")}}))
    assert cfg.store == "s3://bucket/orbitcast" and cfg.threema.keys_dir == str(tmp_path / "k")
    assert cfg.ledger_key is None  # its default follows the store


def test_without_orbitcast_home_relative_paths_are_the_current_directorys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orbitcast.config import anchored

    monkeypatch.delenv("ORBITCAST_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert anchored(parse_config({})).store == str(tmp_path / "orbitcast-data")

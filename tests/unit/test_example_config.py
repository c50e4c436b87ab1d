"""The commented example configuration stays valid and says what the defaults are."""

from pathlib import Path

from orbitcast.config import OrbitcastConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid_and_shows_the_defaults():
    assert load_config(ROOT / "orbitcast.example.yaml") == OrbitcastConfig()

"""`orbitcast demo` says whether analysis is on: its own defaults turn it on only where the
analysis extra is installed; a config file is taken as written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orbitcast.analysis import available
from orbitcast.analysis.demo import for_demo
from orbitcast.config import OrbitcastConfig, parse_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(available() is not None, reason="the analysis extra is not installed")
def test_the_demo_defaults_analyse_where_the_extra_is_installed() -> None:
    config, line = for_demo(OrbitcastConfig(), from_file=False)
    assert config.analysis.enabled and config.analysis.covers("iss")
    assert line.startswith("orbitcast: analysis on for iss (2 pictures/s)")
    assert not OrbitcastConfig().analysis.enabled  # the shipped default stays off


def test_a_config_file_is_taken_as_written() -> None:
    off = parse_config({"feeds": [{"name": "iss", "source": "lavfi:testsrc2"}]})
    config, line = for_demo(off, from_file=True)
    assert not config.analysis.enabled
    assert line == "orbitcast: analysis off (analysis.enabled is false in the config)"
    on = parse_config({"feeds": [{"name": "a", "source": "lavfi:testsrc2"}, {"name": "b", "source": "lavfi:testsrc2"}],
                       "analysis": {"enabled": True, "feeds": ["b"], "sample_fps": 1}})
    config, line = for_demo(on, from_file=True)
    if available() is None:
        assert line.startswith("orbitcast: analysis on for b (1 pictures/s)")
    else:
        assert line.startswith("orbitcast: analysis off (") and "pip install" in line


def test_without_the_runtime_the_demo_says_off_and_how_to_install_it() -> None:
    # A fresh interpreter in which the TFLite runtime cannot be imported, as on a core install.
    script = textwrap.dedent("""
        import sys
        class NoRuntime:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "ai_edge_litert":
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, NoRuntime())
        from orbitcast.analysis.demo import for_demo
        from orbitcast.config import OrbitcastConfig
        config, line = for_demo(OrbitcastConfig(), from_file=False)
        print(config.analysis.enabled, line)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False orbitcast: analysis off (")
    assert "pip install -e '.[analysis]'" in out.stdout

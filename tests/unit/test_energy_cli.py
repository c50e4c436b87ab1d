"""`orbitcast energy plan`: the table a person reads and a PNG that opens; bad input answered
in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

pytest.importorskip("pvlib")
pytest.importorskip("matplotlib")

from pipelines.cli import main  # noqa: E402

SITE = {"latitude": 60.15, "longitude": -1.15, "timezone": "Europe/London", "kwp": 0.05, "tilt": 60,
        "battery_wh": 150, "initial_soc": 0.9}


def config(tmp_path: Path, energy: dict) -> Path:
    p = tmp_path / "orbitcast.yaml"
    p.write_text(yaml.safe_dump({"energy": energy}, sort_keys=False))
    return p


def test_it_prints_the_plan_and_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "plan.png"
    assert main(["energy", "plan", "--config", str(config(tmp_path, {"enabled": True, "site": SITE})),
                 "--date", "2024-12-21", "--png", str(png)]) == 0
    out, err = capsys.readouterr()
    hours = [line for line in out.splitlines() if re.match(r"\d\d:00 ", line)]
    assert [h[:5] for h in hours] == [f"{h:02d}:00" for h in range(24)]
    assert "drop 720p" in out and "refuse new feeds" in out  # the step table
    assert "the plan holds" in out
    # night hours show no PV, the hours around noon some
    pv = {h[:5]: float(h.split()[1]) for h in hours}
    assert pv["02:00"] == 0 and pv["12:00"] > 0
    assert f"wrote {png}" in err
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 800 and im.size[1] >= 600
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # a drawn chart, not a blank canvas


def test_soc_option_changes_the_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(config(tmp_path, {"site": SITE}))
    assert main(["energy", "plan", "--config", cfg, "--date", "2024-12-21", "--soc", "0.5"]) == 0
    first = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("00:00"))
    assert "50.0% ->" in first


@pytest.mark.parametrize("energy,args,message", [
    ({}, ["--date", "2024-12-21"], "no energy.site in the config"),
    ({"site": SITE}, ["--date", "21/12/2024"], "is not a date"),
    ({"site": SITE}, ["--date", "2024-12-21", "--soc", "0.05"], "state of charge 0.05"),
    ({"site": {**SITE, "timezone": "Mars/Olympus"}}, ["--date", "2024-12-21"], "energy.site.timezone: unknown time zone"),
])
def test_what_it_cannot_plan_is_said_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 energy: dict, args: list[str], message: str) -> None:
    assert main(["energy", "plan", "--config", str(config(tmp_path, energy)), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unwritable_png_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["energy", "plan", "--config", str(config(tmp_path, {"site": SITE})), "--date", "2024-12-21",
                 "--png", str(tmp_path / "no" / "such" / "dir.png")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_the_config_in_docs_energy_plans_as_the_page_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "energy.md").read_text()
    block = page.split("## Configuration")[1].split("```yaml")[1].split("```")[0]
    cfg = tmp_path / "site.yaml"
    cfg.write_text(block)
    assert main(["energy", "plan", "--config", str(cfg), "--date", "2024-12-21"]) == 0
    out = capsys.readouterr().out
    assert "the plan holds" in out and "to end at 60% or more" in out
    assert "drop 720p" in next(line for line in out.splitlines() if line.startswith("03:00"))  # the night on 360p

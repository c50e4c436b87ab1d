"""The `energy:` section: off by default, and any bad value named in one line per problem."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitcast.config import ConfigError, OrbitcastConfig, parse_config

SITE = {"latitude": 60.15, "longitude": -1.15, "kwp": 0.1, "battery_wh": 300}


def test_energy_is_off_without_a_site_by_default() -> None:
    energy = OrbitcastConfig().energy
    assert energy.enabled is False and energy.site is None


@pytest.mark.parametrize("site,field", [
    ({**SITE, "latitude": 91}, "energy.site.latitude"),
    ({**SITE, "kwp": 0}, "energy.site.kwp"),
    ({**SITE, "timezone": "Europe"}, "energy.site.timezone"),
    ({**SITE, "initial_soc": 0.1, "night_reserve": 0.2}, "initial_soc (0.1) is below night_reserve"),
    ({**SITE, "end_soc": 1.5}, "end_soc must be within 0..1"),
    ({**SITE, "end_soc": "later"}, "energy.site.end_soc"),
    ({k: v for k, v in SITE.items() if k != "battery_wh"}, "energy.site.battery_wh"),
])
def test_a_bad_site_names_the_field(site: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("(", r"\(").replace(")", r"\)")):
        parse_config({"energy": {"site": site}})


def test_end_soc_takes_start_or_a_charge() -> None:
    assert parse_config({"energy": {"site": {**SITE, "end_soc": "start"}}}).energy.site.end_soc == "start"
    assert parse_config({"energy": {"site": {**SITE, "end_soc": 0.5}}}).energy.site.end_soc == 0.5


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=300)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["latitude", "longitude", "timezone", "kwp", "battery_wh", "end_soc",
                                        "clearness", "initial_soc", "tilt", "azimuth"]), scalars),
       st.dictionaries(st.sampled_from(["tdp_w", "idle_fraction", "cpus", "error"]), scalars),
       st.dictionaries(st.sampled_from(["rung_cpu", "feed_cpu", "reduced_fps"]), scalars | st.dictionaries(st.text(max_size=5), scalars)))
def test_any_energy_section_loads_or_names_what_is_wrong(site: dict, power: dict, costs: dict) -> None:
    try:
        parse_config({"energy": {"site": site, "power": power, "costs": costs}})
    except ConfigError:
        pass

"""Thermodynamics against the Materials Project Li-Co-Ni-O entries shipped by janosh/matterviz."""

import pytest
from maggma.stores import MemoryStore
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.entries.computed_entries import ComputedEntry

from coatflow.workflows import thermo
from coatflow.workflows.errors import CoatflowError


@pytest.fixture(scope="module")
def mp():
    return thermo.matterviz_entries()


def test_e_hull_matches_mp(mp):
    gs = thermo.ground_states(mp)
    for f in ("LiCoO2", "LiNiO2", "Li2CoNiO4"):
        e = gs[f]
        ehull, _ = thermo.e_above_hull(e, mp)
        assert ehull == pytest.approx(e.data["mp_e_above_hull"], abs=1e-6)
    pd = thermo.phase_diagram(mp)
    assert max(abs(pd.get_e_above_hull(e) - e.data["mp_e_above_hull"]) for e in mp) < 1e-6


def test_voltage_matches_pymatgen_electrode(mp):
    gs = thermo.ground_states(mp)
    v = thermo.average_voltage(mp, "CoO2", "LiCoO2")
    ref = InsertionElectrode.from_entries([gs["CoO2"], gs["LiCoO2"]], gs["Li"]).get_average_voltage()
    assert v == pytest.approx(ref, abs=1e-6)
    with pytest.raises(CoatflowError):
        thermo.average_voltage(mp, "CoO2", "LiNiO2")


def test_window_li2o_and_licoo2(mp):
    gs = thermo.ground_states(mp)
    w = thermo.stability_window(gs["Li2O"], mp)
    assert w["reduction_limit"] == 0.0 and w["oxidation_products"] == ["Li2O2"]
    w = thermo.stability_window(gs["LiCoO2"], mp)
    assert 0 < w["reduction_limit"] < w["oxidation_limit"] and "Co" in w["reduction_products"]


def test_interface_with_li_gives_metal(mp):
    r = thermo.interfacial_reaction("LiCoO2", "Li", mp)
    assert r["reaction_energy"] < 0 and r["product_class"]["Co"] == "conducting"
    assert thermo.interfacial_reaction("Li2O", "Li", mp)["products"] == []


def test_mixing_scales_raises(mp):
    other = ComputedEntry("Li2O", -14.0, data={"energy_scale": "CHGNet+MP2020"})
    with pytest.raises(CoatflowError, match="mix energy scales"):
        thermo.phase_diagram([*mp[:50], other])


def test_mp_entries_cache_and_missing_key(monkeypatch, mp):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    cache = MemoryStore("cache")
    cache.connect()
    with pytest.raises(CoatflowError, match="MP_API_KEY"):
        thermo.mp_entries(["Li", "O"], cache)
    li_o = thermo.in_chemsys(mp, ["Li", "O"])
    thermo._cache_put(cache, "mp-entries:Li-O", [e.as_dict() for e in li_o])
    got = thermo.mp_entries(["O", "Li"], cache)
    assert len(got) == len(li_o) and {thermo.scale_of(e) for e in got} == {"MP2020"}


def test_formation_from_precursors(mp):
    gs = thermo.ground_states(mp)
    out = thermo.formation_from_precursors(gs["LiCoO2"], mp)
    assert out["status"] == "computed" and all(v["meV_per_atom"] < 0 for v in out["precursors"].values())
    assert thermo.formation_from_precursors(gs["Li2O"], mp)["status"] == "not_computed"

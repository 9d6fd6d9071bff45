"""Thermodynamics (workflows/analysis/thermo.py) against the shipped reference data (workflows/reference_data.py):
MP Li-Co-Ni-O entries from janosh/matterviz and Alexandria PBE Li-P-S / Li-Ti-O."""

import pytest
from maggma.stores import MemoryStore
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.entries.computed_entries import ComputedEntry

from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import thermo
from coatflow.workflows.errors import CoatflowError


@pytest.fixture(scope="module")
def mp():
    return data.matterviz_entries()


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
    # the same by hand: CoO2 + Li -> LiCoO2 (docs/thermo.md: 3.77 V)
    by_hand = -(4 * gs["LiCoO2"].energy_per_atom - 3 * gs["CoO2"].energy_per_atom - gs["Li"].energy_per_atom)
    assert v == pytest.approx(by_hand, abs=1e-9) and v == pytest.approx(3.77, abs=0.005)
    assert thermo.average_voltage(mp, "NiO2", "LiNiO2") == pytest.approx(3.93, abs=0.005)
    with pytest.raises(AnalysisError):
        thermo.average_voltage(mp, "CoO2", "LiNiO2")


def test_window_li2o_and_licoo2(mp):
    gs = thermo.ground_states(mp)
    w = thermo.stability_window(gs["Li2O"], mp)
    assert w.reduction_limit == 0.0 and w.oxidation_products == ["Li2O2"]
    assert w.oxidation_limit == pytest.approx(2.88, abs=0.005)  # docs/thermo.md; published 2.91 V
    w = thermo.stability_window(gs["LiCoO2"], mp)
    assert 0 < w.reduction_limit < w.oxidation_limit and "Co" in w.reduction_products
    assert (w.reduction_limit, w.oxidation_limit) == pytest.approx((1.83, 3.42), abs=0.005)  # docs/thermo.md


def test_interface_with_li_gives_metal(mp):
    r = thermo.interfacial_reaction("LiCoO2", "Li", mp)
    assert r.reaction_energy < 0 and r.product_class["Co"] == "conducting"
    assert thermo.interfacial_reaction("Li2O", "Li", mp).products == []


def test_mixing_scales_raises(mp):
    other = ComputedEntry("Li2O", -14.0, data={"energy_scale": "CHGNet+MP2020"})
    with pytest.raises(AnalysisError, match="mix energy scales"):
        thermo.phase_diagram([*mp[:50], other])


def test_mp_entries_cache_and_missing_key(monkeypatch, mp):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    cache = MemoryStore("cache")
    cache.connect()
    with pytest.raises(CoatflowError, match="MP_API_KEY"):
        data.mp_entries(["Li", "O"], cache)
    li_o = thermo.in_chemsys(mp, ["Li", "O"])
    data.cache_put(cache, "mp-entries:Li-O", [e.as_dict() for e in li_o])
    got = data.mp_entries(["O", "Li"], cache)
    assert len(got) == len(li_o) and {thermo.scale_of(e) for e in got} == {"MP2020"}


def test_formation_from_precursors(mp):
    gs = thermo.ground_states(mp)
    out = thermo.formation_from_precursors(gs["LiCoO2"], mp)
    assert out and all(v["meV_per_atom"] < 0 for v in out.values())
    with pytest.raises(AnalysisError, match="not a Li-M-O ternary oxide"):
        thermo.formation_from_precursors(gs["Li2O"], mp)


# --- Alexandria PBE data (shipped Li-P-S, Li-Ti-O) ---------------------------------------------------

#: Published windows (V vs Li), Richards et al., Chem. Mater. 28, 266 (2016); Zhu, He, Mo, ACS AMI 7, 23685 (2015)
LI3PS4_WINDOW = (1.74, 2.32)


def test_li3ps4_window_from_alexandria_matches_published():
    entries = data.alexandria_entries("Li-P-S")
    w = thermo.stability_window(thermo.ground_states(entries)["Li3PS4"], entries)
    assert w.reduction_limit == pytest.approx(LI3PS4_WINDOW[0], abs=0.1)
    assert w.oxidation_limit == pytest.approx(LI3PS4_WINDOW[1], abs=0.1)
    assert (w.reduction_limit, w.oxidation_limit) == pytest.approx((1.68, 2.37), abs=0.005)  # docs/thermo.md
    assert w.reduction_products == ["Li2S", "P"]  # reduced towards Li2S + P, as published


def test_alexandria_band_gaps_classify_li_reduction_of_li3ps4():
    entries = data.alexandria_entries("P-S-Li")  # element order does not matter
    r = thermo.interfacial_reaction("Li", "Li3PS4", entries, data.alexandria_band_gaps())
    assert set(r.products) == {"Li2S", "Li3P"} and r.reaction_energy < -0.3
    assert r.product_gaps["Li2S"] > 3.0  # PBE: 3.4-3.5 eV


def test_alexandria_scale_is_its_own():
    with pytest.raises(AnalysisError, match="mix energy scales"):
        thermo.phase_diagram([*data.alexandria_entries("Li-Ti-O"), *data.matterviz_entries()[:20]])
    with pytest.raises(CoatflowError, match="no shipped Alexandria data for Li-La-Zr-O"):
        data.alexandria_entries("Li-La-Zr-O")


def test_interfacial_reaction_without_an_elemental_reference_is_not_computed(mp):
    li_o = thermo.in_chemsys(mp, ["Li", "O"])
    with pytest.raises(AnalysisError, match="^no elemental reference for Co$"):
        thermo.interfacial_reaction("LiCoO2", "Li", li_o)

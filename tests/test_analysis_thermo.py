"""workflows/analysis/thermo.py on hand-made entries with answers worked out on paper (no data files, no jobs)."""

import pytest
from pymatgen.core import Composition
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import thermo

SCALE = "toy"


def entry(formula: str, energy_per_fu: float, scale: str = SCALE, entry_id: str | None = None) -> ComputedEntry:
    return ComputedEntry(formula, energy_per_fu, entry_id=entry_id or formula, data={"energy_scale": scale})


@pytest.fixture
def li_o():
    """Elements at 0 eV; Li2O -6.2 eV and Li2O2 -6.6 eV per formula unit.

    Oxidising Li2O: 2 Li2O -> Li2O2 + 2 Li costs 5.8 eV for 2 Li: 2.9 V. Li2O2 -> O2 + 2 Li: 6.6 eV / 2 Li: 3.3 V.
    """
    return [entry("Li", 0.0), entry("O2", 0.0), entry("Li2O", -6.2), entry("Li2O2", -6.6)]


def test_window_of_a_stable_and_an_intermediate_phase(li_o):
    w = thermo.stability_window(li_o[2], li_o)
    assert (w.reduction_limit, w.oxidation_limit) == (0.0, 2.9)
    assert w.reduction_products == ["stable against Li metal"] and w.oxidation_products == ["Li2O2"]
    assert w.e_above_hull == pytest.approx(0.0) and not w.shifted_to_hull
    w = thermo.stability_window(li_o[3], li_o)
    assert (w.reduction_limit, w.oxidation_limit) == (2.9, 3.3)
    assert w.reduction_products == ["Li2O"] and w.oxidation_products == ["O2"]


def test_metastable_phase_is_moved_onto_the_hull_for_its_window(li_o):
    meta = entry("Li2O", -6.2 + 3 * 0.05, entry_id="Li2O-meta")  # 50 meV/atom above Li2O
    w = thermo.stability_window(meta, li_o)  # 1 ueV/atom below its stable polymorph: the same window
    assert w.shifted_to_hull and w.e_above_hull == pytest.approx(0.05)
    assert (w.reduction_limit, w.oxidation_limit) == (0.0, 2.9)
    ehull, decomp = thermo.e_above_hull(meta, li_o)
    assert ehull == pytest.approx(0.05) and decomp == {"Li2O": 1.0}


def test_window_needs_li_references_and_one_scale(li_o):
    with pytest.raises(AnalysisError, match="has no Li"):
        thermo.stability_window(entry("CoO", -2.4), [*li_o, entry("Co", 0.0)])
    with pytest.raises(AnalysisError, match="element"):
        thermo.stability_window(li_o[0], li_o)
    with pytest.raises(AnalysisError, match="no elemental reference for O"):
        thermo.stability_window(li_o[2], [li_o[0], li_o[3]])
    with pytest.raises(AnalysisError, match="mix energy scales"):
        thermo.stability_window(li_o[2], [*li_o, entry("Li2O", -6.0, scale="other", entry_id="x")])
    with pytest.raises(AnalysisError, match="no energy scale"):
        thermo.scale_of(ComputedEntry("Li", 0.0))


def test_ground_states_and_chemical_systems(li_o):
    gs = thermo.ground_states([*li_o, entry("Li2O", -5.0, entry_id="Li2O-b")])
    assert gs["Li2O"].entry_id == "Li2O"
    assert thermo.covers(li_o, ["Li", "O", "Co"]) == ["Co"]
    assert [e.entry_id for e in thermo.in_chemsys(li_o, ["Li"])] == ["Li"]


def test_interfacial_reaction_of_peroxide_with_li(li_o):
    # Li2O2 + 2 Li -> 2 Li2O: -5.8 eV over 6 atoms at the 1:2 formula ratio (4 of 6 atoms from Li2O2)
    r = thermo.interfacial_reaction("Li2O2", "Li", li_o, gaps={"Li2O": 5.0})
    assert r.reaction_energy == pytest.approx(-5.8 / 6, abs=1e-4) and r.mixing_ratio == pytest.approx(4 / 6, abs=1e-4)
    assert r.products == ["Li2O"] and r.product_class == {"Li2O": "insulating"} and r.product_gaps == {"Li2O": 5.0}
    none = thermo.interfacial_reaction("Li2O", "Li", li_o)
    assert none.products == [] and none.reaction is None and none.reaction_energy == 0.0
    with pytest.raises(AnalysisError, match="no elemental reference for Co"):
        thermo.interfacial_reaction("CoO", "Li", [*li_o, entry("CoO", -2.5)])


def test_classify_gap_and_open_4f():
    assert thermo.classify_gap("Co", None, 0.5) == "conducting"
    assert thermo.classify_gap("Li2O", None, 0.5) == "unknown"
    assert thermo.classify_gap("TiS2", 0.03, 0.5) == "conducting"
    assert thermo.classify_gap("Li2S", 3.4, 0.5) == "insulating"
    assert thermo.has_open_4f("Tb2O3") and thermo.has_open_4f("LiTbO2")
    assert not thermo.has_open_4f("La2O3") and not thermo.has_open_4f("Lu2O3")


def test_average_voltage_of_a_toy_layered_cathode():
    # LiCoO2 -> CoO2 + Li: V = -(E(LiCoO2) - E(CoO2) - mu_Li) = -(-20 + 15.5 + 1.9) = 2.6 V
    entries = [entry("Li", -1.9), entry("CoO2", -15.5), entry("LiCoO2", -20.0), entry("NiO2", -14.0)]
    assert thermo.average_voltage(entries, "CoO2", "LiCoO2") == pytest.approx(2.6)
    with pytest.raises(AnalysisError, match="no entry for LiNiO2"):
        thermo.average_voltage(entries, "NiO2", "LiNiO2")
    with pytest.raises(AnalysisError, match="same compositional framework"):
        thermo.average_voltage([*entries, entry("LiNiO2", -19.0)], "CoO2", "LiNiO2")


def test_mp_hubbard_u_follows_mp2020():
    assert thermo.mp_hubbard_u("LiCoO2") == {"Co": 3.32}
    assert thermo.mp_hubbard_u("LiMn2O4") == {"Mn": 3.9}
    assert thermo.mp_hubbard_u("CoF3") == {"Co": 3.32}
    assert thermo.mp_hubbard_u("CoS2") == {} and thermo.mp_hubbard_u("Li2O") == {}


def test_mp2020_entry_applies_the_u_and_anion_corrections():
    e = thermo.mp2020_entry("LiCoO2", -22.0, "CHGNet+MP2020", entry_id="c")
    assert e.parameters["hubbards"] == {"Co": 3.32} and e.parameters["run_type"] == "GGA+U"
    by_hand = ComputedEntry("LiCoO2", -22.0, parameters={"run_type": "GGA+U", "is_hubbard": True,
                                                          "hubbards": {"Co": 3.32}, "potcar_spec": [],
                                                          "oxide_type": None})
    by_hand = MaterialsProject2020Compatibility(check_potcar=False).process_entry(by_hand)
    assert e.energy == pytest.approx(by_hand.energy) and e.correction < 0
    assert thermo.scale_of(e) == "CHGNet+MP2020" and e.entry_id == "c"
    assert thermo.mp2020_entry("Li2S", -10.0, SCALE).parameters["run_type"] == "GGA"


def test_formation_from_precursors_of_a_toy_oxide():
    # Li2O + 2 CoO + 1/2 O2 -> 2 LiCoO2: per target formula unit (4 atoms) 1/2 Li2O + CoO + 1/4 O2
    entries = [entry("Li", 0.0), entry("Co", 0.0), entry("O2", 0.0), entry("Li2O", -6.0), entry("CoO", -2.4),
               entry("LiCoO2", -6.0)]
    out = thermo.formation_from_precursors(entries[-1], entries)
    assert out == {"CoO": {"meV_per_atom": pytest.approx(1000 * (-6.0 + 3.0 + 2.4) / 4, abs=0.1),
                           "o2_per_target_atom": 0.125}}
    with pytest.raises(AnalysisError, match="not a Li-M-O ternary oxide"):
        thermo.formation_from_precursors(entries[3], entries)
    with pytest.raises(AnalysisError, match="no Co-O binary entry"):
        thermo.formation_from_precursors(entries[-1], entries[:4] + entries[-1:])


def test_phase_diagram_refuses_a_missing_element():
    with pytest.raises(AnalysisError, match="cannot build phase diagram"):
        thermo.phase_diagram([entry("Li", 0.0), entry("Li2O", -6.0)])
    assert Composition("Li2O") in {e.composition for e in thermo.phase_diagram(
        [entry("Li", 0.0), entry("O2", 0.0), entry("Li2O", -6.0)]).stable_entries}

"""The cathode-coating programme (issue #18, docs/cathode_coating.md): the programme selector, its stage list
and defaults, the cathode_compatibility stage on the MP snapshot, and the sulfide pairs without Li metal.
CI-sized: two coatings (LiNbO3, LiAlO2), one cathode (LiCoO2 and CoO2), one electrolyte (Li3PS4)."""

import warnings

import pytest
from pymatgen.analysis.interface_reactions import InterfacialReactivity
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition

from coatflow.launchers.config import CampaignConfig, load_config
from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import thermo
from coatflow.workflows.candidates import example_structures, predicted_candidate
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.programmes import ALL_STAGE_NAMES, stages_of
from coatflow.workflows.stages import STAGES
from coatflow.workflows.stages.cathode_compatibility import (
    LOCAL_NOTE, cathode_compatibility_verdict, cathode_coating_set, cathode_pairs, end_member_entry)
from coatflow.workflows.stages.interfacial_reactions import interfacial_reactions
from conftest import run_cli

LCO = {"LiCoO2": {"discharged": "LiCoO2", "charged": "CoO2"}}


def _ident(formula):
    return {"material_id": f"t-{formula}", "formula": formula, "source": "test", "predicted": True}


def _source(formula, partners):
    els = {"Li", *(el.symbol for f in (formula, *partners) for el in Composition(f).elements)}
    return {"kind": "mp_snapshot", "backend": "mlip", "material_id": data.snapshot_id(formula),
            "elements": sorted(els), "state": data.snapshot_version()}


def test_the_programmes_stage_lists_and_the_unchanged_anode_default():
    cathode = CampaignConfig(programme="cathode_coating")
    assert [s.stage for s in cathode.stages()] == [
        "database_filter", "bulk_relax", "phase_stability", "stability_window", "cathode_compatibility",
        "interfacial_reactions", "migration_barrier"]
    anode = CampaignConfig()
    assert anode.programme == "anode_coating" and [type(s) for s in anode.stages()] == list(STAGES)
    assert anode.stability_window.oxidation_limit_min == 2.0 and anode.interfacial_reactions.with_li_metal
    assert anode.candidates.source == "example" and anode.thermo.entries == "local"
    # shared stages are the same classes; the table orders every programme's stages in one list
    assert set(stages_of("cathode_coating")) - set(STAGES) == {type(cathode.stage("cathode_compatibility"))}
    assert ALL_STAGE_NAMES.index("cathode_compatibility") == ALL_STAGE_NAMES.index("stability_window") + 1


def test_init_programme_writes_the_cathode_defaults_and_a_file_overrides_them(tmp_path):
    path = tmp_path / "c.yaml"
    run = run_cli("init", "--programme", "cathode-coating", str(path))
    assert run.returncode == 0, run.stderr
    cfg = load_config(path)
    assert cfg.programme == "cathode_coating" and cfg.thermo.entries == "mp_snapshot"
    assert cfg.stability_window.oxidation_limit_min == 4.3 and cfg.stability_window.reduction_limit_max == 3.0
    assert cfg.interfacial_reactions.electrolytes == ["Li6PS5Cl", "Li3PS4", "Li10GeP2S12"]
    assert not cfg.interfacial_reactions.with_li_metal
    assert cfg.cathode_compatibility.cathodes == list(cathode_coating_set()["cathodes"])
    assert cfg.candidates.formulas == cathode_coating_set()["by_formula"]
    assert "shear_modulus:             # shear modulus" in path.read_text()  # listed, marked as not in it
    # a key the file sets wins; the programme fills the rest of the section
    (tmp_path / "o.yaml").write_text("programme: cathode_coating\nstability_window: {oxidation_limit_min: 4.5}\n"
                                     "candidates: {source: example}\n")
    over = load_config(tmp_path / "o.yaml")
    assert over.stability_window.oxidation_limit_min == 4.5 and over.stability_window.reduction_limit_max == 3.0
    assert over.candidates.source == "example"
    bad = tmp_path / "b.yaml"
    bad.write_text("programme: cathode_coating\ncathode_compatibility: {cathodes: [LiFePO4]}\n")
    with pytest.raises(CoatflowError, match="unknown cathode 'LiFePO4'"):
        load_config(bad)


def test_by_formula_lists_exactly_the_coatings_buildable_by_formula():
    protos = example_structures()
    ok = []
    for f in cathode_coating_set()["coatings"]:
        try:
            predicted_candidate(f, protos)
            ok.append(f)
        except CoatflowError:
            pass
    assert ok == cathode_coating_set()["by_formula"]


def _pymatgen_reaction(a, b, entries, hull):
    """The most negative reaction energy straight from pymatgen's InterfacialReactivity (own energies: mixtures
    of both only, the ends being a reactant's own decomposition)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir = InterfacialReactivity(Composition(a), Composition(b), PhaseDiagram(entries), norm=True,
                                   use_hull_energy=hull)
        kinks = list(ir.get_kinks()) if hull else [k for k in ir.get_kinks() if 0 < k[1] < 1]
    return min((k[2] for k in kinks), default=0.0)


@pytest.mark.parametrize("coating", ["LiNbO3", "LiAlO2"])
def test_cathode_pairs_equal_pymatgen_interfacial_reactivity(coating):
    pool = data.snapshot_entries({"Li", "Co", "O", *(e.symbol for e in Composition(coating).elements)})
    pairs = cathode_pairs(coating, LCO, pool)
    own = cathode_pairs(coating, LCO, pool, energy="own")
    assert set(pairs) == {f"{coating} | LiCoO2 discharged (LiCoO2)", f"{coating} | LiCoO2 charged (CoO2)"}
    for key, pair in pairs.items():
        partner = key.split("(")[1].rstrip(")")
        assert pair.status == "computed"
        assert pair.reaction_energy == pytest.approx(_pymatgen_reaction(coating, partner, pool, True), abs=1e-4)
        assert own[key].reaction_energy == pytest.approx(_pymatgen_reaction(coating, partner, pool, False), abs=1e-4)
        assert pair.reason == f"own energies: {own[key].reaction_energy:.3f} eV/atom"
    charged = own[f"{coating} | LiCoO2 charged (CoO2)"]
    if coating == "LiNbO3":  # CoO2 takes Li from LiNbO3: Nb2O5, O2 and a Li-poor cobaltate
        assert charged.reaction_energy < -0.01 and {"Nb2O5", "O2"} <= set(charged.products)


def test_nmc811_is_the_zero_mixing_sum_of_its_end_members():
    pool = data.snapshot_entries({"Li", "Ni", "Mn", "Co", "O"})
    ends = cathode_coating_set()["end_members"]["LiNi0.8Mn0.1Co0.1O2"]
    model = end_member_entry("LiNi0.8Mn0.1Co0.1O2", ends, pool)
    per_fu = {f: min(e.energy_per_atom for e in pool if e.composition.reduced_formula == f) * 4 for f in ends}
    assert model.energy == pytest.approx(sum(x * per_fu[f] for f, x in ends.items()))
    assert PhaseDiagram(pool).get_e_above_hull(model) >= 0  # no mixing stabilisation is assumed
    with pytest.raises(CoatflowError, match="do not add up to"):
        end_member_entry("LiNi0.8Mn0.1Co0.1O2", {"LiNiO2": 1.0}, pool)


def test_cathode_compatibility_verdict_threshold_and_local_scale():
    src = _source("LiNbO3", ["CoO2"])
    loose = cathode_compatibility_verdict.original(_ident("LiNbO3"), None, {}, None, LCO, -0.1, src, "own").output
    assert loose.status == "passed" and loose.value < 0 and loose.criterion == ">= -0.1 eV/atom"
    tight = cathode_compatibility_verdict.original(_ident("LiNbO3"), None, {}, None, LCO, loose.value / 2, src,
                                                   "own").output
    assert tight.status == "failed" and "CoO2" in tight.reason and "Nb2O5" in tight.reason
    local = cathode_compatibility_verdict.original(_ident("LiNbO3"), None, {}, None, LCO, -0.1,
                                                   {"kind": "local", "backend": "mlip"}).output
    assert local.status == "not_computed" and local.reason == LOCAL_NOTE


def test_sulfide_pairs_without_li_metal_are_classified():
    r = interfacial_reactions.original(None, {}, ["Li3PS4"], 0.5, {}, None, source=_source("LiNbO3", ["Li3PS4"]),
                                       li_metal=False)
    assert set(r.pairs) == {"LiNbO3 | Li3PS4"}
    pair = r.pairs["LiNbO3 | Li3PS4"]
    assert pair.status == "computed" and set(pair.product_class) == set(pair.products)
    assert set(pair.product_class.values()) <= {"insulating", "conducting", "unknown"}
    with_li = interfacial_reactions.original(None, {}, ["Li3PS4"], 0.5, {}, None,
                                             source=_source("LiNbO3", ["Li3PS4"]))
    assert set(with_li.pairs) == {"LiNbO3 | Li", "LiNbO3 | Li3PS4", "Li | Li3PS4"}
    assert with_li.pairs["LiNbO3 | Li3PS4"].reaction_energy == pair.reaction_energy
    assert thermo.scale_of(data.snapshot_entries(["Li", "O"])[0]) == "MP-snapshot"

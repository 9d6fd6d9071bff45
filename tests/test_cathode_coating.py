"""The cathode-coating programme (issue #18, docs/cathode_coating.md): the programme selector, its stage list
and defaults, the cathode_compatibility stage on the MP snapshot and on local CHGNet energies of the bundled
cathode phases, the sulfide pairs without Li metal and their product classes, the MP pre-flight's systems.
CI-sized: two coatings (LiNbO3, LiAlO2), one cathode (LiCoO2 and CoO2), one electrolyte (Li3PS4)."""

import json
import warnings

import pytest
from pymatgen.analysis.interface_reactions import InterfacialReactivity
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Structure

from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.launchers.config import CampaignConfig, load_config
from coatflow.launchers.local import _mp_systems, run_campaign
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import thermo
from coatflow.workflows.candidates import Candidate, example_candidates, example_structures, predicted_candidate
from coatflow.workflows.cathode_phases import cathode_phases, cathode_phases_for, coating_structures
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import LOCAL_SCALE, database_entries_on_scale
from coatflow.workflows.programmes import ALL_STAGE_NAMES, stages_of
from coatflow.workflows.schemas.cathode_coating import CathodeCompatibilityDetails, CathodeCompatibilityResult
from coatflow.workflows.schemas.thermo import (
    InterfacialReactionsDetails, InterfacialReactionsResult, PairsDetails, RelaxedEnergy)
from coatflow.workflows.stages import STAGES
from coatflow.workflows.stages.cathode_compatibility import (
    cathode_compatibility_verdict, cathode_coating_set, cathode_pairs, end_member_entry)
from coatflow.workflows.stages.interfacial_reactions import InterfacialReactionsStage, interfacial_reactions
from coatflow.workflows.stages.interfacial_reactions import interfacial_verdict
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
    assert [s.stage for s in stages_of("cathode_coating")] == [
        "database_filter", "bulk_relax", "phase_stability", "stability_window", "cathode_compatibility",
        "interfacial_reactions", "migration_barrier"]
    # planned: on the snapshot (the programme's default) the formula-level stages come before any relaxation
    assert [s.stage for s in cathode.stages()] == [
        "database_filter", "phase_stability", "stability_window", "cathode_compatibility", "interfacial_reactions",
        "bulk_relax", "migration_barrier"]
    on_chgnet = CampaignConfig(programme="cathode_coating", thermo={"entries": "local"})
    assert [type(s) for s in on_chgnet.stages()] == list(stages_of("cathode_coating"))
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
    assert cfg.candidates.formulas == cathode_coating_set()["coatings"]
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


def test_cathode_compatibility_verdict_threshold():
    src = _source("LiNbO3", ["CoO2"])
    loose = cathode_compatibility_verdict.original(_ident("LiNbO3"), None, {}, None, LCO, -0.1, src, "own").output
    assert loose.status == "passed" and loose.value < 0 and loose.criterion == ">= -0.1 eV/atom"
    tight = cathode_compatibility_verdict.original(_ident("LiNbO3"), None, {}, None, LCO, loose.value / 2, src,
                                                   "own").output
    assert tight.status == "failed" and "CoO2" in tight.reason and "Nb2O5" in tight.reason


def test_both_pair_verdicts_share_one_details_base_and_stored_documents_decode():
    assert issubclass(CathodeCompatibilityDetails, PairsDetails) and issubclass(InterfacialReactionsDetails, PairsDetails)
    src = _source("LiNbO3", ["CoO2"])
    doc = cathode_compatibility_verdict.original(_ident("LiNbO3"), None, {}, None, LCO, -0.1, src).output
    stored = json.loads(doc.model_dump_json())
    again = CathodeCompatibilityResult.model_validate(stored)
    assert again.details.pairs.keys() == doc.details.pairs.keys() and again.value == doc.value
    # a document stored before the base class and before product_conduction (field order, no new field)
    old = {**_ident("LiNbO3"), "stage": "interfacial_reactions", "status": "failed", "value": -0.1,
           "details": {"pairs": {"LiNbO3 | Li3PS4": {"status": "computed", "reaction_energy": -0.1, "products": ["Li2S"],
                                                     "product_class": {"Li2S": "insulating"}}},
                       "band_gaps": {"Li2S": {"band_gap": 3.4}}, "pairs_not_computed": []}}
    dec = InterfacialReactionsResult.model_validate(old)
    assert dec.details.band_gaps["Li2S"].band_gap == 3.4 and dec.details.pairs["LiNbO3 | Li3PS4"].product_conduction == {}


def test_sulfide_products_are_insulating_mixed_conducting_or_metallic():
    r = interfacial_reactions.original(None, {}, ["Li3PS4"], 0.5, {}, None, source=_source("LiNbO3", ["Li3PS4"]),
                                       li_metal=False)
    pair = r.pairs["LiNbO3 | Li3PS4"]
    assert set(pair.product_conduction) == set(pair.products)
    for p in pair.products:  # the report's three classes split product_class's 'conducting' and nothing else
        kind, gap = pair.product_conduction[p], pair.product_gaps[p]
        assert (kind in ("metallic", "mixed-conducting")) == (pair.product_class[p] == "conducting")
        assert kind == ("unknown" if gap is None else "insulating" if gap >= 0.5 else "metallic" if gap <= 0
                        else "mixed-conducting")
    bad = {p: k for p, k in pair.product_conduction.items() if k in ("metallic", "mixed-conducting")}
    assert bad and all(Composition(p).elements[-1].symbol == "S" for p in bad)  # Nb sulfides
    verdict = interfacial_verdict.original(_ident("LiNbO3"), r.model_dump(), None, 0.5).output
    assert verdict.status == "failed" and all(f"{p} ({k})" in verdict.reason for p, k in bad.items())
    note = InterfacialReactionsStage.note(verdict.details.model_dump())
    assert all(f"{list(bad.values()).count(k)} {k}" in note for k in set(bad.values()))
    assert thermo.conduction_class("Co", None, 0.5) == "metallic" and thermo.conduction_class("TiS2", 0.03, 0.5) \
        == "mixed-conducting" and thermo.conduction_class("LiF", None, 0.5) == "unknown"


def test_the_mp_preflight_asks_for_the_cathode_systems():
    cfg = CampaignConfig(programme="cathode_coating", cathode_compatibility={"cathodes": ["LiCoO2"]})
    systems = _mp_systems(cfg, [Candidate(material_id="c", formula="LiNbO3", source="test")])
    assert "Co-Li-Nb-O" in systems and "Li-Nb-O" in systems
    short = CampaignConfig(programme="cathode_coating", run={"stop_after": "stability_window"})
    assert _mp_systems(short, [Candidate(material_id="c", formula="LiNbO3", source="test")]) == {"Li-Nb-O"}


def test_bundled_cathode_phases_are_the_stated_structures():
    phases = cathode_phases()
    for discharged, charged in (s.values() for s in cathode_coating_set()["cathodes"].values()):
        d, c = (Structure.from_dict(next(v for k, v in phases.items() if k.endswith(":cathode") and Composition(
            k.split(":")[0]).fractional_composition.almost_equals(Composition(f).fractional_composition)))
            for f in (discharged, charged))
        assert "Li" not in c.composition and len(c) == len(d) - d.composition["Li"]  # the same frame emptied
    (nmc,) = [s for s in map(Structure.from_dict, phases.values())
              if s.composition.fractional_composition.almost_equals(Composition("LiNi0.8Mn0.1Co0.1O2").fractional_composition)]
    assert len(nmc) == 40 and nmc.composition["Mn"] == nmc.composition["Co"] == 1  # ten formula units
    assert set(cathode_phases_for(["Li", "Co", "O"])) == {"LiCoO2:cathode", "CoO2:cathode", "CoO:cathode-set",
                                                          "Co3O4:cathode-set"}
    coatings = coating_structures()
    assert {c.composition.reduced_formula for c in coatings.values()} == set(coatings) == {
        "Li4Ti5O12", "Li3PO4", "LiTi2(PO4)3"}
    assert SpacegroupAnalyzer(coatings["Li3PO4"]).get_space_group_symbol() == "Pmn2_1"
    lnmo = Structure.from_dict(phases["Li2Mn3NiO8:cathode"])
    assert SpacegroupAnalyzer(lnmo, symprec=0.01).get_space_group_symbol() == "P4_332"  # the ordered spinel


@pytest.mark.slow
def test_local_cathode_stage_computes_on_chgnet_energies_of_the_bundled_phases(tmp_path, write_config):
    d = tmp_path / "structures"
    d.mkdir()
    for c in example_candidates():
        if c.formula in ("LiNbO3", "LiAlO2") and not c.predicted:
            c.structure.get_primitive_structure().to(filename=str(d / f"{c.formula}.json"))
    cfg = write_config(programme="cathode_coating", candidates={"source": "files", "paths": [str(d)]},
                       thermo={"entries": "local"}, run={"stop_after": "cathode_compatibility"},
                       phase_stability={"e_hull_max": 1.0},
                       stability_window={"oxidation_limit_min": 0.0, "reduction_limit_max": 5.0},
                       cathode_compatibility={"cathodes": ["LiCoO2"]})
    run = run_cli("run", "-c", cfg)
    assert run.returncode == 0, run.stderr[-3000:]
    q = run_cli("query", "-c", cfg, "--json")
    rows = {r["formula"]: r["stages"].get("cathode_compatibility") for r in json.loads(q.stdout)}
    for coating in ("LiNbO3", "LiAlO2"):
        st = rows[coating]
        pairs = st["details"]["pairs"]
        assert st["status"] in ("passed", "failed") and st["backend"] == "mlip" and len(pairs) == 2
        assert all(p["status"] == "computed" and p["reaction_energy"] <= 0 for p in pairs.values())
        assert not any("no entry" in (p["reason"] or "") for p in pairs.values())  # LiCoO2 and CoO2 entries of their own
        assert st["value"] == min(p["reaction_energy"] for p in pairs.values())
        assert (st["status"] == "failed") == (st["value"] < -0.1)
    # the stored values are pymatgen's on the CHGNet energies of the relaxations in the store (MP2020-corrected)
    stores = CampaignStores(load_config(cfg)).connect()
    relaxed = [RelaxedEnergy.from_task_doc(d["output"]) for d in stores.jobs.docs_store.query(
        {"metadata.coatflow.task": "relax"}, properties=["output"]) if "output" in (d.get("output") or {})]
    stores.close()
    entries = [thermo.mp2020_entry(r.structure.composition, r.energy, LOCAL_SCALE) for r in relaxed]
    have = {e.composition.reduced_formula for e in entries}
    assert {"LiCoO2", "CoO2", "CoO", "Co3O4"} <= have  # the bundled cathode phases were relaxed
    for coating in ("LiNbO3", "LiAlO2"):
        pool = thermo.in_chemsys(entries, {"Li", "Co", "O", *(el.symbol for el in Composition(coating).elements)})
        for key, pair in rows[coating]["details"]["pairs"].items():
            partner = key.split("(")[1].rstrip(")")
            assert pair["reaction_energy"] == pytest.approx(_pymatgen_reaction(coating, partner, pool, True), abs=2e-4)


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


def _cathode_run(tmp_path, formulas, **sections) -> dict:
    """``coatflow run`` of the cathode programme on these formulas (snapshot energies); formula -> table row."""
    cfg = CampaignConfig(programme="cathode_coating", candidates={"source": "formulas", "formulas": formulas},
                         run={"workers": 1, "work_dir": str(tmp_path / "w")}, store={"path": str(tmp_path / "s")},
                         **sections)
    report, _ = run_campaign(cfg)
    assert report.jobs_failed == 0, report.errors
    stores = CampaignStores(cfg).connect()
    try:
        return {d["formula"]: d for d in stores.candidates.query({})}
    finally:
        stores.close()


def test_a_coating_without_a_structure_gets_the_formula_level_verdicts(tmp_path):
    """Li3BO3 has no structure (no prototype, nothing bundled). On the snapshot the programme runs its
    formula-level stages before any relaxation, so the funnel judges it there: at the defaults it fails the 4.3 V
    window; with the window opened it gets the cathode and sulfide verdicts, then bulk relax says "no prototype"
    and the migration barrier, which needs a structure, is not planned."""
    default = _cathode_run(tmp_path / "a", ["Li3BO3"])["Li3BO3"]
    assert list(default["stages"]) == ["database_filter", "phase_stability", "stability_window"]
    assert default["failed_stage"] == "stability_window" and default["stages"]["phase_stability"]["status"] == "passed"
    row = _cathode_run(tmp_path / "b", ["Li3BO3"], stability_window={"oxidation_limit_min": 0, "reduction_limit_max": 5},
                       cathode_compatibility={"cathodes": ["LiCoO2"]},
                       interfacial_reactions={"electrolytes": ["Li3PS4"]})["Li3BO3"]
    v = row["stages"]
    assert set(v) == {"database_filter", "phase_stability", "stability_window", "cathode_compatibility",
                      "interfacial_reactions", "bulk_relax"} and row["failed_stage"] is None
    assert v["bulk_relax"]["status"] == "not_computed" and v["bulk_relax"]["reason"].startswith("no prototype")
    cand, entries = database_entries_on_scale(None, _source("Li3BO3", ()))
    w = thermo.stability_window(cand, entries)
    assert (v["stability_window"]["details"]["reduction_limit"], v["stability_window"]["details"]["oxidation_limit"]) \
        == pytest.approx((w.reduction_limit, w.oxidation_limit))
    pool = data.snapshot_entries({"Li", "B", "O", "Co"})
    pairs = cathode_pairs("Li3BO3", LCO, pool)
    assert v["cathode_compatibility"]["value"] == pytest.approx(min(p.reaction_energy for p in pairs.values()))
    assert set(v["interfacial_reactions"]["details"]["pairs"]) == {"Li3BO3 | Li3PS4"}

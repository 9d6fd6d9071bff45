"""Interfacial reactions stage end to end: CHGNet energies, product band gaps from shipped data or GPAW."""

import json

from conftest import li2o, run_cli
from jobflow import run_locally
from pymatgen.core import Composition, Lattice, Structure

from coatflow.launchers.config import load_config
from coatflow.launchers.local import plan_campaign
from coatflow.launchers.stores import CampaignStores
from coatflow.makers.band_gap import GpawBandGapMaker
from coatflow.workflows import reference_data
from coatflow.workflows.campaign import run_plans
from coatflow.workflows.candidates import example_candidates
from coatflow.workflows.reference_data import competing_phases
from coatflow.workflows.schemas.thermo import ProductGap
from coatflow.workflows.stages.interfacial_reactions import _shipped_gaps


def lialo2() -> Structure:
    s = Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.80, 14.21), ["Li", "Al", "O"],
                                  [[0, 0, 0], [0, 0, 0.5], [0, 0, 0.2385]])
    return s.get_primitive_structure()


def test_interfacial_stage_computes_missing_gaps_and_names_missing_partners(tmp_path, write_config):
    d = tmp_path / "structures"
    d.mkdir()
    li2o().to(filename=str(d / "Li2O.json"))
    lialo2().to(filename=str(d / "LiAlO2.json"))
    ligao2 = next(c for c in example_candidates() if c.formula == "LiGaO2")  # fails the window (reduced at 0.9 V)
    ligao2.structure.to(filename=str(d / "LiGaO2.json"))
    cfg = write_config(candidates={"source": "files", "paths": [str(d)]},
                       run={"stop_after": "interfacial_reactions"},  # Alexandria only: the MP snapshot has Li9Al4
                       interfacial_reactions={"electrolytes": ["LiF", "Li3YCl6"], "shipped_gaps": ["alexandria"]})
    run = run_cli("run", "-c", cfg)
    assert run.returncode == 0, run.stderr[-3000:]
    q = run_cli("query", "-c", cfg, "--json")
    docs = {d["formula"]: d["stages"].get("interfacial_reactions") for d in json.loads(q.stdout)}

    # Li reduces LiAlO2 to Li2O + a Li-Al alloy (Li9Al4 on CHGNet); GPAW finds it metallic: a conductor forms.
    al = docs["LiAlO2"]
    li_pair = al["details"]["pairs"]["LiAlO2 | Li"]
    (alloy,) = [p for p in li_pair["products"] if p != "Li2O"]
    assert set(Composition(alloy).chemical_system.split("-")) == {"Al", "Li"}
    assert al["status"] == "failed" and alloy in al["reason"]
    assert li_pair["reaction_energy"] < 0 and "Li2O" in li_pair["products"]
    assert li_pair["product_gaps"][alloy] == 0.0 and li_pair["product_gap_source"][alloy] == "GPAW PBE"
    assert li_pair["product_gap_source"]["Li2O"].startswith("Alexandria")  # shipped gap: no GPAW job

    # Li2O does not react with Li or LiF; Li3YCl6 has no local entry, so the stage is not computed, not passed.
    o = docs["Li2O"]
    assert o["details"]["pairs"]["Li2O | Li"]["products"] == []
    assert o["details"]["pairs"]["Li2O | LiF"]["status"] == "computed"
    assert o["status"] == "not_computed" and "no Li3YCl6 entry" in o["reason"]

    # LiGaO2 fails the window: its reactions with Li (-> LiGa) never run, so no band-gap job is paid for it
    stores = CampaignStores(load_config(cfg)).connect()
    gap_jobs = list(stores.jobs.docs_store.query({"metadata.coatflow.task": "band_gap"},
                                                 properties=["metadata.coatflow.material_id", "output.formula"]))
    stores.close()
    assert docs["LiGaO2"] is None
    assert [g["output"]["formula"] for g in gap_jobs] == [alloy]

    again = run_cli("run", "-c", cfg)
    assert "ran 0 jobs" in again.stderr


def test_a_gap_stored_after_planning_is_taken_from_the_store_not_computed_again(tmp_path, write_config):
    """Two candidates planned on one store (as parallel workers plan them) whose reactions with Li both give the
    Li-Al alloy: the first computes its gap, the second finds it under its key when it runs."""
    d = tmp_path / "structures"
    d.mkdir()
    lialo2().to(filename=str(d / "LiAlO2.json"))
    Structure.from_dict(competing_phases()["Li5AlO4:facts"]).to(filename=str(d / "Li5AlO4.json"))
    sections = {"candidates": {"source": "files", "paths": [str(d)]}, "database_filter": {"e_hull_max": 1.0},
                "phase_stability": {"e_hull_max": 1.0},
                "stability_window": {"reduction_limit_max": 6.0, "oxidation_limit_min": 0.0},
                "interfacial_reactions": {"electrolytes": [], "shipped_gaps": ["alexandria"]}}
    cfg = write_config(**sections, run={"stop_after": "stability_window", "workers": 1})
    assert run_cli("run", "-c", cfg).returncode == 0
    cfg = write_config(**sections, run={"stop_after": "interfacial_reactions", "workers": 1})
    config = load_config(cfg)
    stores = CampaignStores(config)
    try:
        plans, n = plan_campaign(config, stores)  # both planned before either runs: neither knows the alloy's gap
        assert n == 2
        report = run_plans(plans, stores.jobs, tmp_path / "runs")
        assert report.jobs_failed == 0, report.errors
        gap_docs = list(stores.jobs.docs_store.query({"metadata.coatflow.task": "band_gap"},
                                                     properties=["output.formula", "metadata.coatflow"]))
    finally:
        stores.close()
    assert run_cli("build", "-c", cfg).returncode == 0
    docs = {d["formula"]: d["stages"]["interfacial_reactions"]["details"]["pairs"]
            for d in json.loads(run_cli("query", "-c", cfg, "--json").stdout)}
    alloys = [{p for p in pairs[f"{f} | Li"]["products"] if p != "Li2O"} for f, pairs in docs.items()]
    assert alloys[0] == alloys[1] and len(alloys[0]) == 1  # the same Li-Al alloy from both
    (alloy,) = alloys[0]
    assert [g["output"]["formula"] for g in gap_docs] == [alloy]  # one band-gap job, not one per candidate
    for f, pairs in docs.items():
        assert pairs[f"{f} | Li"]["product_gap_source"][alloy] == "GPAW PBE"


def test_shipped_gap_tables_in_order():
    """The default takes Alexandria's PBE gap first, then the MP snapshot's (which, 4f in the core, has Tb2O3);
    an empty list ships none, so every product gets a band-gap job."""
    formulas = {"Li2S", "Li9Al4", "Tb2O3", "Li2O"}
    alexandria = reference_data.alexandria_band_gaps()
    both = _shipped_gaps(["alexandria", "mp_snapshot"], formulas, 0.5)
    assert {f: g.source for f, g in both.items()} == {
        "Li2S": "Alexandria PBE (shipped)", "Li2O": "Alexandria PBE (shipped)",
        "Li9Al4": reference_data.SNAPSHOT_NAME, "Tb2O3": reference_data.SNAPSHOT_NAME}
    assert both["Li2S"].band_gap == alexandria["Li2S"]
    assert both["Tb2O3"].band_gap == min(reference_data.snapshot_row("Tb2O3")["band_gaps"])  # all above 0.5 eV
    snapshot_first = _shipped_gaps(["mp_snapshot", "alexandria"], formulas, 0.5)
    assert snapshot_first["Li2S"].band_gap == min(reference_data.snapshot_row("Li2S")["band_gaps"])
    assert _shipped_gaps([], formulas, 0.5) == {}


def test_gpaw_band_gap_of_an_insulator_and_a_metal(tmp_path):
    li2s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.71), ["S", "Li"], [[0, 0, 0], [0.25] * 3])
    li = Structure.from_spacegroup("Im-3m", Lattice.cubic(3.44), ["Li"], [[0, 0, 0]])
    gaps = {}
    for name, s in (("Li2S", li2s), ("Li", li)):
        job = GpawBandGapMaker().make(s.get_primitive_structure())
        out = run_locally(job, root_dir=str(tmp_path), create_folders=True, log=False)
        gaps[name] = ProductGap.from_calc(out[job.uuid][1].output).band_gap
    assert 3.0 < gaps["Li2S"] < 3.7  # PBE: 3.4 eV (Alexandria 3.53)
    assert gaps["Li"] == 0.0


#: Published windows (V vs Li): Zhu, He, Mo, ACS AMI 7, 23685 (2015); Richards et al., Chem. Mater. 28, 266 (2016)
PUBLISHED_WINDOWS = {"Li7La3Zr2O12": (0.00, 2.91), "Li3PO4": (0.69, 4.21), "Li3PS4": (1.74, 2.32)}


def test_local_windows_of_electrolytes(tmp_path, write_config):
    """CHGNet on the bundled phases: reduction limits within 0.1 V of the published ones. Oxidation
    limits come out too high (the set lacks P2S5, Li4P2O7, ...), so they are only upper bounds."""
    d = tmp_path / "structures"
    d.mkdir()
    for pid, sd in competing_phases().items():
        if pid.split(":")[0] in PUBLISHED_WINDOWS:
            Structure.from_dict(sd).to(filename=str(d / f"{pid.split(':')[0]}.json"))
    # the electrolytes need not be on MP's hull (LLZO: 7.3 meV/atom in the shipped snapshot): both E_hull gates open
    cfg = write_config(candidates={"source": "files", "paths": [str(d)]}, phase_stability={"e_hull_max": 1.0},
                       database_filter={"e_hull_max": 1.0},
                       run={"stop_after": "stability_window"})
    assert run_cli("run", "-c", cfg).returncode == 0
    docs = {d["formula"]: d["stages"]["stability_window"]["details"] for d in json.loads(
        run_cli("query", "-c", cfg, "--json").stdout)}
    for formula, (red, ox) in PUBLISHED_WINDOWS.items():
        w = docs[formula]
        assert abs(w["reduction_limit"] - red) <= 0.1, (formula, w["reduction_limit"])
        assert w["oxidation_limit"] >= ox - 0.1, (formula, w["oxidation_limit"])
    assert "Li2S" in docs["Li3PS4"]["reduction_products"]

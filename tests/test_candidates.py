import pytest

from coatflow.launchers.config import load_config
from coatflow.workflows.candidates import file_candidates, load_candidates, mp_query, predicted_candidate
from coatflow.workflows.analysis.criteria import PRECIOUS_ELEMENTS, excluded_elements
from coatflow.workflows.errors import CoatflowError

from conftest import li2o, lif


def test_folder_of_cif_poscar_and_json(structure_dir):
    cands = file_candidates([str(structure_dir)], structure_dir)
    assert sorted(c.formula for c in cands) == ["Li2O", "LiF", "LiRhO2"]
    assert len({c.material_id for c in cands}) == 3
    assert all(not c.predicted for c in cands)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_nothing\n_this is not a cif\n")
    with pytest.raises(CoatflowError, match="cannot read structure file .*broken.cif"):
        file_candidates([str(bad)], tmp_path)


def test_structure_without_li_is_rejected(tmp_path):
    from pymatgen.core import Lattice, Structure

    Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(filename=str(tmp_path / "MgO.cif"))
    with pytest.raises(CoatflowError, match="MgO contains no Li"):
        file_candidates([str(tmp_path / "MgO.cif")], tmp_path)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(CoatflowError, match="structure path not found"):
        file_candidates(["nowhere"], tmp_path)


def test_formula_is_substituted_into_matching_prototypes():
    protos = {"ex-Li2O": li2o(), "ex-LiF": lif()}
    pred = predicted_candidate("LiCl", protos)
    assert pred.predicted and pred.material_id == "pred-LiCl"
    assert [pid for pid, _ in pred.prototypes] == ["ex-LiF"]
    (_, s), = pred.prototypes
    assert s.composition.reduced_formula == "LiCl"
    assert s.volume > lif().volume  # Cl is larger than F


def test_formula_errors():
    with pytest.raises(CoatflowError, match="contains no Li"):
        predicted_candidate("MgO", {"ex-LiF": lif()})
    with pytest.raises(CoatflowError, match="no prototype"):
        predicted_candidate("LiTbO2", {"ex-LiF": lif()})
    with pytest.raises(CoatflowError, match="not a chemical formula"):
        predicted_candidate("Xx9!", {"ex-LiF": lif()})


def test_a_formula_no_prototype_fits_is_bad_input_only_where_its_stages_need_a_structure():
    """On the snapshot scale the phase-diagram stages need only the formula: Li3BO3 (no example-set prototype by
    one substitution) becomes a candidate with no prototypes; on CHGNet energies it is refused, naming it."""
    from coatflow.launchers.config import CampaignConfig

    formulas = {"source": "formulas", "formulas": ["Li3BO3", "LiNbO3"]}
    cands = {c.formula: c for c in load_candidates(CampaignConfig(candidates=formulas,
                                                                  thermo={"entries": "mp_snapshot"}))}
    assert cands["Li3BO3"].prototypes == [] and cands["Li3BO3"].predicted
    assert [pid for pid, _ in cands["LiNbO3"].prototypes]  # the one a prototype fits keeps its structures
    with pytest.raises(CoatflowError, match="no prototype in the example set matches Li3BO3"):
        load_candidates(CampaignConfig(candidates=formulas))


def test_materials_project_needs_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(f"candidates: {{source: materials_project}}\nstore: {{path: {tmp_path / 's'}}}\n")
    cfg = load_config(path)
    from coatflow.launchers.stores import CampaignStores

    stores = CampaignStores(cfg)
    stores.cache.connect()
    with pytest.raises(CoatflowError, match="MP_API_KEY is not set"):
        load_candidates(cfg, stores.cache)
    assert stores.cache.count() == 0


def test_database_filters_go_into_the_mp_query(tmp_path):
    cfg = load_config(None)
    q = mp_query(cfg)
    assert q["band_gap"] == (0.5, None) and q["energy_above_hull"] == (0.0, 0.005)
    assert set(PRECIOUS_ELEMENTS) <= set(q["exclude_elements"]) and "U" in q["exclude_elements"]
    assert excluded_elements("Li2PtO3", ["precious"]) == {"precious": ["Pt"]}


def test_backend_that_cannot_run_is_named_before_any_job(tmp_path, monkeypatch):
    from coatflow.launchers.config import CampaignConfig
    from coatflow.launchers.local import run_campaign

    monkeypatch.setenv("ATOMATE2_VASP_CMD", "vasp_std_not_installed")
    cfg = CampaignConfig(bulk_relax={"backend": "vasp"}, store={"path": str(tmp_path / "s")})
    with pytest.raises(CoatflowError, match="backend 'vasp' for task 'relax' cannot run here: missing the VASP "
                                            "command 'vasp_std_not_installed'"):
        run_campaign(cfg)
    assert not (tmp_path / "s").exists()  # nothing written


def _snapshot_run(tmp_path, monkeypatch, formulas, **sections):
    """Run the funnel on these snapshot formulas to the bulk relaxation; (table rows, materials relaxed)."""
    from coatflow.launchers.config import CampaignConfig
    from coatflow.launchers.local import run_campaign
    from coatflow.launchers.stores import CampaignStores
    from coatflow.workflows import reference_data

    monkeypatch.setattr(reference_data, "snapshot_ternaries", lambda: formulas)
    cfg = CampaignConfig(candidates={"source": "mp_snapshot"}, thermo={"entries": "mp_snapshot"},
                         run={"stop_after": "bulk_relax", "workers": 1, "work_dir": str(tmp_path / "w")},
                         store={"path": str(tmp_path / "s")}, **sections)
    report, _ = run_campaign(cfg)
    assert report.jobs_failed == 0, report.errors
    stores = CampaignStores(cfg).connect()
    try:
        rows = {d["formula"]: d for d in stores.candidates.query({})}
        relaxed = {d["metadata"]["coatflow"]["material_id"] for d in stores.jobs.docs_store.query(
            {"metadata.coatflow.task": "relax"}, properties=["metadata.coatflow.material_id"])}
    finally:
        stores.close()
    return rows, relaxed


PHASE_DIAGRAM_STAGES = {"phase_stability", "stability_window", "interfacial_reactions"}


def test_on_the_snapshot_the_phase_diagram_stages_run_before_the_relaxation(tmp_path, monkeypatch):
    """Li8SiO6 and Li5AlO4 clear the database filter; with Li metal they form metallic Li21Si5 and Li9Al4, so the
    interfacial stage (formula level, on the snapshot) fails them, and neither is ever relaxed."""
    rows, relaxed = _snapshot_run(tmp_path, monkeypatch, ["Li8SiO6", "Li5AlO4"])
    for f in ("Li8SiO6", "Li5AlO4"):
        assert set(rows[f]["stages"]) == {"database_filter", *PHASE_DIAGRAM_STAGES}
        assert rows[f]["failed_stage"] == "interfacial_reactions"
        assert "(metallic)" in rows[f]["stages"]["interfacial_reactions"]["reason"]
    assert relaxed == set()


def test_snapshot_formula_without_a_structure_type_is_not_computed_at_bulk_relax(tmp_path, monkeypatch):
    """Two snapshot formulas that pass the formula-level stages (partner Li3PO4 only): Li8SiO6 (Li8SnO6 type) is
    then relaxed in its type; Li5AlO4 (no Li5MO4 type) is "not computed: no prototype", with no relaxation, and
    its phase-diagram verdicts are the snapshot's, as for any formula."""
    from coatflow.workflows import reference_data
    from coatflow.workflows.stages.phase_stability import phase_stability_verdict

    rows, relaxed = _snapshot_run(tmp_path, monkeypatch, ["Li8SiO6", "Li5AlO4"],
                                  interfacial_reactions={"electrolytes": ["Li3PO4"], "with_li_metal": False})
    no_type = rows["Li5AlO4"]
    assert no_type["stages"]["database_filter"]["status"] == "passed"
    br = no_type["stages"]["bulk_relax"]
    assert br["status"] == "not_computed" and br["reason"].startswith("no prototype") and "Li5MO4" in br["reason"]
    assert set(no_type["stages"]) == {"database_filter", "bulk_relax", *PHASE_DIAGRAM_STAGES}
    assert no_type["failed_stage"] is None
    src = {"kind": "mp_snapshot", "backend": "mlip", "material_id": reference_data.snapshot_id("Li5AlO4"),
           "elements": ["Al", "Li", "O"], "state": reference_data.snapshot_version()}
    direct = phase_stability_verdict.original({"material_id": "t", "formula": "Li5AlO4", "source": "t",
                                               "predicted": True}, None, {}, None, 0.005, [], src).output
    ps = no_type["stages"]["phase_stability"]
    assert ps["status"] == direct.status != "not_computed" and ps["value"] == pytest.approx(direct.value)
    typed = rows["Li8SiO6"]["stages"]
    assert typed["bulk_relax"]["status"] == "passed" and typed["bulk_relax"]["details"]["prototype"] == "Li8SnO6"
    assert all(typed[s]["status"] == "passed" for s in PHASE_DIAGRAM_STAGES)
    assert relaxed == {"mps-Li8SiO6"}
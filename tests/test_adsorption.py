"""Li adsorption stage: site enumeration, bulk-Li reference, a real CHGNet run on Li2O(110), resume without duplicates."""

import warnings
from itertools import combinations

import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from coatflow.launchers.config import CampaignConfig
from coatflow.makers import adsorption as mk
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.adsorption_sites import adslab, enumerate_sites
from coatflow.workflows.analysis.slabs import candidate_slabs
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, make_key, run_plans
from coatflow.workflows.candidates import Candidate, example_structures
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import StageResult
from coatflow.workflows.schemas.adsorption import LiAdsorptionResult

warnings.filterwarnings("ignore")


@pytest.fixture(scope="module")
def lif():
    return example_structures()["ex-LiF"]


def test_site_counts_do_not_depend_on_vacuum(lif):
    counts = []
    for vacuum in (10.0, 20.0):
        kept, _ = candidate_slabs(lif, layers=1, vacuum=vacuum, min_lw=4.0, max_atoms=40)
        counts.append({tuple(k["miller_index"]): sorted(s["site_type"] for s in enumerate_sites(k["structure"]))
                       for k in kept})
    assert counts[0] == counts[1]
    assert any("ontop" in v for v in counts[0].values())
    # LiF(111) is a Tasker type-3 polar surface: it must be left out (needs oxidation states to be seen)
    assert (1, 1, 1) not in counts[0] and (1, 0, 0) in counts[0]


def test_bad_settings_raise(lif):
    with pytest.raises(AnalysisError):
        candidate_slabs(lif, layers=0)
    with pytest.raises(CoatflowError):
        mk.select_surface.original(lif, mk.LiAdsorptionMaker(max_sites=0))


# Li2O(110), 24 atoms: stoichiometric and non-polar; Li binds strongly on top of surface O (CHGNet: -0.67 eV)
SETTINGS = {"layers": 1, "min_lw": 4.0, "vacuum": 10.0, "max_atoms": 30, "max_sites": 4, "fmax": 0.1, "steps": 100}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graphs: a second thread only spins on a shared machine
    li2o = example_structures()["ex-Li2O"]
    cfg = CampaignConfig(li_adsorption=SETTINGS)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    planner = FunnelPlanner(cfg, store)
    cand = Candidate("test-Li2O", "Li2O", "test", li2o)
    verdict = StageResult(material_id="test-Li2O", formula="Li2O", stage="stability_window", status="passed",
                          structure=li2o)
    plan = CandidatePlan(cand)
    cfg.stage("li_adsorption").plan(planner, plan, make_key("test-Li2O"), verdict)
    try:
        run_plans([plan], store, tmp_path_factory.mktemp("runs"))
    finally:
        torch.set_num_threads(threads)
    return planner, store, cand, verdict


def _docs(store, task):
    return list(store.query({"metadata.coatflow.task": task}, load=True))


def _adsorption(store):
    (d,) = _docs(store, "adsorption")
    return d["output"]


def test_sites_are_distinct(campaign):
    _, store, _, _ = campaign
    doc = _adsorption(store)
    slab = Structure.from_dict(doc["slab"])
    slab.remove_site_property("selective_dynamics")
    sites = enumerate_sites(slab)  # deterministic: the same list the job relaxed from
    assert len(sites) == doc["surface"]["n_sites_enumerated"] >= 3
    assert {s["site_type"] for s in sites} >= {"ontop", "bridge"}
    # independent check: no two Li-on-slab starting structures are symmetry-equivalent (pymatgen StructureMatcher)
    ads = [adslab(slab, s) for s in sites]
    sm = StructureMatcher(ltol=0.1, stol=0.1, angle_tol=2, primitive_cell=False, scale=False, attempt_supercell=False)
    assert not [(i, j) for i, j in combinations(range(len(ads)), 2) if sm.fit(ads[i], ads[j])]
    # the relaxed set is the max_sites lowest by single-point energy; the rest are recorded, not dropped silently
    idx = [s["index"] for s in doc["sites"]]
    assert len(idx) == len(set(idx)) == min(SETTINGS["max_sites"], len(sites))
    assert len(doc["surface"]["sites_not_relaxed"]) == len(sites) - len(idx)


def test_reference_is_bulk_li(campaign):
    _, store, _, _ = campaign
    doc = _adsorption(store)
    (ref,) = _docs(store, "li_reference")
    li = mk._task_summary(ref["output"])
    bcc = li["structure"]
    assert bcc.composition.reduced_formula == "Li" and SpacegroupAnalyzer(bcc).get_space_group_symbol() == "Im-3m"
    assert doc["reference"].startswith("bulk bcc Li")
    assert doc["mu_li"]["mlip"] == pytest.approx(li["energy"] / len(bcc))
    # bulk, not atom: mu_Li lies a cohesive energy (~1.6 eV expt) below the isolated atom
    assert doc["mu_li"]["mlip"] < doc["isolated_atom_energy"]["mlip"] - 1.0


def test_strongly_binding_site_on_li2o(campaign):
    _, store, _, _ = campaign
    (v,) = _docs(store, "verdict")
    doc = _adsorption(store)
    assert doc["surface"]["miller_index"] == [1, 1, 0] and doc["surface"]["gamma"] > 0
    good = [s for s in doc["sites"] if not s["flags"]]
    assert doc["e_ads_min"] == pytest.approx(min(s["e_ads_ml"] for s in good))
    best = next(s for s in doc["sites"] if s["index"] == doc["min_site"])
    # strongly binding: well below 0 eV vs bulk Li, with Li bonded to the surface (not desorbed, not inside)
    assert doc["e_ads_min"] < -0.5
    assert 0.5 < best["li_height"] < 3.0 and best["coordination"] >= 2 and "O" in best["neighbours"]
    assert len(best["structure"]["sites"]) == len(doc["slab"]["sites"]) + 1  # relaxed adslab stored
    assert v["output"]["status"] == "passed" and v["output"]["value"] == pytest.approx(doc["e_ads_min"])
    assert v["output"]["details"]["site"]["index"] == doc["min_site"]
    assert v["output"]["@class"] == "LiAdsorptionResult"  # the typed verdict document, as stored
    typed = LiAdsorptionResult.model_validate({k: x for k, x in v["output"].items() if not k.startswith("@")})
    assert typed.details.site.site_type == best["site_type"] and typed.details.dft.status == "not_run"
    assert typed.details.e_ads[doc["min_site"]].ml == pytest.approx(doc["e_ads_min"])
    assert doc["dft"]["status"] == "not_run" and doc["dft"]["reason"]


def test_rerun_adds_no_documents(campaign):
    planner, store, cand, verdict = campaign
    before = store.count()
    plan = CandidatePlan(cand)
    out = planner.config.stage("li_adsorption").plan(planner, plan, make_key("test-Li2O"), verdict)
    assert plan.jobs == [] and out.passed  # the stored verdict, decoded only when asked
    assert isinstance(out.decoded(), LiAdsorptionResult) and isinstance(out.decoded(), StageResult)
    assert store.count() == before

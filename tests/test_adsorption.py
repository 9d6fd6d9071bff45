"""Li adsorption stage: site enumeration, bulk-Li reference, a real CHGNet run, and resume without duplicates."""

import warnings

import numpy as np
import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore

from coatflow.launchers.config import CampaignConfig
from coatflow.workflows import adsorption as phys
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, make_key, run_plans
from coatflow.workflows.candidates import Candidate, example_structures
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import StageResult

warnings.filterwarnings("ignore")


@pytest.fixture(scope="module")
def lif():
    return example_structures()["ex-LiF"]


def test_site_counts_do_not_depend_on_vacuum(lif):
    counts = []
    for vacuum in (10.0, 20.0):
        kept, _ = phys.candidate_slabs(lif, layers=1, vacuum=vacuum, min_lw=4.0, max_atoms=40)
        counts.append({tuple(k["miller_index"]): sorted(s["site_type"] for s in phys.enumerate_sites(k["structure"]))
                       for k in kept})
    assert counts[0] == counts[1]
    assert any("ontop" in v for v in counts[0].values())


def test_bad_settings_raise(lif):
    with pytest.raises(CoatflowError):
        phys.candidate_slabs(lif, layers=0)


@pytest.fixture(scope="module")
def campaign(lif, tmp_path_factory):
    cfg = CampaignConfig(adsorption={"layers": 1, "min_lw": 4.0, "vacuum": 10.0, "max_atoms": 16})
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    planner = FunnelPlanner(cfg, store)
    cand = Candidate("test-LiF", "LiF", "test", lif)
    verdict = StageResult(material_id="test-LiF", formula="LiF", stage="stability_window", status="passed",
                          structure=lif)
    plan = CandidatePlan(cand)
    phys.plan_li_adsorption(planner, plan, make_key("test-LiF"), verdict)
    run_plans([plan], store, tmp_path_factory.mktemp("runs"))
    return planner, store, cand, verdict


def _docs(store, task):
    return list(store.query({"metadata.coatflow.task": task}, load=True))


def test_ml_adsorption_on_lif(campaign):
    _, store, _, _ = campaign
    (v,) = _docs(store, "verdict")
    (d,) = _docs(store, "adsorption")
    doc = d["output"]
    # every enumerated site is distinct: no two initial Li positions coincide
    assert len(doc["sites"]) >= 3
    assert len({s["index"] for s in doc["sites"]}) == len(doc["sites"])
    # the reference is bulk bcc Li: its energy per atom lies well below the isolated atom's (Li cohesive energy ~1.6 eV)
    assert doc["reference"].startswith("bulk bcc Li")
    assert doc["mu_li"]["mlip"] < doc["isolated_atom_energy"]["mlip"] - 1.0
    # the selected minimum is the lowest unflagged site, and the verdict applies the threshold to it
    good = [s["e_ads_ml"] for s in doc["sites"] if not s["flags"]]
    assert doc["e_ads_min"] == pytest.approx(min(good))
    assert v["output"]["value"] == pytest.approx(doc["e_ads_min"])
    assert v["output"]["status"] == ("passed" if doc["e_ads_min"] <= 0.0 else "failed")
    # relaxed structures are stored: the Li of the minimum site moved from its starting point
    best = next(s for s in doc["sites"] if s["index"] == doc["min_site"])
    assert len(best["structure"]["sites"]) == len(doc["slab"]["sites"]) + 1
    assert doc["dft"]["status"] == "not_run" and doc["dft"]["reason"]
    assert doc["surface"]["gamma"] > 0 and np.isfinite(doc["surface"]["gamma"])


def test_rerun_adds_no_documents(campaign):
    planner, store, cand, verdict = campaign
    before = store.count()
    plan = CandidatePlan(cand)
    out = phys.plan_li_adsorption(planner, plan, make_key("test-LiF"), verdict)
    assert plan.jobs == [] and isinstance(out, StageResult)
    assert store.count() == before

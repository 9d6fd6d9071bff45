"""Li migration stage: the typed verdict, VASP inputs, backends and config, CHGNet CI-NEB through the planner
(the geometry and percolation physics: tests/test_analysis_hops.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coatflow.workflows.stages.migration_barrier import MigrationBarrierStage
from coatflow.workflows.analysis.hops import plan_hops

X, Y, Z = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def li2o_cubic(a: float = 4.65) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])


# -- the verdict document -------------------------------------------------------------------------

def test_verdict_document_is_typed_and_reads_like_before():
    """The verdict from a stage document without a store: typed details, and what the table and the builder read."""
    from coatflow.workflows.analysis.hops import summarize
    from coatflow.workflows.schemas import StageSummary
    from coatflow.workflows.schemas.migration import MigrationBarrierResult, MigrationDetails

    graph = {"n_sites": 1, "edges": [[0, 0, list(X), 0], [0, 0, list(Y), 0], [0, 0, list(Z), 0]]}
    hop = {"hop_label": 0, "length": 2.33, "forward_barrier": 0.31, "reverse_barrier": 0.3, "converged": True,
           "status": "converged", "n_atoms": 11}
    doc = summarize([hop], graph, [], {"hop_cutoff": 2.5})
    r = MigrationBarrierResult.from_summary(doc, 0.7, material_id="test-Li2O", formula="Li2O", backend="mlip",
                                            task_uuids=["u"], structure=li2o_cubic())
    assert isinstance(r.details, MigrationDetails) and r.details.hops[0].barrier == 0.31
    assert (r.stage, r.status, r.value, r.unit, r.criterion) == ("migration_barrier", "passed", 0.31, "eV",
                                                                 "E_m < 0.7 eV")
    summary = StageSummary(**r.model_dump(include=set(StageSummary.model_fields)))
    assert MigrationBarrierStage.note(summary.details) == " 3D"  # the table cell's note
    failed = MigrationBarrierResult.from_summary(doc, 0.3, material_id="test-Li2O", formula="Li2O")
    assert failed.status == "failed" and not failed.passed and failed.reason == "E_m = 0.31 eV >= 0.3 eV"
    empty = MigrationBarrierResult.from_summary(None, 0.7, material_id="test-Li2O", formula="Li2O")
    assert empty.status == "not_computed" and empty.reason == "no migration result"
    assert MigrationBarrierStage.note(empty.model_dump()["details"]) == ""


# -- backends -------------------------------------------------------------------------------------

def test_vasp_neb_inputs(tmp_path):
    from pymatgen.io.vasp import Incar, Poscar

    from coatflow.makers.neb import VaspNebInputMaker

    h = plan_hops(li2o_cubic(), "Li", cutoff=2.5, min_size=4.5)[0][0]
    for vtst in (True, False):
        d = VaspNebInputMaker(n_images=3, vtst=vtst).write_inputs(h["start"], h["end"], tmp_path / str(vtst))
        incar = Incar.from_file(d / "INCAR")
        assert incar["IMAGES"] == 3 and incar["SPRING"] == -5
        assert ("LCLIMB" in incar) is vtst and incar["IBRION"] == (3 if vtst else 1)
        poscars = [Poscar.from_file(d / f"{i:02d}" / "POSCAR").structure for i in range(5)]
        assert {len(p) for p in poscars} == {len(h["start"])}
        assert (d / "POTCAR.spec").read_text().split() == ["Li_sv", "O"]
        # the moving Li goes monotonically from start to end
        k = h["hop"]["moving_index"]
        steps = [poscars[i][k].distance(poscars[0][k]) for i in range(5)]
        assert all(b > a for a, b in zip(steps, steps[1:], strict=False))


def test_gpaw_images_get_their_own_calculators():
    pytest.importorskip("gpaw")
    from coatflow.makers.neb import GpawNebHopMaker

    calcs = GpawNebHopMaker().calculators(5)
    assert len({id(c) for c in calcs}) == 5


def test_registry_and_config():
    from coatflow.launchers.config import CampaignConfig
    from coatflow.makers.neb import MigrationMaker
    from coatflow.makers.registry import get_maker

    m = get_maker("neb", "mlip")
    assert isinstance(m, MigrationMaker) and m.hop_maker.climb
    cfg = CampaignConfig(migration_barrier={"n_images": 5, "fmax": 0.05, "hop_cutoff": 3.0})
    tuned = cfg.stage("migration_barrier").neb_maker(m)
    assert (tuned.hop_maker.n_images, tuned.hop_maker.fmax, tuned.hop_cutoff) == (5, 0.05, 3.0)
    with pytest.raises(Exception, match="n_images"):
        CampaignConfig(migration_barrier={"n_images": 0})


# -- end to end: CHGNet CI-NEB of the Li2O vacancy hop through the stage planner ----------------------

def test_li2o_vacancy_hop_chgnet_through_planner(tmp_path):
    """Plans the stage from a stored upstream verdict, runs it, checks the physics, then replans (cached)."""
    from jobflow import JobStore
    from maggma.stores import MemoryStore

    from coatflow.launchers.config import CampaignConfig
    from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, run_plans
    from coatflow.workflows.candidates import Candidate
    from coatflow.workflows.schemas import StageResult

    # tiny cell (11 atoms) so CI stays fast; only the a/2 nearest-neighbour hop
    cfg = CampaignConfig(migration_barrier={"hop_cutoff": 2.5, "min_size": 4.5, "n_images": 3, "fmax": 0.1,
                                            "steps": 150})
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    s = li2o_cubic()
    cand = Candidate("test-Li2O", "Li2O", "test", structure=s)
    upstream = StageResult(material_id=cand.material_id, formula="Li2O", stage="interfacial_reactions",
                           status="passed", structure=s)
    planner = FunnelPlanner(cfg, store)
    plan = CandidatePlan(cand)
    out = cfg.stage("migration_barrier").plan(planner, plan, "upstream-key", upstream)
    assert out is not None and len(plan.jobs) == 2  # enumeration (replaced by NEB jobs) + verdict
    report = run_plans([plan], store, tmp_path)
    assert report.jobs_failed == 0, report.errors

    hop_doc = store.query_one({"name": {"$regex": "^neb hop"}}, load=True)
    assert hop_doc["metadata"]["coatflow"]["material_id"] == "test-Li2O"  # run-time jobs are labelled
    summary_doc = store.query_one({"name": {"$regex": "^migration summary"}}, properties=["metadata"])
    label = summary_doc["metadata"]["coatflow"]
    assert {k: v for k, v in label.items() if k != "flow"} == {
        "material_id": "test-Li2O", "stage": "migration_barrier", "task": "neb", "backend": "mlip"}  # not the key
    # ``flow``: the stage's key, which the job that produced the stage's output carries
    assert store.query_one({"metadata.coatflow.key": label["flow"]}, properties=["uuid"]) is not None
    hop = hop_doc["output"]
    assert hop["climbing"] and hop["converged"] and hop["status"] == "converged"
    assert 0 < hop["climbing_image"] < len(hop["energy_profile"]) - 1
    assert hop["max_force"] <= 0.1
    assert 0.1 < hop["forward_barrier"] < 1.0  # DFT/experiment: a few tenths of an eV
    e0, e1 = (e["energy"] for e in hop["endpoints"])
    assert hop["forward_barrier"] - hop["reverse_barrier"] == pytest.approx(e1 - e0, abs=1e-6)
    assert abs(e1 - e0) < 0.02  # symmetry-equivalent endpoints
    assert len(hop["images"]) == 5 and all(len(im["sites"]) == 11 for im in hop["images"])  # from the data store
    assert np.allclose(hop["energy_profile"], hop["energy_profile"][::-1], atol=0.03)  # symmetric path

    verdict = store.query_one({"metadata.coatflow.task": "verdict", "metadata.coatflow.stage": "migration_barrier"},
                              load=True)["output"]
    assert verdict["status"] == "passed" and verdict["value"] == pytest.approx(hop["forward_barrier"], abs=1e-3)
    assert verdict["details"]["dimensionality"] == "3D" and verdict["@class"] == "MigrationBarrierResult"

    # rerun: everything is stored, nothing new is planned
    plan2 = CandidatePlan(cand)
    again = cfg.stage("migration_barrier").plan(FunnelPlanner(cfg, store), plan2, "upstream-key", upstream)
    assert plan2.jobs == [] and again.passed and again.status == "passed"
    assert again.details.dimensionality == "3D"  # the stored verdict decodes into the typed document

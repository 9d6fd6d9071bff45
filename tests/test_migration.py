"""Li migration stage: percolation on hand-built hop graphs, endpoint checks, VASP inputs, CHGNet CI-NEB."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from coatflow.workflows import migration as mig
from coatflow.workflows.errors import CoatflowError

X, Y, Z = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def li2o_cubic(a: float = 4.65) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])


# -- percolation --------------------------------------------------------------------------------

def test_percolation_1d_channel():
    # one site; a cheap hop along z only, an expensive one along x
    edges = [(0, 0, Z, 0), (0, 0, X, 1)]
    p = mig.percolation(1, edges, {0: 0.3, 1: 0.9})
    assert p["e_m"] == 0.3 and p["dimensionality"] == "1D" and p["limiting_hop"] == 0
    assert [(o["barrier"], o["dimensionality"]) for o in p["onsets"]] == [(0.3, "1D"), (0.9, "2D")]


def test_percolation_3d_network():
    edges = [(0, 0, X, 0), (0, 0, Y, 0), (0, 0, Z, 0)]
    p = mig.percolation(1, edges, {0: 0.25})
    assert p["e_m"] == 0.25 and p["dimensionality"] == "3D"


def test_percolation_blocked_until_high_hop_opens():
    # two sites joined inside the cell by a low hop (a closed dimer, 0D); only the high inter-cell hop
    # connects dimers, so transport starts at the high barrier
    edges = [(0, 1, (0, 0, 0), 0), (1, 0, X, 1), (1, 0, Y, 1), (1, 0, Z, 1)]
    p = mig.percolation(2, edges, {0: 0.1, 1: 0.55})
    assert p["e_m"] == 0.55 and p["dimensionality"] == "3D" and p["limiting_hop"] == 1
    assert mig.periodic_dimensionality(2, [(0, 1, (0, 0, 0))]) == 0


def test_percolation_asymmetric_hop_counts_with_larger_direction():
    edges = [(0, 1, (0, 0, 0), 0), (1, 0, Z, 0)]  # A-B-A'-B' chain along z
    p = mig.percolation(2, edges, {0: (0.2, 0.45)})
    assert p["e_m"] == 0.45 and p["dimensionality"] == "1D"


def test_percolation_2d_and_unknown_barriers():
    edges = [(0, 0, X, 0), (0, 0, Y, 0), (0, 0, Z, 1)]
    assert mig.percolation(1, edges, {0: 0.4})["dimensionality"] == "2D"
    # hop 0 without a barrier (e.g. unconverged) is blocked: only the z channel remains
    p = mig.percolation(1, edges, {0: None, 1: 0.6})
    assert p["e_m"] == 0.6 and p["dimensionality"] == "1D"
    assert mig.percolation(1, edges, {})["e_m"] is None


def test_hops_to_confirm():
    rows = [{"hop_label": 0, "barrier": 0.3}, {"hop_label": 1, "barrier": 0.65}, {"hop_label": 2, "barrier": 1.2},
            {"hop_label": 3, "barrier": None}]
    assert mig.hops_to_confirm(rows, 0.3, 0.7, margin=0.1) == [0, 1]


# -- hop enumeration and endpoints ----------------------------------------------------------------

def test_li2o_hops_and_endpoint_checks():
    hops, graph, skipped = mig.plan_hops(li2o_cubic(), "Li", cutoff=3.5, min_size=8.0, max_atoms=200, max_hops=4)
    assert [round(h["hop"]["length"], 2) for h in hops] == [2.33, 3.29]  # a/2 and a/sqrt(2)
    assert not skipped and graph["n_sites"] == 2
    for h in hops:
        start, end, hop = h["start"], h["end"], h["hop"]
        assert len(start) == len(end) == hop["n_host"] - 1
        assert min(mig.perpendicular_widths(start.lattice.matrix)) >= 8.0
        k = hop["moving_index"]
        assert start[k].species_string == "Li"
        assert start[k].distance(end[k]) == pytest.approx(hop["length"], abs=1e-3)
    # percolation graph: the a/2 hop alone connects the simple-cubic Li sublattice in 3D
    short = hops[0]["hop"]["label"]
    assert mig.percolation(graph["n_sites"], graph["edges"], {short: 0.3})["dimensionality"] == "3D"
    # rel_cutoff keeps the a/2 hop and lists the a/sqrt(2) one as skipped
    hops, _, skipped = mig.plan_hops(li2o_cubic(), "Li", cutoff=3.5, min_size=4.5, rel_cutoff=1.3)
    assert len(hops) == 1 and [round(s["length"], 2) for s in skipped] == [3.29]
    assert "rel_cutoff" in skipped[0]["reason"]


def test_endpoint_checks_catch_extra_atom_and_lost_ion():
    hops, _, _ = mig.plan_hops(li2o_cubic(), "Li", cutoff=2.5, min_size=4.5)
    h = hops[0]
    start, end, hop = h["start"], h["end"], h["hop"]
    extra = end.copy()
    extra.append("Li", [0.51, 0.49, 0.02])  # pymatgen-analysis-diffusion #436: an extra atom
    with pytest.raises(CoatflowError, match="atoms"):
        mig.check_endpoints(start, extra, hop)
    lost = start.copy()
    lost.replace(hop["moving_index"], "O")  # the moving ion is gone
    with pytest.raises(CoatflowError):
        mig.check_endpoints(lost, end, hop)


def test_bad_inputs():
    with pytest.raises(CoatflowError, match="no Li"):
        mig.plan_hops(Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]))
    with pytest.raises(CoatflowError, match="Structure"):
        mig.plan_hops("Li2O")
    with pytest.raises(CoatflowError, match="too small"):
        mig.vacancy_endpoints(li2o_cubic(), {"label": 0, "ipos": [0.25] * 3, "epos": [1.25, 0.25, 0.25],
                                             "length": 4.65}, [1, 1, 1])


# -- backends -------------------------------------------------------------------------------------

def test_vasp_neb_inputs(tmp_path):
    from pymatgen.io.vasp import Incar, Poscar

    from coatflow.makers.neb import VaspNebInputMaker

    h = mig.plan_hops(li2o_cubic(), "Li", cutoff=2.5, min_size=4.5)[0][0]
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
    cfg = CampaignConfig(migration={"n_images": 5, "fmax": 0.05, "hop_cutoff": 3.0})
    tuned = mig.migration_maker(cfg)
    assert (tuned.hop_maker.n_images, tuned.hop_maker.fmax, tuned.hop_cutoff) == (5, 0.05, 3.0)
    with pytest.raises(Exception, match="n_images"):
        CampaignConfig(migration={"n_images": 0})


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
    cfg = CampaignConfig(migration={"hop_cutoff": 2.5, "min_size": 4.5, "n_images": 3, "fmax": 0.1, "steps": 150})
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    s = li2o_cubic()
    cand = Candidate("test-Li2O", "Li2O", "test", structure=s)
    upstream = StageResult(material_id=cand.material_id, formula="Li2O", stage="interfacial_reactions",
                           status="passed", structure=s)
    planner = FunnelPlanner(cfg, store)
    plan = CandidatePlan(cand)
    out = mig.plan_migration_barrier(planner, plan, "upstream-key", upstream)
    assert out is not None and len(plan.jobs) == 2  # enumeration (replaced by NEB jobs) + verdict
    report = run_plans([plan], store, tmp_path)
    assert report.jobs_failed == 0, report.errors

    hop_doc = store.query_one({"name": {"$regex": "^neb hop"}}, load=True)
    assert hop_doc["metadata"]["coatflow"]["material_id"] == "test-Li2O"  # run-time jobs are labelled
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
    assert verdict["details"]["dimensionality"] == "3D"

    # rerun: everything is stored, nothing new is planned
    plan2 = CandidatePlan(cand)
    again = mig.plan_migration_barrier(FunnelPlanner(cfg, store), plan2, "upstream-key", upstream)
    assert plan2.jobs == [] and isinstance(again, StageResult) and again.passed

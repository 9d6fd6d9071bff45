"""Restart policy of GPAW and force-field jobs (makers/restarts.py) on real failures, the attempts record in the
store and in ``coatflow status`` (launchers/attempts.py), and keyed NEB sub-jobs: a resume reruns only what
did not finish."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np
import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from coatflow.makers.restarts import RestartPolicy, RestartsExhausted

# a 2-atom LiF cell at 250 eV: its SCF needs 8 iterations (GPAW 26.7), so maxiter=5 really fails
GPAW_SMALL = {"mode": {"name": "pw", "ecut": 250}, "kpts": {"size": (2, 2, 2), "gamma": True}}


def lif() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"],
                                     [[0, 0, 0], [0.5] * 3]).get_primitive_structure()


def job_store() -> JobStore:
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    return store


def seconds(attempt: dict) -> float:
    return (datetime.fromisoformat(attempt["ended"]) - datetime.fromisoformat(attempt["started"])).total_seconds()


def test_gpaw_scf_not_converged_is_restarted_with_more_iterations_and_damped_mixing(tmp_path, monkeypatch):
    pytest.importorskip("gpaw")
    from gpaw import GPAW

    from coatflow.makers.gpaw import GpawStaticMaker

    monkeypatch.chdir(tmp_path)
    store = job_store()
    job = GpawStaticMaker(calculator_kwargs={**GPAW_SMALL, "maxiter": 5}).make(lif())
    job.metadata["coatflow"] = {"material_id": "t-LiF", "stage": "bulk_relax", "key": "k-scf"}
    run_locally(job, store=store, create_folders=True, root_dir=tmp_path, log=False)

    doc = store.query_one({"uuid": job.uuid}, load=True)
    attempts = doc["metadata"]["attempts"]
    assert doc["metadata"]["attempts_status"] == "restarted" and len(attempts) == 2
    assert attempts[0]["error"].startswith("KohnShamConvergenceError")
    assert attempts[0]["correction"] == {"maxiter": 10, "mixer": {"beta": 0.025, "nmaxold": 8}}
    assert attempts[1]["error"] is None
    assert all(a["started"].endswith("+00:00") and a["started"] <= a["ended"] for a in attempts)  # aware UTC
    # the restarted energy is the converged one: the same cell, converged by GPAW directly (default maxiter)
    atoms = lif().to_ase_atoms()
    atoms.calc = GPAW(**{"xc": "PBE", "occupations": {"name": "fermi-dirac", "width": 0.1},
                         "convergence": {"energy": 1e-5}, **GPAW_SMALL, "txt": None})
    assert doc["output"]["output"]["energy"] == pytest.approx(atoms.get_potential_energy(), abs=2e-4)


def test_gpaw_giving_up_leaves_a_record_the_planner_never_reads_as_done(tmp_path, monkeypatch):
    pytest.importorskip("gpaw")
    from coatflow.launchers.attempts import attempt_lines, attempt_rows
    from coatflow.makers.band_gap import GpawBandGapMaker

    monkeypatch.chdir(tmp_path)
    store = job_store()
    maker = GpawBandGapMaker(calculator_kwargs={**GPAW_SMALL, "maxiter": 1}, restarts=RestartPolicy(max_restarts=1))
    job = maker.make(lif())
    job.metadata["coatflow"] = {"material_id": "t-LiF", "stage": "interfacial_reactions", "key": "k-gap"}
    responses = run_locally(job, store=store, create_folders=True, root_dir=tmp_path, log=False)
    assert job.uuid not in responses  # the job failed: 1 + 1 attempts of 1 and 2 SCF iterations

    doc = store.query_one({"uuid": job.uuid})
    assert doc["output"] is None and doc["metadata"]["attempts_status"] == "failed"
    assert [a["attempt"] for a in doc["metadata"]["attempts"]] == [1, 2]
    assert doc["metadata"]["attempts"][0]["correction"]["maxiter"] == 2
    assert doc["metadata"]["attempts"][1]["correction"] == {"action": "give up"}
    assert "coatflow" not in doc["metadata"] and doc["metadata"]["failed_coatflow"]["key"] == "k-gap"
    assert store.query_one({"metadata.coatflow.key": "k-gap"}) is None  # no lookup finds it as work done

    rows = attempt_rows(store.docs_store)
    assert [(r["status"], r["material_id"], len(r["attempts"])) for r in rows] == [("failed", "t-LiF", 2)]
    lines = attempt_lines(rows)
    assert lines[0].startswith("failed: gpaw band gap (t-LiF, interfacial_reactions), 2 attempt(s)")
    assert "KohnShamConvergenceError" in lines[1] and "maxiter=2" in lines[1]


def test_run_with_restarts_caps_and_reraises():
    """Unknown errors are not retried; a handled one is retried up to the cap, then RestartsExhausted."""
    from coatflow.makers.restarts import run_with_restarts

    class KohnShamConvergenceError(Exception):  # GPAW's class is matched by name
        pass

    calls = []

    def scf_never_converges(structure, kwargs, n):
        calls.append(dict(kwargs))
        raise KohnShamConvergenceError()

    with pytest.raises(RestartsExhausted, match=r"after 3 attempt\(s\)"):
        run_with_restarts(scf_never_converges, None, RestartPolicy(max_restarts=2), {"maxiter": 50})
    assert [c.get("maxiter") for c in calls] == [50, 100, 200]
    assert [c.get("mixer", {}).get("beta") for c in calls] == [None, 0.025, 0.0125]

    def broken(structure, kwargs, n):
        calls.append(n)
        raise ValueError("not a calculator failure")

    calls.clear()
    with pytest.raises(ValueError):
        run_with_restarts(broken, None, RestartPolicy())
    assert calls == [0]


def test_restart_policy_is_not_in_any_job_key():
    """Stored GPAW and CHGNet work keeps its keys: the policy changes how a result is reached, not the result."""
    from coatflow.makers.band_gap import GpawBandGapMaker
    from coatflow.makers.defects import GpawDefectMaker
    from coatflow.makers.gpaw import GpawRelaxMaker, GpawStaticMaker
    from coatflow.makers.neb import GpawNebHopMaker
    from coatflow.makers.relax import MLIPBulkRelaxMaker
    from coatflow.makers.slab import GpawPotentialMaker
    from coatflow.workflows.campaign import settings_of

    for cls in (GpawRelaxMaker, GpawStaticMaker, GpawBandGapMaker, GpawPotentialMaker, GpawDefectMaker,
                GpawNebHopMaker, MLIPBulkRelaxMaker):
        maker = cls()
        other = dataclasses.replace(maker, restarts=RestartPolicy(max_restarts=9, walltime=60.0))
        assert "restarts" not in settings_of(maker) and settings_of(maker) == settings_of(other), cls.__name__
        if cls is not MLIPBulkRelaxMaker:  # keyed by all their fields (the force field: PHYSICAL_FIELDS)
            fields = {f.name for f in dataclasses.fields(maker)} - {"name", "restarts"}
            assert fields <= set(settings_of(maker)), cls.__name__  # nothing else left out


def test_chgnet_relaxation_stopped_by_its_walltime_goes_on_from_the_last_geometry(tmp_path, monkeypatch):
    """A real SIGALRM walltime stops the first attempt at a trajectory frame; the second starts from that frame."""
    from ase.io import read

    from coatflow.makers.relax import MLIPBulkRelaxMaker

    monkeypatch.chdir(tmp_path)
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.9), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])
    s = s.get_primitive_structure()
    s = Structure(s.lattice, s.species, s.cart_coords + np.random.default_rng(0).normal(0, 0.1, (len(s), 3)),
                  coords_are_cartesian=True)
    store = job_store()

    def relax(policy):
        job = MLIPBulkRelaxMaker(relax_kwargs={"fmax": 0.01}, restarts=policy).make(s)
        run_locally(job, store=store, create_folders=True, root_dir=tmp_path, log=False)
        return store.query_one({"uuid": job.uuid})

    whole = relax(RestartPolicy())
    assert whole["metadata"]["attempts_status"] == "ok" and whole["output"]["is_force_converged"]
    t_whole = seconds(whole["metadata"]["attempts"][0])

    cut = relax(RestartPolicy(walltime=0.4 * t_whole, max_restarts=6))
    attempts = cut["metadata"]["attempts"]
    assert cut["metadata"]["attempts_status"] == "restarted"
    assert attempts[0]["error"].startswith("TimeLimit: signal SIGALRM (stopped after frame")
    assert attempts[0]["correction"] == {"restart_from": "last geometry"}
    assert attempts[-1]["error"] is None and cut["output"]["is_force_converged"]
    folder = cut["output"]["dir_name"]
    first, second = read(f"{folder}/relax.0.traj", index=-1), read(f"{folder}/relax.1.traj", index=0)
    assert np.allclose(first.positions, second.positions) and np.allclose(first.cell, second.cell)
    assert len(read(f"{folder}/relax.0.traj", index=":")) > 1  # the first attempt did move the atoms
    e_whole, e_cut = whole["output"]["output"]["energy"], cut["output"]["output"]["energy"]
    print(f"CHGNet walltime {0.4 * t_whole:.1f} s: {len(attempts)} attempts, "
          f"{len(read(f'{folder}/relax.0.traj', index=':'))} + {cut['output']['output']['n_steps']} frames/steps "
          f"vs {whole['output']['output']['n_steps']} uninterrupted; dE = {e_cut - e_whole:+.2e} eV")
    assert abs(e_cut - e_whole) / len(s) < 1e-3  # same minimum, eV/atom


def stage_runner(cfg, stage: str, structure: Structure, store: JobStore, folder):
    """A function that plans ``stage`` of a Li2O candidate (after a passed interfacial verdict) from what
    ``store`` holds and runs the plan: each call is one campaign run of that stage."""
    from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, run_plans
    from coatflow.workflows.candidates import Candidate
    from coatflow.workflows.schemas import StageResult

    cand = Candidate("test-Li2O", "Li2O", "test", structure=structure)
    upstream = StageResult(material_id=cand.material_id, formula="Li2O", stage="interfacial_reactions",
                           status="passed", structure=structure)

    def run():
        plan = CandidatePlan(cand)
        cfg.stage(stage).plan(FunnelPlanner(cfg, store), plan, "upstream-key", upstream)
        return run_plans([plan], store, folder)

    return run


def test_neb_resume_reruns_only_the_hop_that_did_not_finish(tmp_path):
    """Two CHGNet hops; one hop's document and the stage's later documents are removed (a run killed after the
    first hop); the resume plans the stage again and runs one NEB job, not two."""
    from coatflow.launchers.config import CampaignConfig

    cfg = CampaignConfig(migration_barrier={"hop_cutoff": 3.4, "rel_cutoff": None, "max_hops": 2, "min_size": 4.5,
                                            "n_images": 1, "fmax": 0.2, "steps": 60})
    store = job_store()
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.65), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])
    run = stage_runner(cfg, "migration_barrier", s, store, tmp_path)

    first = run()
    assert first.jobs_failed == 0, first.errors
    hops = list(store.query({"name": {"$regex": "^neb hop"}}, properties=["uuid", "metadata", "output"]))
    assert len(hops) == 2 and len({h["metadata"]["coatflow"]["key"] for h in hops}) == 2  # keyed sub-jobs
    verdict = store.query_one({"metadata.coatflow.task": "verdict"}, load=True)["output"]

    # the run "killed" after hop 0: hop 1, the summary, the stage's output and the verdict are gone
    lost = [hops[1]["uuid"]] + [d["uuid"] for d in store.query(
        {"name": {"$regex": "^(migration summary|migration barrier verdict|enumerate li hops|store_inputs)"}},
        properties=["uuid"])]
    store.docs_store.remove_docs({"uuid": {"$in": lost}})

    second = run()
    assert second.jobs_failed == 0, second.errors
    after = list(store.query({"name": {"$regex": "^neb hop"}}, properties=["uuid", "metadata"]))
    assert len(after) == 2 and hops[0]["uuid"] in {h["uuid"] for h in after}  # hop 0 kept, not rerun
    assert {h["metadata"]["coatflow"]["key"] for h in after} == {h["metadata"]["coatflow"]["key"] for h in hops}
    print(f"NEB resume: first run {first.jobs_run} jobs, resume {second.jobs_run} jobs")
    assert second.jobs_run == first.jobs_run - 1  # the same jobs but one NEB
    again = store.query_one({"metadata.coatflow.task": "verdict"}, load=True)["output"]
    assert again["value"] == pytest.approx(verdict["value"], abs=1e-6)


SIGTERM_WORKER = """
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
from jobflow import JobStore, run_locally
from pymatgen.core import Lattice, Structure
from coatflow.launchers.embedded_store import SQLiteStore
from coatflow.makers.relax import MLIPBulkRelaxMaker

db, folder = sys.argv[1], sys.argv[2]
store = JobStore(SQLiteStore(db, "jobs"), additional_stores={"data": SQLiteStore(db, "blobs")})
s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.1), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])
s = Structure(s.lattice, s.species, s.cart_coords + np.random.default_rng(1).normal(0, 0.1, (len(s), 3)),
              coords_are_cartesian=True)
job = MLIPBulkRelaxMaker(relax_kwargs={"fmax": 1e-4}, steps=5000).make(s)
job.metadata["coatflow"] = {"material_id": "t-Li2O", "stage": "bulk_relax", "key": "k-term"}
run_locally(job, store=store, create_folders=True, root_dir=folder, log=False)
"""


def test_sigterm_records_the_attempt_then_ends_the_process(tmp_path):
    """What SLURM sends at scancel and at walltime: the attempt is recorded in the store, the trajectory holds the
    last geometry for ``coatflow resume``, and the process still ends by the signal."""
    import signal
    import subprocess
    import sys
    import time

    from coatflow.launchers.embedded_store import SQLiteStore

    db = tmp_path / "store.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_WORKER, str(db), str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # wait until the relaxation has written frames
        trajs = list(tmp_path.glob("job_*/relax.0.traj"))
        if trajs and trajs[0].stat().st_size > 4000:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == -signal.SIGTERM

    jobs = SQLiteStore(str(db), "jobs")
    jobs.connect()
    doc = jobs.query_one({"metadata.failed_coatflow.key": "k-term"})
    assert doc is not None and doc["output"] is None and doc["metadata"]["attempts_status"] == "failed"
    (attempt,) = doc["metadata"]["attempts"]
    assert attempt["error"] == "Terminated: signal SIGTERM"
    assert "coatflow resume" in attempt["correction"]["action"]
    from coatflow.makers.restarts import last_trajectory_frame

    assert last_trajectory_frame(trajs[0]) is not None  # what `coatflow resume` restarts from


def test_status_lists_attempts_from_the_campaign_store_and_creates_no_store(tmp_path, capsys):
    from coatflow.launchers.attempts import print_attempts
    from coatflow.launchers.config import CampaignConfig
    from coatflow.launchers.stores import embedded_file, make_job_store

    cfg = CampaignConfig(store={"path": str(tmp_path / "store")})
    print_attempts(cfg)  # no store yet: nothing printed, nothing created
    assert capsys.readouterr().out == "" and not embedded_file(cfg).exists()

    store = make_job_store(cfg)
    store.connect()
    attempts = [{"attempt": 1, "error": "TimeLimit: signal SIGALRM", "correction": {"restart_from": "last geometry"},
                 "started": "2026-01-01T10:00:00+00:00", "ended": "2026-01-01T10:05:00+00:00"},
                {"attempt": 2, "error": None, "correction": None, "started": "2026-01-01T10:05:00+00:00",
                 "ended": "2026-01-01T10:07:00+00:00"}]
    store.docs_store.update([{"uuid": "u1", "index": 1, "name": "mlip bulk relax [m-1]", "output": {"energy": -1.0},
                              "completed_at": "2026-01-01T10:07:00+00:00",
                              "metadata": {"coatflow": {"material_id": "m-1", "stage": "bulk_relax", "key": "k"},
                                           "attempts": attempts, "attempts_status": "restarted"}}],
                            key=["uuid", "index"])
    store.close()
    print_attempts(cfg)
    out = capsys.readouterr().out.splitlines()
    assert out == ["restarts and failed attempts (GPAW, force fields):",
                   "restarted: mlip bulk relax [m-1] (m-1, bulk_relax), 2 attempt(s)",
                   "    1. 2026-01-01T10:00:00Z  TimeLimit: signal SIGALRM  -> restart_from=last geometry",
                   "    2. 2026-01-01T10:05:00Z  ok"]


def test_restarting_jobs_serialise_for_fireworks():
    """The job (function, Maker and its policy) survives the JSON a FireWorks spec holds."""
    import json

    from monty.json import MontyDecoder, MontyEncoder

    from coatflow.makers.gpaw import GpawRelaxMaker
    from coatflow.makers.relax import MLIPBulkRelaxMaker

    for maker in (MLIPBulkRelaxMaker(restarts=RestartPolicy(walltime=5.0)), GpawRelaxMaker()):
        job = maker.make(lif())
        back = MontyDecoder().process_decoded(json.loads(json.dumps(job, cls=MontyEncoder)))
        assert back.name == maker.name and back.config.expose_store
        assert type(back.function.__self__) is type(maker) and back.function.__self__.restarts == maker.restarts


def test_elastic_resume_reruns_only_the_strained_relaxation_that_did_not_finish(tmp_path):
    """The shear stage's elastic flow (CHGNet, Li2O primitive cell): its bulk and strained relaxations are keyed
    sub-jobs. One strained relaxation and everything after it are removed (a run killed before the fit); the
    resume computes that one relaxation only, hands the others on from the store, and fits the same tensor."""
    from coatflow.launchers.config import CampaignConfig

    cfg = CampaignConfig(shear_modulus={"mlip_model": "chgnet"})
    store = job_store()
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.62), ["Li", "O"],
                                  [[0.25] * 3, [0, 0, 0]]).get_primitive_structure()
    run = stage_runner(cfg, "shear_modulus", s, store, tmp_path)

    def keyed_relaxations():
        docs = store.query({"metadata.coatflow.stage": "shear_modulus", "output": {"$ne": None}},
                           properties=["uuid", "name", "metadata"])
        return {d["metadata"]["coatflow"]["key"]: d for d in docs
                if d["metadata"]["coatflow"].get("key") not in (None, d["metadata"]["coatflow"].get("flow"))
                and d["metadata"]["coatflow"]["task"] == "elastic"}

    first = run()
    assert first.jobs_failed == 0, first.errors
    verdict = store.query_one({"metadata.coatflow.task": "verdict"}, load=True)["output"]
    relaxations = keyed_relaxations()
    strained = [k for k, d in relaxations.items() if "bulk" not in d["name"].lower() and "/" in d["name"]]
    assert len(relaxations) == len(strained) + 1 >= 3, [d["name"] for d in relaxations.values()]

    # the run "killed" before the fit: one strained relaxation and every later document of the stage are gone
    lost_key = strained[-1]
    kept = {relaxations[k]["uuid"] for k in relaxations if k != lost_key}
    later = [d["uuid"] for d in store.query({"metadata.coatflow.stage": "shear_modulus"}, properties=["uuid", "name"])
             if d["uuid"] not in kept]
    store.docs_store.remove_docs({"uuid": {"$in": later}})

    second = run()
    assert second.jobs_failed == 0, second.errors
    after = keyed_relaxations()
    assert set(after) == set(relaxations)  # the same keys, each stored once
    assert {d["uuid"] for d in after.values()} - kept == {after[lost_key]["uuid"]}  # one relaxation computed again
    handed_on = store.query({"metadata.coatflow.task": {"$regex": "^stored "}}, properties=["uuid"])
    assert len(list(handed_on)) == len(kept)  # the others came from the store
    again = store.query_one({"metadata.coatflow.task": "verdict"}, load=True)["output"]
    print(f"elastic resume: first run {first.jobs_run} jobs, resume {second.jobs_run}; "
          f"G_VRH {verdict['value']:.3f} -> {again['value']:.3f} GPa")
    assert again["value"] == pytest.approx(verdict["value"], abs=1e-3)

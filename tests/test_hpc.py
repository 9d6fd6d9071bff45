"""coatflow submit / status / resume through FireWorks on a real (private, one-node) SLURM cluster.

The LaunchPad is FireWorks' MONGOMOCK_SERVERSTORE_FILE mode: a JSON file read when a process opens it
and written when it closes. So this driver touches it from one process at a time: in-process between
queue runs, and ``qlaunch singleshot`` only when ``squeue`` is empty (on a scratch copy of the file, so
its exit write cannot overwrite what the SLURM job writes). The JobStore is the embedded on-disk store
at an absolute path the SLURM job reads from ``JOBFLOW_CONFIG_FILE``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from jobflow import job
from pymatgen.core import Lattice, Structure

from conftest import li2o, lirho2
from slurm_cluster import SlurmCluster, missing

TESTS = Path(__file__).resolve().parent
SECRET = "hpc-test-secret-7d2a91"  # in every queue job's environment; must never reach a file


def files_holding(secret: str, root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


# -- jobs that stand in for failures (run on the SLURM node; importable as test_hpc) -----------------


@job
def fragile(marker: str):
    """Raises until its input file exists: the 'fix the cause' case."""
    if not Path(marker).exists():
        raise FileNotFoundError(f"coatflow test input {marker} is missing")
    return Path(marker).read_text().strip()


@job
def shout(text: str):
    return str(text).upper()


@job
def fake_dft_relax(structure: Structure, step: float = 0.02, pause: float = 1.0):
    """Stands in for a GPAW/ASE relaxation: each 'ionic step' moves site 0 ``step`` Å back to the origin
    and appends the geometry to relax.traj, as ASE optimizers do. A rerun continues from the structure it
    is given, so the number of steps it needs tells whether it restarted from the last geometry."""
    from ase.io.trajectory import Trajectory
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    traj = Trajectory("relax.traj", "w")
    steps = 0
    while (x := atoms.positions[0, 0]) > step / 2:
        atoms.positions[0, 0] = max(0.0, x - step)
        traj.write(atoms)
        steps += 1
        time.sleep(pause)
    traj.close()
    return {"steps": steps, "x": float(atoms.positions[0, 0])}


@job
def worker_settings():
    """What a job sees of its worker's settings, read as atomate2, jobflow and coatflow's GPAW read them."""
    import atomate2
    from atomate2.settings import Atomate2Settings

    from coatflow.makers.gpaw_mpi import gpaw_ranks

    return {"vasp_cmd": atomate2.SETTINGS.VASP_CMD, "vasp_cmd_now": Atomate2Settings().VASP_CMD,
            "scratch": atomate2.SETTINGS.CUSTODIAN_SCRATCH_DIR, "gpaw_ranks": gpaw_ranks(),
            "slurm_job": os.environ.get("SLURM_JOB_ID")}


def displaced(dx: float) -> Structure:
    return Structure(Lattice.cubic(4.0), ["Li", "Li"], [[dx / 4.0, 0, 0], [0.5, 0.5, 0.5]])


def tagged(j, material_id: str, backend: str | None, stage: str = "test"):
    j.metadata = {"coatflow": {"key": f"test-{material_id}-{j.name}", "material_id": material_id, "stage": stage,
                               "task": j.name, "backend": backend}}
    return j


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = missing()
    if why:
        pytest.skip(why)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"), cpus=1).start()
    yield cluster
    cluster.stop()


class Hpc:
    """One campaign dir: config, LaunchPad file, worker files, qadapters; drives qlaunch."""

    def __init__(self, root: Path, slurm: SlurmCluster):
        from coatflow.launchers.config import load_config
        from coatflow.launchers.fireworks import write_worker_files

        self.root, self.slurm = root, slurm
        s = root / "structures"
        s.mkdir()
        li2o().to(filename=str(s / "Li2O.cif"))
        lirho2().to(filename=str(s / "LiRhO2.json"))
        self.cfg = root / "coatflow.yaml"
        self.cfg.write_text(yaml.safe_dump({
            "candidates": {"source": "files", "paths": [str(s)]},
            "store": {"path": str(root / "store")},
            "hpc": {"mongomock_file": str(root / "launchpad.json"), "fw_dir": str(root / "fw"),
                    "lost_run_expiry": 6, "ping_interval": 2},
        }))
        self.config = load_config(self.cfg)
        self.fw = write_worker_files(self.config)
        (self.fw / "fworker.yaml").write_text(yaml.safe_dump(
            {"name": "test_worker", "category": ["small", "large"], "query": "{}", "env": {}}))
        self.launches = root / "launches"
        self.launches.mkdir()
        (root / "tmp").mkdir()
        self.env = {**slurm.env, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                    "FW_CONFIG_FILE": str(self.fw / "FW_config.yaml"),
                    "JOBFLOW_CONFIG_FILE": str(self.fw / "jobflow.yaml"),
                    "OMP_NUM_THREADS": "1", "TMPDIR": str(root / "tmp"),
                    "COATFLOW_MONGODB_PASSWORD": SECRET}  # sbatch passes the environment to the job
        for name, walltime in (("qadapter", "00:10:00"), ("qadapter_1min", "00:01:00")):
            (self.fw / f"{name}.yaml").write_text(yaml.safe_dump({
                "_fw_name": "CommonAdapter", "_fw_q_type": "SLURM", "nodes": 1, "ntasks": 1,
                "walltime": walltime, "job_name": "coatflow",
                "pre_rocket": f"export MONGOMOCK_SERVERSTORE_FILE={root / 'launchpad.json'}",
                "rocket_launch": f"{sys.executable} -m coatflow.launchers.fw_worker rlaunch "
                                 f"-l {self.fw / 'launchpad.yaml'} -w {self.fw / 'fworker.yaml'} "
                                 "rapidfire --max_loops 1 --sleep 1",
            }))

    def coatflow(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "coatflow.launchers.cli", *args, "-c", str(self.cfg)],
                           env=self.env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout

    def qlaunch(self, qadapter: str = "qadapter") -> str:
        """Submit one queue job (queue must be empty); returns its SLURM job id."""
        assert not self.slurm.queue()
        scratch = self.root / "qlaunch_scratch.json"
        shutil.copy(self.root / "launchpad.json", scratch)
        before = set(self.slurm.completed_states()) | set(self.slurm.queue())
        r = subprocess.run(["qlaunch", "-l", str(self.fw / "launchpad.yaml"), "-w", str(self.fw / "fworker.yaml"),
                            "-q", str(self.fw / f"{qadapter}.yaml"), "singleshot"], cwd=self.launches,
                           env={**self.env, "MONGOMOCK_SERVERSTORE_FILE": str(scratch)},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        ids = [i for i in self.slurm.queue() + list(self.slurm.completed_states()) if i not in before]
        assert ids, r.stdout + r.stderr
        return ids[0]

    def states(self) -> dict[int, str]:
        from coatflow.launchers.fireworks import open_launchpad

        with open_launchpad(self.config) as lp:
            return {d["fw_id"]: d["state"] for d in lp.fireworks.find({}, {"fw_id": 1, "state": 1})}

    def run_queue(self, max_jobs: int = 4, timeout: float = 600) -> list[str]:
        """qlaunch singleshot while READY jobs remain, each after the previous queue job ended."""
        jobs = []
        while "READY" in self.states().values() and len(jobs) < max_jobs:
            jobs.append(self.qlaunch())
            self.slurm.wait_empty(timeout)
        return jobs

    def submit_flows(self, flows: dict[str, list]) -> None:
        from coatflow.launchers.fireworks import open_launchpad, submit_plans

        plans = [SimpleNamespace(jobs=jobs, candidate=SimpleNamespace(material_id=mid)) for mid, jobs in flows.items()]
        with open_launchpad(self.config) as lp:
            assert submit_plans(self.config, plans, lp).workflows == len(plans)

    def wait_for(self, pattern: str, n: int, timeout: float = 120) -> Path:
        t0 = time.time()
        while time.time() - t0 < timeout:
            for p in self.launches.rglob(pattern):
                if p.stat().st_size and _frames(p) >= n:
                    return p
            time.sleep(1)
        raise AssertionError(f"no {pattern} with {n} frames after {timeout} s")


def _frames(path: Path) -> int:
    from ase.io.trajectory import Trajectory

    try:
        with Trajectory(str(path)) as t:
            return len(t)
    except Exception:  # noqa: BLE001 - being written
        return 0


@pytest.fixture
def hpc(tmp_path, slurm):
    return Hpc(tmp_path, slurm)


# -- checks --------------------------------------------------------------------------------------------


def test_campaign_through_slurm_completes_and_second_submit_adds_nothing(hpc, monkeypatch):
    from coatflow.launchers.fireworks import submit
    from coatflow.launchers.stores import make_job_store
    hpc.config.run.stop_after = "bulk_relax"  # database filter + MLIP relaxation only
    t0 = time.time()
    first = submit(hpc.config)
    # each: filter verdict, CHGNet relax, relax verdict (LiRhO2's filter fails at run time: precious Rh)
    assert (first.workflows, first.fireworks, dict(first.categories)) == (2, 6, {"small": 6})
    again = submit(hpc.config)
    assert (again.workflows, again.fireworks, sorted(again.in_flight)) == (0, 0, ["file-Li2O", "file-LiRhO2"])

    jobs = hpc.run_queue()
    # LiRhO2's failed filter verdict defuses its relaxation (Response.stop_children); the relaxation's
    # verdict stays WAITING under its DEFUSED parent, as FireWorks leaves grandchildren
    assert sorted(hpc.states().values()) == ["COMPLETED"] * 4 + ["DEFUSED", "WAITING"], hpc.states()
    assert all(hpc.slurm.completed_states()[j] == "COMPLETED" for j in jobs)
    out = hpc.coatflow("status")
    assert "COMPLETED" in out and "bulk_relax" in out and "database_filter" in out

    store = make_job_store(hpc.config)
    store.connect()
    relax = store.query_one({"metadata.coatflow.task": "relax", "metadata.coatflow.material_id": "file-Li2O"},
                            load=True)
    assert relax is not None and 22.0 < relax["output"]["structure"]["lattice"]["volume"] < 27.0
    assert store.count({"metadata.coatflow.task": "verdict"}) == 3
    store.close()
    third = submit(hpc.config)  # all work completed and stored: nothing to add
    assert (third.workflows, third.fireworks, third.stored) == (0, 0, 2)
    print(f"campaign through SLURM: {len(jobs)} queue jobs, {time.time() - t0:.0f} s")


def test_failed_job_fizzles_status_shows_error_then_resume_completes(hpc):
    marker = hpc.root / "input.txt"
    first = tagged(fragile(str(marker)), "test-fragile", None)
    hpc.submit_flows({"test-fragile": [first, tagged(shout(first.output), "test-fragile", None)]})
    hpc.run_queue()
    assert sorted(hpc.states().values()) == ["FIZZLED", "WAITING"]
    out = hpc.coatflow("status", "--failed")
    assert f"FileNotFoundError: coatflow test input {marker} is missing" in out
    assert str(hpc.launches) in out

    marker.write_text("fixed\n")  # the cause
    assert "would rerun" in hpc.coatflow("resume", "--dry-run")
    assert sorted(hpc.states().values()) == ["FIZZLED", "WAITING"]  # dry run changed nothing
    out = hpc.coatflow("resume")
    assert "(FIZZLED), from scratch" in out
    hpc.run_queue()
    assert set(hpc.states().values()) == {"COMPLETED"}
    from coatflow.launchers.stores import make_job_store

    store = make_job_store(hpc.config)
    store.connect()
    assert store.query_one({"metadata.coatflow.task": "shout"}, load=True)["output"] == "FIXED"
    store.close()


def _kill_and_resume(hpc, kill, from_scratch_steps: int, qadapter: str):
    relax = tagged(fake_dft_relax(displaced(from_scratch_steps * 0.02)), "test-kill", "gpaw", "bulk_relax")
    hpc.submit_flows({"test-kill": [relax, tagged(shout(relax.output["steps"]), "test-kill", None)]})
    jid = hpc.qlaunch(qadapter)
    kill(jid)
    hpc.slurm.wait_empty(180)
    time.sleep(hpc.config.hpc.lost_run_expiry + 1)
    status = hpc.coatflow("status", "--failed")
    assert "lost" in status, status
    plan = hpc.coatflow("resume", "--dry-run")
    assert "(lost), from last geometry" in plan and "relax.traj" in plan, plan
    out = hpc.coatflow("resume")
    assert "(lost), from last geometry" in out
    hpc.run_queue()
    assert set(hpc.states().values()) == {"COMPLETED"}, hpc.states()
    from coatflow.launchers.stores import make_job_store

    store = make_job_store(hpc.config)
    store.connect()
    done = store.query_one({"metadata.coatflow.task": "fake_dft_relax"}, load=True)["output"]
    store.close()
    assert done["x"] == pytest.approx(0.0, abs=1e-9)
    assert 0 < done["steps"] < from_scratch_steps  # continued from the last geometry, not from scratch
    return jid, done["steps"]


def test_scancel_kill_is_detected_as_lost_and_resumed_from_last_geometry(hpc):
    def kill(jid):
        hpc.wait_for("relax.traj", 4)
        hpc.slurm.run("scancel", jid)

    jid, steps = _kill_and_resume(hpc, kill, 30, "qadapter")
    assert hpc.slurm.completed_states()[jid] == "CANCELLED"
    # scancel sent SIGTERM to the worker: no file in its TMPDIR, launch dirs or LaunchPad holds the password
    assert files_holding(SECRET, hpc.root) == []


@pytest.mark.slow
def test_walltime_kill_is_detected_as_lost_and_resumed_from_last_geometry(hpc):
    jid, steps = _kill_and_resume(hpc, lambda jid: None, 110, "qadapter_1min")
    assert hpc.slurm.completed_states()[jid] == "TIMEOUT"
    assert np.isfinite(steps)


def test_fworker_env_reaches_the_job_as_atomate2_jobflow_and_gpaw_settings(hpc):
    # the queue job's environment has no JobStore setting: only the fworker's JOBFLOW_CONFIG_FILE can send
    # the output to the store read below (jobflow's default store is in memory, lost with the job)
    jobflow_config = hpc.env.pop("JOBFLOW_CONFIG_FILE")
    assert not any(k.startswith(("ATOMATE2_", "COATFLOW_GPAW")) for k in hpc.env)
    (hpc.fw / "fworker.yaml").write_text(yaml.safe_dump({
        "name": "test_worker", "category": ["small", "large"], "query": "{}",
        "env": {"ATOMATE2_VASP_CMD": "srun -n 7 vasp_std_$SLURM_JOB_ID",
                "ATOMATE2_CUSTODIAN_SCRATCH_DIR": str(hpc.root / "scratch"),
                "JOBFLOW_CONFIG_FILE": jobflow_config, "COATFLOW_GPAW_RANKS": 3}}))
    hpc.submit_flows({"test-env": [tagged(worker_settings(), "test-env", None)]})
    jid = hpc.qlaunch()
    hpc.slurm.wait_empty(300)
    assert set(hpc.states().values()) == {"COMPLETED"}, hpc.states()
    from coatflow.launchers.stores import make_job_store

    store = make_job_store(hpc.config)
    store.connect()
    out = store.query_one({"metadata.coatflow.task": "worker_settings"}, load=True)["output"]
    store.close()
    assert out["slurm_job"] == jid
    assert out["vasp_cmd"] == out["vasp_cmd_now"] == f"srun -n 7 vasp_std_{jid}"  # $VAR expanded in the job
    assert out["scratch"] == str(hpc.root / "scratch")
    assert out["gpaw_ranks"] == 3  # not the allocation's 1 task


def test_my_fworker_yaml_sets_only_settings_that_atomate2_jobflow_or_coatflow_read():
    from atomate2.settings import Atomate2Settings
    from fireworks import FWorker

    from coatflow.makers.gpaw_mpi import MPIEXEC_ENV, RANKS_ENV

    env = FWorker.from_file(str(TESTS.parent / "my_fworker.yaml")).env
    read = ({f"ATOMATE2_{f}" for f in Atomate2Settings.model_fields} | {"JOBFLOW_CONFIG_FILE", RANKS_ENV, MPIEXEC_ENV})
    assert env and set(env) <= read, sorted(set(env) - read)
    assert {"ATOMATE2_VASP_CMD", "JOBFLOW_CONFIG_FILE"} <= set(env)


@pytest.mark.parametrize("key, instead", [("vasp_cmd", "ATOMATE2_VASP_CMD"), ("db_file", "JOBFLOW_CONFIG_FILE"),
                                          ("scratch_dir", "ATOMATE2_CUSTODIAN_SCRATCH_DIR")])
def test_fworker_with_an_atomate_v1_key_is_refused_in_one_line(tmp_path, key, instead):
    worker = tmp_path / "fworker.yaml"
    worker.write_text(yaml.safe_dump({"name": "w", "category": "", "query": "{}", "env": {key: "x"}}))
    r = subprocess.run([sys.executable, "-m", "coatflow.launchers.fw_worker", "rlaunch", "-w", str(worker),
                        "singleshot", "--offline"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        (f"coatflow: fworker 'w': env key '{key}' is an atomate v1 setting that nothing reads; use {instead} "
         "instead (docs/hpc.md)")]
    assert [p.name for p in tmp_path.iterdir()] == ["fworker.yaml"]  # nothing written

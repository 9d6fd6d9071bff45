"""GPAW under MPI (makers/gpaw_mpi.py): a GPAW job given 2 ranks runs in 2 MPI processes, both busy, with the
serial energy.

The SLURM test runs a real GPAW job through coatflow's worker (``fw_worker rlaunch``) in a queue job of
``ntasks: 2`` on the private one-node cluster (tests/slurm_cluster.py, 2 CPUs): ``gpaw_calculator`` takes the
rank count from the allocation (``SLURM_NTASKS``), the SCF is first cut short (``maxiter: 5``, it needs 8) so
that the restart policy's ``KohnShamConvergenceError`` travels back from the ranks, and the restarted energy is
compared with the same calculation run serially in this process. The cell is the 2-atom LiF of
tests/test_restarts.py at 250 eV. OpenMPI refuses root unless told (``OMPI_ALLOW_RUN_AS_ROOT``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from jobflow import job

from slurm_cluster import SlurmCluster, missing
from test_hpc import Hpc, tagged
from test_restarts import GPAW_SMALL, lif, seconds

ROOT_MPI = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


@job
def gpaw_probe(structure, calc_kwargs: dict, max_restarts: int = 2):
    """A GPAW single point as the band-gap job runs it (``scf_with_restarts`` over ``gpaw_calculator``), and
    what it ran on: the calculator class, GPAW's MPI world, each rank's CPU seconds since GPAW was built."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from coatflow.makers.gpaw import gpaw_calculator, gpaw_eigenvalues
    from coatflow.makers.gpaw_mpi import gpaw_ranks
    from coatflow.makers.restarts import RestartPolicy, scf_with_restarts

    atoms = AseAtomsAdaptor.get_atoms(structure)
    t0 = time.perf_counter()
    energy, used = scf_with_restarts(atoms, gpaw_calculator, calc_kwargs, RestartPolicy(max_restarts=max_restarts))
    wall = time.perf_counter() - t0
    calc = atoms.calc
    info = dict(getattr(calc, "mpi_info", {}))
    busy = [now - start for now, start in zip(info.get("cpu_seconds", []), info.get("cpu_seconds_at_init", []))]
    return {"energy": float(energy), "wall": wall, "ranks_wanted": gpaw_ranks(), "calculator": type(calc).__name__,
            "world": info.get("ranks", 1), "pids": info.get("pids", [os.getpid()]), "busy_cpu": busy,
            "maxiter": used.get("maxiter"), "fermi": float(calc.get_fermi_level()),
            "n_eigenvalues": sum(len(k) for s in gpaw_eigenvalues(calc) for k in s), "job_pid": os.getpid()}


def serial_reference(tmp_path: Path, monkeypatch) -> dict:
    """The probe run in this process (no allocation: serial), converged at GPAW's default maxiter."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COATFLOW_GPAW_RANKS", raising=False)
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    return gpaw_probe.original(lif(), {**GPAW_SMALL, "txt": "serial.txt"})


def test_rank_count_comes_from_the_setting_else_the_allocation_else_one():
    from coatflow.makers.gpaw_mpi import gpaw_ranks

    assert gpaw_ranks({}) == 1
    assert gpaw_ranks({"SLURM_NTASKS": "32"}) == 32
    assert gpaw_ranks({"SLURM_NTASKS": "32", "COATFLOW_GPAW_RANKS": "1"}) == 1
    for bad in ("0", "two", "-4", "1.5"):
        with pytest.raises(ValueError, match=f"COATFLOW_GPAW_RANKS='{bad}' is not a number of MPI ranks"):
            gpaw_ranks({"COATFLOW_GPAW_RANKS": bad})


def world_size_and_energy(structure, calc_kwargs: dict) -> tuple[int, float]:
    """Runs on the ranks through ``run_under_mpi``: GPAW's world there, and an energy from ``gpaw_calculator``."""
    from gpaw.mpi import world
    from pymatgen.io.ase import AseAtomsAdaptor

    from coatflow.makers.gpaw import gpaw_calculator

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = gpaw_calculator(calc_kwargs)
    return world.size, float(atoms.get_potential_energy())


def test_relaxation_and_whole_function_on_two_ranks_match_serial(tmp_path, monkeypatch):
    """Without a scheduler (COATFLOW_GPAW_RANKS=2): atomate2's ASE relaxation (forces, stress, several steps on
    one set of ranks) and ``run_under_mpi`` give the serial numbers."""
    if not shutil.which("mpiexec"):
        pytest.skip("no mpiexec")
    pytest.importorskip("gpaw")
    from pymatgen.core import Lattice, Structure

    from coatflow.makers.gpaw import GpawRelaxMaker
    from coatflow.makers.gpaw_mpi import run_under_mpi
    from coatflow.makers.restarts import RestartPolicy

    strained = Structure(lif().lattice.matrix * 1.03, lif().species, lif().frac_coords)
    kwargs = {**GPAW_SMALL, "txt": "relax.txt"}
    results = {}
    for ranks in (1, 2):
        (tmp_path / str(ranks)).mkdir()
        monkeypatch.chdir(tmp_path / str(ranks))
        monkeypatch.setenv("COATFLOW_GPAW_RANKS", str(ranks))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        for k, v in ROOT_MPI.items():
            monkeypatch.setenv(k, v)
        t0 = time.perf_counter()
        maker = GpawRelaxMaker(calculator_kwargs=kwargs, steps=3, restarts=RestartPolicy(max_restarts=0))
        relaxed = maker.run_ase(strained)
        calc = maker._calculator
        results[ranks] = (relaxed.trajectory.frame_properties[-1]["energy"], len(relaxed.trajectory), type(calc).__name__,
                          getattr(calc, "mpi_info", {}).get("ranks", 1), time.perf_counter() - t0,
                          run_under_mpi(world_size_and_energy, lif(), kwargs))
        if hasattr(calc, "close"):
            calc.close()
    (e1, n1, c1, w1, t1, f1), (e2, n2, c2, w2, t2, f2) = results[1], results[2]
    assert (c1, w1, c2, w2) == ("ASECalculator", 1, "MpiGpaw", 2)
    assert n1 == n2 > 1 and isinstance(e1, float) and e2 == pytest.approx(e1, abs=1e-3)
    assert f1[0] == 1 and f2[0] == 2 and f2[1] == pytest.approx(f1[1], abs=1e-3)
    print(f"\n3-step cell relaxation of strained LiF: serial {e1:.6f} eV in {t1:.1f} s, 2 ranks {e2:.6f} eV in {t2:.1f} s")


def fail_on_every_rank():
    from gpaw.mpi import world

    raise ValueError(f"coatflow test failure on rank {world.rank}")


def test_a_failure_on_every_rank_reaches_the_job_as_itself(tmp_path, monkeypatch):
    """(GPAW's KohnShamConvergenceError is such a failure: the SLURM test below sees it restarted.)"""
    if not shutil.which("mpiexec"):
        pytest.skip("no mpiexec")
    pytest.importorskip("gpaw")
    from coatflow.makers.gpaw_mpi import run_under_mpi

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COATFLOW_GPAW_RANKS", "2")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    for k, v in ROOT_MPI.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match="coatflow test failure on rank 0"):
        run_under_mpi(fail_on_every_rank)
    assert "coatflow test failure on rank 1" in (tmp_path / "gpaw_mpi.log").read_text()


@pytest.fixture(scope="module")
def slurm2(tmp_path_factory):
    why = missing() or (None if shutil.which("mpiexec") else "no mpiexec")
    if why:
        pytest.skip(why)
    pytest.importorskip("gpaw")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm2"), cpus=2).start()
    yield cluster
    cluster.stop()


def test_gpaw_job_on_two_slurm_tasks_runs_on_two_busy_mpi_ranks_with_the_serial_energy(tmp_path, slurm2, monkeypatch):
    hpc = Hpc(tmp_path, slurm2)
    hpc.env.update(ROOT_MPI)
    qadapter = yaml.safe_load((hpc.fw / "qadapter.yaml").read_text())
    (hpc.fw / "qadapter_mpi.yaml").write_text(yaml.safe_dump({**qadapter, "ntasks": 2}))
    probe = tagged(gpaw_probe(lif(), {**GPAW_SMALL, "maxiter": 5}), "test-mpi", "gpaw", "bulk_relax")
    hpc.submit_flows({"test-mpi": [probe]})
    jid = hpc.qlaunch("qadapter_mpi")
    slurm2.wait_empty(900)
    assert slurm2.completed_states()[jid] == "COMPLETED"
    assert set(hpc.states().values()) == {"COMPLETED"}, hpc.states()

    from coatflow.launchers.stores import make_job_store

    store = make_job_store(hpc.config)
    store.connect()
    doc = store.query_one({"metadata.coatflow.task": "gpaw_probe"}, load=True)
    store.close()
    out, attempts = doc["output"], doc["metadata"]["attempts"]
    assert (out["ranks_wanted"], out["calculator"], out["world"]) == (2, "MpiGpaw", 2)
    assert len(set(out["pids"])) == 2 and out["job_pid"] not in out["pids"]  # two processes besides the job's
    # both ranks computed: each used at least a third of the busier one's CPU time on the SCF
    assert min(out["busy_cpu"]) > 0.3 * max(out["busy_cpu"]) > 0, out["busy_cpu"]
    # the restart policy saw GPAW's own error from the ranks and restarted with more iterations
    assert [a["error"].split(":")[0] if a["error"] else None for a in attempts] == ["KohnShamConvergenceError", None]
    assert out["maxiter"] == 10
    # GPAW's own text output: 2 cores, the k-points split over them
    txt = "\n".join(p.read_text() for p in hpc.launches.rglob("gpaw.txt"))
    assert re.search(r"^cores:\s+2$", txt, re.M) and re.search(r"^Parallelization:\n\s+kpt:\s+2$", txt, re.M), txt

    (tmp_path / "serial").mkdir()
    serial = serial_reference(tmp_path / "serial", monkeypatch)
    assert (serial["calculator"], serial["world"]) == ("ASECalculator", 1)
    assert out["energy"] == pytest.approx(serial["energy"], abs=1e-3)
    assert out["fermi"] == pytest.approx(serial["fermi"], abs=1e-2)
    assert out["n_eigenvalues"] == serial["n_eigenvalues"]
    print(f"\nLiF 2 atoms, 250 eV, 2x2x2 k: serial {serial['energy']:.6f} eV in {serial['wall']:.1f} s; "
          f"2 MPI ranks {out['energy']:.6f} eV in {out['wall']:.1f} s (2 attempts, maxiter 5 then 10; the second "
          f"{seconds(attempts[1]):.1f} s, the ranks' start included), "
          f"rank CPU {[round(b, 2) for b in out['busy_cpu']]} s, difference {1000 * (out['energy'] - serial['energy']):.3f} meV")

"""GPAW, the local plane-wave PAW backend, as atomate2 ASE makers.

Settings stay plain dicts (``mode`` included) so that makers serialise and hash into job keys.
Every GPAW calculation is built by ``gpaw_calculator``: in the job's process (serial) when ``gpaw_ranks()``
is 1 (a laptop, CI), otherwise in ``mpiexec -n N`` ranks, ``N`` = ``COATFLOW_GPAW_RANKS`` or the allocation's
``SLURM_NTASKS`` (makers/gpaw_mpi.py); set OMP_NUM_THREADS=1 on shared machines. Every GPAW job runs under a
restart policy (makers/restarts.py): SCF non-convergence, a time limit or an unconverged relaxation are retried with
corrected settings or from the last geometry, up to a cap, each attempt recorded in the job's document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atomate2.ase.jobs import _ASE_DATA_OBJECTS, AseRelaxMaker
from jobflow import JobConfig, job

from coatflow.makers.gpaw_mpi import MpiGpaw, gpaw_ranks
from coatflow.makers.registry import register
from coatflow.makers.restarts import RestartingAseRelax, settings_without_restarts

#: PBE, 400 eV plane waves, k-point density 3.5 per Å^-1, 0.1 eV Fermi-Dirac smearing.
DEFAULT_GPAW_KWARGS = {
    "mode": {"name": "pw", "ecut": 400},
    "xc": "PBE",
    "kpts": {"density": 3.5, "gamma": True},
    "occupations": {"name": "fermi-dirac", "width": 0.1},
    "convergence": {"energy": 1e-5},
    "txt": "gpaw.txt",
}


def gpaw_calculator(kwargs: dict, **extra):
    """A GPAW calculator from serialisable settings (``extra`` overrides, e.g. a Poisson solver): in this
    process, or, with more than one rank (``gpaw_ranks()``), an ``MpiGpaw`` whose GPAW runs in MPI ranks."""
    settings = {**DEFAULT_GPAW_KWARGS, **kwargs, **extra}
    ranks = gpaw_ranks()
    if ranks > 1:
        return MpiGpaw(settings, ranks)
    from gpaw import GPAW

    return GPAW(**settings)


def gpaw_eigenvalues(calc) -> list[list]:
    """Kohn-Sham eigenvalues (eV) of a finished GPAW calculation, nested [spin][k-point][band]."""
    return [[calc.get_eigenvalues(kpt=k, spin=s) for k in range(len(calc.get_ibz_k_points()))]
            for s in range(calc.get_number_of_spins())]


@dataclass
class GpawRelaxMaker(RestartingAseRelax, AseRelaxMaker):
    """Relax ions and cell with GPAW (see atomate2.ase.jobs.AseRelaxMaker), under ``restarts``."""

    name: str = "gpaw relax"
    relax_cell: bool = True
    steps: int = 200
    relax_kwargs: dict = field(default_factory=lambda: {"fmax": 0.03})
    calculator_kwargs: dict = field(default_factory=lambda: dict(DEFAULT_GPAW_KWARGS))

    key_settings = settings_without_restarts

    @job(data=_ASE_DATA_OBJECTS, config=JobConfig(expose_store=True))
    def make(self, mol_or_struct, prev_dir=None):
        """atomate2's AseRelaxMaker.make, its store exposed for the restart record (makers/restarts.py)."""
        return AseRelaxMaker.make.original(self, mol_or_struct, prev_dir)

    def _get_calculator(self):
        return gpaw_calculator(self.calculator_kwargs)


@dataclass
class GpawStaticMaker(GpawRelaxMaker):
    """Single-point GPAW calculation (atomate2 runs a static when steps <= 1)."""

    name: str = "gpaw static"
    relax_cell: bool = False
    steps: int = 1


@register("relax", "gpaw")
def _gpaw_relax():
    return GpawRelaxMaker()


@register("static", "gpaw")
def _gpaw_static():
    return GpawStaticMaker()

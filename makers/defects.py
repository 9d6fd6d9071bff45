"""Charged point-defect supercells.

``gpaw``: ``GpawDefectMaker`` runs one supercell in one charge state (GPAW ``charge=``, compensating
background), optionally relaxing ions at fixed cell, and returns the energy, the planar-averaged
electrostatic potential along each lattice vector (for the Freysoldt correction) and the eigenvalues
(band edges, and the carrier DOS when run on the primitive bulk cell).
``vasp``: atomate2's ``FormationEnergyMaker`` (ISIF=2, NELECT from the structure charge, LVHAR) and
``DielectricMaker`` (LEPSILON: electronic + ionic), used as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from jobflow import JobConfig, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from coatflow.makers.gpaw import DEFAULT_GPAW_KWARGS, GpawStaticMaker, gpaw_calculator
from coatflow.makers.registry import register
from coatflow.makers.restarts import CheckpointTrajectory, scf_with_restarts
from coatflow.workflows.schemas import DefectCalcDoc


@dataclass
class GpawDefectMaker(GpawStaticMaker):
    """One GPAW supercell in charge state ``charge`` (|e|, GPAW's sign: -1 = one extra electron).

    ``steps`` <= 1 is a single point; more steps relax ions with BFGS at fixed cell.
    """

    name: str = "gpaw defect"
    charge: int = 0
    steps: int = 1
    relax_kwargs: dict = field(default_factory=lambda: {"fmax": 0.05})
    calculator_kwargs: dict = field(default_factory=lambda: {**DEFAULT_GPAW_KWARGS, "nbands": "120%"})

    @job(data=["planar_potential", "eigenvalues"], config=JobConfig(expose_store=True))
    def make(self, structure: Structure, prev_dir=None) -> DefectCalcDoc:
        from ase.optimize import BFGS

        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.set_constraint()
        t0 = time.perf_counter()
        steps_done = []

        def run(a):  # an attempt after a restart goes on from the geometry the last one reached
            if self.steps > 1:
                opt = BFGS(a, logfile=None, trajectory=CheckpointTrajectory(f"relax.{len(steps_done)}.traj"))
                steps_done.append(0)
                try:
                    opt.run(fmax=self.relax_kwargs.get("fmax", 0.05), steps=self.steps)
                finally:
                    steps_done[-1] = opt.nsteps
            return float(a.get_potential_energy())

        energy, used = scf_with_restarts(atoms, lambda kw: gpaw_calculator(kw, charge=self.charge),
                                         self.calculator_kwargs, self.restarts, run, soft=self.steps > 1)
        n_steps = sum(steps_done)
        calc = atoms.calc
        nspins = calc.get_number_of_spins()
        nk = len(calc.get_ibz_k_points())
        eigs = np.array([[calc.get_eigenvalues(kpt=k, spin=s) for k in range(nk)] for s in range(nspins)])
        occ = np.array([[calc.get_occupation_numbers(kpt=k, spin=s) for k in range(nk)] for s in range(nspins)])
        weights = np.asarray(calc.get_k_point_weights(), dtype=float)
        full = 2.0 / nspins  # occupation of a filled band, per spin channel
        filled = occ > 0.5 * full * weights[None, :, None]
        vbm = float(eigs[filled].max()) if filled.any() else None
        cbm = float(eigs[~filled].min()) if (~filled).any() else None
        v = calc.get_electrostatic_potential()
        planar = {str(ax): v.mean(axis=tuple(i for i in range(3) if i != ax)).tolist() for ax in range(3)}
        relaxed = AseAtomsAdaptor.get_structure(atoms)
        return DefectCalcDoc(
            structure=relaxed, input_structure=structure, charge=self.charge, energy=energy,
            n_electrons=float(calc.get_number_of_electrons()), fermi_level=float(calc.get_fermi_level()),
            vbm=vbm, cbm=cbm, planar_potential=planar, mean_potential=float(v.mean()),
            eigenvalues=eigs.tolist(), k_weights=weights.tolist(), nspins=nspins,
            max_force=float(np.abs(atoms.get_forces()).max()), ionic_steps=n_steps,
            max_displacement=float(np.linalg.norm(relaxed.cart_coords - structure.cart_coords, axis=1).max()),
            calculator={**DEFAULT_GPAW_KWARGS, **used, "charge": self.charge},
            elapsed_time=time.perf_counter() - t0,
        )


@register("defect", "gpaw")
def _gpaw_defect():
    return GpawDefectMaker()


# -- VASP: atomate2's makers, inputs checked in tests (no VASP here) ---------------------------------


def vasp_formation_energy_maker(relax_radius: float | str | None = None):
    """atomate2's VASP FormationEnergyMaker (defect relaxations at ISIF=2, NELECT from charge, LVHAR)."""
    from atomate2.vasp.flows.defect import FormationEnergyMaker

    return FormationEnergyMaker(relax_radius=relax_radius, collect_defect_entry_data=True)


def vasp_dielectric_maker():
    """atomate2's DielectricMaker: LEPSILON + IBRION=8, electronic and ionic dielectric tensors."""
    from atomate2.vasp.jobs.core import DielectricMaker

    return DielectricMaker()


@register("defect", "vasp")
def _vasp_defect():
    return vasp_formation_energy_maker()


@register("dielectric", "vasp")
def _vasp_dielectric():
    return vasp_dielectric_maker()

"""Static dielectric tensor (electronic + ionic) with GPAW, for the Freysoldt correction.

``GpawDielectricMaker`` on a primitive cell:

1. 6N finite displacements (+-``displacement`` Å along x, y, z of every atom), symmetry off: each gives
   the Berry-phase polarization (``gpaw.berryphase.polarization_phase``), turned into Born effective
   charges by ``gpaw.borncharges.born_charges``, and the forces, turned into the Gamma-point force
   constants by central differences. One SCF per displacement serves both.
2. eps_inf: RPA with local fields from ``gpaw.response.df.DielectricFunction`` at q -> 0, omega = 0, on a
   separate ground state (symmetry on, ``nbands`` bands from full diagonalisation).
3. eps_ion from the mode effective charges and the optical-mode frequencies (``ionic_dielectric``).

The acoustic sum rules, the ionic sum and the tensor from directions are in workflows/analysis/dielectric.py;
this module runs GPAW.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
from jobflow import Maker, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from coatflow.makers.gpaw import gpaw_calculator
from coatflow.makers.gpaw_mpi import serial_gpaw
from coatflow.makers.registry import register
from coatflow.workflows.analysis.dielectric import (asr_born_charges, asr_force_constants,
                                                    electronic_tensor_from_directions, ionic_dielectric)
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import DielectricDoc

# -- GPAW runs -----------------------------------------------------------------------------------------


def born_and_force_constants(atoms, calc_kwargs: dict, delta: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Raw Born charges (N, 3, 3) and force constants (3N x 3N, eV/Å^2) from +-delta displacements with
    one symmetry-free GPAW calculator (each SCF starts from the previous wave functions)."""
    from gpaw.berryphase import ZeroBandgap, polarization_phase
    from gpaw.borncharges import born_charges, displace_atom, get_cartesian_displacements

    n = len(atoms)
    calc = gpaw_calculator(calc_kwargs, symmetry="off")
    disps = get_cartesian_displacements(atoms, delta)
    phases, fc = {}, np.zeros((3 * n, 3 * n))
    for label, (ia, iv, sign, d) in disps.items():
        moved = displace_atom(atoms, ia, iv, sign, d)
        moved.calc = calc
        forces = moved.get_forces()
        try:
            with open("gpaw_dielectric_berry.txt", "a") as log, contextlib.redirect_stdout(log):
                phases[label] = polarization_phase(calc=calc)["phase_c"]
        except ZeroBandgap:
            raise CoatflowError(f"{atoms.get_chemical_formula()} has no band gap at these settings: "
                                "Born charges (and a static dielectric constant) need an insulator") from None
        fc[3 * ia + iv] -= sign * forces.ravel() / (2 * d)  # Phi[ia iv, kb] = -dF_kb/du_(ia iv)
    born = born_charges(atoms, disps, phases, check=False)["Z_avv"]
    return np.asarray(born), fc, len(disps)


def electronic_dielectric(atoms, calc_kwargs: dict, nbands: int, response_ecut: float,
                          eta: float) -> tuple[np.ndarray, np.ndarray]:
    """RPA eps_inf (3x3) with and without local-field effects at q -> 0, omega = 0."""
    from gpaw.response.df import DielectricFunction

    atoms = atoms.copy()
    atoms.calc = gpaw_calculator(calc_kwargs)
    atoms.get_potential_energy()
    n_occupied = atoms.calc.get_number_of_electrons() / 2
    if nbands <= n_occupied:
        raise CoatflowError(f"dielectric nbands {nbands} must exceed the {n_occupied:g} occupied bands "
                            f"of {atoms.get_chemical_formula()} (use several times more)")
    atoms.calc.diagonalize_full_hamiltonian(nbands=nbands)
    df = DielectricFunction(atoms.calc, frequencies=[0.0], hilbert=False, eta=eta, ecut=response_ecut,
                            intraband=False, txt="gpaw_dielectric_response.txt")
    values = {}

    def eps_of(direction, lfc: bool):
        key = tuple(np.round(direction, 6))
        if key not in values:  # chi0 is computed once and cached by GPAW; each direction is a Dyson solve
            values[key] = np.real(df.get_macroscopic_dielectric_constant(direction=np.asarray(direction)))
        return float(values[key][1 if lfc else 0])

    return (electronic_tensor_from_directions(lambda d: eps_of(d, True)),
            electronic_tensor_from_directions(lambda d: eps_of(d, False)))


@dataclass
class GpawDielectricMaker(Maker):
    """Static dielectric tensor eps_inf + eps_ion of a primitive cell with GPAW (PBE, plane waves).

    ``ecut`` (eV) and ``kpt_density`` (k-points per Å^-1) set the displacement runs (Born charges and
    force constants, symmetry off), ``eps_kpt_density``, ``nbands``, ``response_ecut`` (eV, local
    fields) and ``eta`` (eV) the RPA eps_inf; ``displacement`` is in Å.
    """

    name: str = "gpaw dielectric"
    ecut: float = 550.0  # F needs it: omega_TO(LiF) 334 / 329 / 328 cm^-1 at 400 / 550 / 700 eV
    kpt_density: float = 1.5
    displacement: float = 0.01
    eps_kpt_density: float = 3.0
    nbands: int = 60
    response_ecut: float = 50.0
    eta: float = 0.001
    calculator_kwargs: dict = field(default_factory=lambda: {
        "convergence": {"energy": 1e-6, "density": 1e-6, "forces": 1e-4},
        "txt": "gpaw_dielectric.txt"})

    def __post_init__(self):
        bad = [k for k in ("ecut", "kpt_density", "displacement", "eps_kpt_density", "nbands", "response_ecut",
                           "eta") if not getattr(self, k) > 0]
        if bad:
            raise CoatflowError(f"dielectric settings must be positive: {', '.join(bad)}")
        if self.displacement > 0.1:
            raise CoatflowError(f"dielectric displacement {self.displacement} Å is outside the harmonic range "
                                "(use 0.005-0.05)")

    def settings(self) -> dict:
        return {k: getattr(self, k) for k in ("ecut", "kpt_density", "displacement", "eps_kpt_density", "nbands",
                                              "response_ecut", "eta")} | {"calculator": dict(self.calculator_kwargs)}

    def _gpaw_kwargs(self, density: float) -> dict:
        return {**self.calculator_kwargs, "mode": {"name": "pw", "ecut": self.ecut},
                "kpts": {"density": density, "gamma": True}}

    @job(data=["force_constants"])
    def make(self, structure: Structure) -> DielectricDoc:
        if not all(structure.lattice.pbc):
            raise CoatflowError("the dielectric tensor needs a 3D-periodic bulk cell")
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.set_constraint()
        t0 = time.perf_counter()
        # serial even in a multi-rank allocation (makers/gpaw_mpi.py): GPAW 26.7's response code asserts a serial
        # ground state (DielectricFunction), and the Born charges are untested under MPI
        with serial_gpaw():
            born_raw, fc_raw, n_scf = born_and_force_constants(atoms, self._gpaw_kwargs(self.kpt_density),
                                                               self.displacement)
            t1 = time.perf_counter()
            eps_el, eps_el_nlf = electronic_dielectric(atoms, self._gpaw_kwargs(self.eps_kpt_density), self.nbands,
                                                       self.response_ecut, self.eta)
        t2 = time.perf_counter()
        born, asr = asr_born_charges(born_raw)
        fc = asr_force_constants(fc_raw)
        ion = ionic_dielectric(born, fc, atoms.get_masses(), atoms.get_volume())
        eps_total = eps_el + ion["eps_ionic"]
        return DielectricDoc(
            structure=structure, formula=structure.composition.reduced_formula,
            eps_electronic=eps_el.tolist(), eps_electronic_no_local_fields=eps_el_nlf.tolist(),
            eps_ionic=ion["eps_ionic"].tolist(), eps_total=eps_total.tolist(),
            eps_total_average=float(np.trace(eps_total) / 3),
            born_charges=born.tolist(), born_charges_raw=born_raw.tolist(), born_asr_violation=asr,
            force_constants=fc_raw.tolist(), phonon_frequencies=ion["frequencies"].tolist(),
            acoustic_modes=ion["acoustic"], mode_effective_charges=ion["mode_charges"].tolist(),
            displacement_runs=n_scf, settings=self.settings(), elapsed_time=t2 - t0,
            timings={"born_charges_and_force_constants": t1 - t0, "rpa_eps_inf": t2 - t1},
            method="GPAW PBE: Berry-phase Born charges + Gamma phonons (finite displacements), RPA eps_inf "
                   "with local fields (gpaw.response.df)")


@register("dielectric", "gpaw")
def _gpaw_dielectric():
    return GpawDielectricMaker()

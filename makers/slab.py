"""Slab single points for surface energies, vacuum levels and band edges.

``GpawPotentialMaker`` returns the planar-averaged electrostatic potential itself (atomate2's ASE
TaskDoc carries none); the profile goes to the JobStore's ``data`` store. The VASP makers only
prepare inputs here: LVHAR, a dipole correction along c, ISIF=2 and one k-point along the normal.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
from atomate2.vasp.sets.core import RelaxSetGenerator, StaticSetGenerator
from jobflow import JobConfig, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.vasp import Kpoints

from coatflow.makers.gpaw import DEFAULT_GPAW_KWARGS, GpawStaticMaker, gpaw_calculator, gpaw_eigenvalues
from coatflow.makers.registry import register
from coatflow.makers.restarts import scf_with_restarts
from coatflow.workflows.analysis.band_edges import band_edges
from coatflow.workflows.analysis.slabs import surface_area
from coatflow.workflows.schemas import PotentialDoc


@dataclass
class GpawPotentialMaker(GpawStaticMaker):
    """GPAW single point returning energy, Fermi level, band edges and the potential profile.

    For slabs (``slab=True``) the normal (c) is non-periodic and GPAW adds a dipole layer,
    which corrects asymmetric slabs and leaves symmetric ones unchanged.
    """

    name: str = "gpaw potential"
    slab: bool = False
    calculator_kwargs: dict = field(default_factory=lambda: {**DEFAULT_GPAW_KWARGS, "nbands": "130%"})

    @job(data=["potential"], config=JobConfig(expose_store=True))
    def make(self, structure: Structure, prev_dir=None) -> PotentialDoc:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.set_constraint()
        extra = {}
        if self.slab:
            atoms.pbc = [True, True, False]
            extra["poissonsolver"] = {"dipolelayer": "xy"}
        t0 = time.perf_counter()
        energy, used = scf_with_restarts(atoms, lambda kw: gpaw_calculator(kw, **extra), self.calculator_kwargs,
                                         self.restarts)
        calc = atoms.calc
        fermi = float(calc.get_fermi_level())
        edges = band_edges(gpaw_eigenvalues(calc), fermi, calc.get_number_of_electrons())
        v = calc.get_electrostatic_potential()
        return PotentialDoc(
            structure=structure, energy=float(energy), n_sites=len(structure), fermi_level=fermi, vbm=edges.vbm,
            cbm=edges.cbm, metallic=edges.metallic, mean_potential=float(v.mean()),
            potential=v.mean(axis=(0, 1)).tolist(), height=float(structure.lattice.volume / surface_area(structure)),
            is_slab=self.slab,
            calculator={**DEFAULT_GPAW_KWARGS, **used, **extra},
            elapsed_time=time.perf_counter() - t0,
        )


@register("slab_static", "gpaw")
def _gpaw_slab():
    return GpawPotentialMaker(name="gpaw slab potential", slab=True)


@register("bulk_reference", "gpaw")
def _gpaw_bulk_reference():
    return GpawPotentialMaker(name="gpaw bulk potential")


# -- VASP: inputs for the same calculation ---------------------------------------------------------


SLAB_INCAR = {"LVHAR": True, "IDIPOL": 3, "LDIPOL": True, "ISMEAR": 0, "SIGMA": 0.05, "GGA": "PE"}


def slab_kpoints(structure: Structure, length: float) -> Kpoints:
    """Gamma-centred mesh, n_i = ceil(length / |a_i|) in the surface plane and 1 along the normal."""
    a, b = structure.lattice.abc[:2]
    return Kpoints.gamma_automatic((max(1, math.ceil(length / a)), max(1, math.ceil(length / b)), 1))


@dataclass
class SlabStaticSetGenerator(StaticSetGenerator):
    """Static slab: Hartree potential (LOCPOT), dipole correction along c, PBE like the GPAW path."""

    kpoint_length: float = 30.0

    @property
    def incar_updates(self) -> dict:
        return {**super().incar_updates, **SLAB_INCAR, "NELMIN": 6}

    @property
    def kpoints_updates(self) -> Kpoints:
        return slab_kpoints(self.structure, self.kpoint_length)


@dataclass
class SlabRelaxSetGenerator(RelaxSetGenerator):
    """Slab relaxation: ions only (ISIF=2, the cell is fixed by the bulk), same dipole and k-points."""

    kpoint_length: float = 30.0

    @property
    def incar_updates(self) -> dict:
        return {**super().incar_updates, **SLAB_INCAR, "ISIF": 2}

    @property
    def kpoints_updates(self) -> Kpoints:
        return slab_kpoints(self.structure, self.kpoint_length)


@dataclass
class VaspSlabStaticMaker(StaticMaker):
    """VASP slab single point (custodian) writing LOCPOT for the vacuum level."""

    name: str = "vasp slab static"
    input_set_generator: SlabStaticSetGenerator = field(default_factory=SlabStaticSetGenerator)


@dataclass
class VaspSlabRelaxMaker(RelaxMaker):
    """VASP slab relaxation at fixed cell; selective_dynamics on the slab fixes its central layers."""

    name: str = "vasp slab relax"
    input_set_generator: SlabRelaxSetGenerator = field(default_factory=SlabRelaxSetGenerator)


@register("slab_relax", "vasp")
def _vasp_slab_relax():
    return VaspSlabRelaxMaker()


@register("slab_static", "vasp")
def _vasp_slab():
    return VaspSlabStaticMaker()

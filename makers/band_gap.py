"""Band gap of a bulk phase: classifies interfacial reaction products as insulators or conductors.

GPAW: one PBE single point on a Γ-centred mesh; the gap is the lowest state above the Fermi level
minus the highest below it over all k-points, and 0 when a band crosses it. VASP: atomate2's StaticMaker,
whose TaskDoc carries ``output.bandgap``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from atomate2.vasp.jobs.core import StaticMaker
from jobflow import JobConfig, Maker, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from coatflow.makers.gpaw import DEFAULT_GPAW_KWARGS, gpaw_calculator, gpaw_eigenvalues
from coatflow.makers.registry import register
from coatflow.makers.restarts import RestartPolicy, scf_with_restarts, settings_without_restarts
from coatflow.workflows.analysis.band_edges import band_edges
from coatflow.workflows.schemas import BandGapDoc

#: Cheaper than the energy defaults: a gap needs to be right to ~0.1 eV, not to meV.
GAP_GPAW_KWARGS = {**DEFAULT_GPAW_KWARGS, "mode": {"name": "pw", "ecut": 350}, "kpts": {"density": 2.0, "gamma": True},
                   "occupations": {"name": "fermi-dirac", "width": 0.01}, "convergence": {"energy": 1e-4},
                   "nbands": "130%"}


@dataclass
class GpawBandGapMaker(Maker):
    name: str = "gpaw band gap"
    calculator_kwargs: dict = field(default_factory=lambda: dict(GAP_GPAW_KWARGS))
    restarts: RestartPolicy = field(default_factory=RestartPolicy)  # makers/restarts.py; not in the key

    key_settings = settings_without_restarts

    @job(config=JobConfig(expose_store=True))
    def make(self, structure: Structure) -> BandGapDoc:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        t0 = time.perf_counter()
        _, used = scf_with_restarts(atoms, gpaw_calculator, self.calculator_kwargs, self.restarts)
        calc = atoms.calc
        # a band crossing E_F leaves a different number of states below it at different k-points: gap 0
        edges = band_edges(gpaw_eigenvalues(calc), float(calc.get_fermi_level()), calc.get_number_of_electrons())
        return BandGapDoc(formula=structure.composition.reduced_formula, band_gap=round(edges.gap, 4), vbm=edges.vbm,
                          cbm=edges.cbm, n_kpoints=len(calc.get_ibz_k_points()), source="GPAW PBE",
                          calculator={**DEFAULT_GPAW_KWARGS, **used},
                          elapsed_time=time.perf_counter() - t0)


@register("band_gap", "gpaw")
def _gpaw_band_gap():
    return GpawBandGapMaker()


@register("band_gap", "vasp")
def _vasp_band_gap():
    return StaticMaker(name="band gap static")

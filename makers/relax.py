"""Bulk relaxation of a candidate, on the configured backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from atomate2.vasp.jobs.mp import MPGGARelaxMaker
from jobflow import Maker
from pymatgen.core import Structure

from coatflow.makers.mlip import CHGNET_CALCULATOR, IONIC_STEP_DATA, RestartingForceFieldRelaxMaker
from coatflow.makers.registry import get_maker, register


@dataclass
class MLIPBulkRelaxMaker(RestartingForceFieldRelaxMaker):
    """Full cell and ion relaxation with CHGNet (weights ship in the chgnet wheel)."""

    name: str = "mlip bulk relax"
    force_field_name: str = "CHGNet"
    calculator_meta: str = CHGNET_CALCULATOR
    relax_cell: bool = True
    steps: int = 500
    relax_kwargs: dict = field(default_factory=lambda: {"fmax": 0.05})
    ionic_step_data: tuple | None = IONIC_STEP_DATA


@dataclass
class VaspBulkRelaxMaker(MPGGARelaxMaker):
    """MP-compatible GGA(+U) relaxation, run through custodian."""

    name: str = "vasp bulk relax"


@register("relax", "mlip")
def _mlip_relax():
    return MLIPBulkRelaxMaker()


@register("relax", "vasp")
def _vasp_relax():
    return VaspBulkRelaxMaker()


@dataclass
class BulkRelaxMaker(Maker):
    """Relax a bulk structure with the backend the campaign configured for ``relax``."""

    name: str = "bulk relax"
    backend: str = "mlip"

    def make(self, structure: Structure):
        return get_maker("relax", self.backend).make(structure)

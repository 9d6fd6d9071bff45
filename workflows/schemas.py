"""Documents the campaign writes: one StageResult per (material, stage), and the candidate summary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

Status = Literal["passed", "failed", "not_computed"]


class StageResult(BaseModel):
    """The verdict of one funnel stage for one material (a job output in the JobStore)."""

    material_id: str
    formula: str
    stage: str
    status: Status
    source: str | None = Field(None, description="where the candidate came from, e.g. 'example', 'mp', a file")
    value: float | None = None
    unit: str | None = None
    criterion: str | None = Field(None, description="e.g. '>= 35 GPa'")
    reason: str | None = Field(None, description="why the stage failed or was not computed")
    backend: str | None = None
    task_uuids: list[str] = Field(default_factory=list, description="jobs the value came from")
    predicted: bool = Field(False, description="structure predicted by prototype substitution")
    details: dict[str, Any] = Field(default_factory=dict)
    structure: Structure | None = Field(None, description="structure handed to the next stage")
    structures: dict[str, Structure] = Field(
        default_factory=dict, description="alternative structures handed on, e.g. prototype polymorphs"
    )

    model_config = {"arbitrary_types_allowed": True}

    @property
    def passed(self) -> bool:
        """Whether later stages should run (a stage that could not be computed does not block)."""
        return self.status != "failed"


class StageSummary(BaseModel):
    status: Status
    value: float | None = None
    unit: str | None = None
    criterion: str | None = None
    reason: str | None = None
    backend: str | None = None
    task_uuids: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class CandidateDoc(BaseModel):
    """One document per material in the ``candidates`` collection, written by CandidateBuilder."""

    material_id: str
    formula: str
    source: str | None = None
    predicted: bool = False
    stages: dict[str, StageSummary] = Field(default_factory=dict)
    furthest_stage: str | None = None
    failed_stage: str | None = None
    stages_passed: int = 0
    last_job_completed_at: str | None = None


# -- surfaces (workflows/surfaces.py, makers/slab.py) ------------------------------------------


class PotentialDoc(BaseModel):
    """One GPAW single point with what an IP needs; ``potential`` (planar average, eV) goes to the data store."""

    structure: Structure
    energy: float = Field(description="eV, total")
    n_sites: int
    fermi_level: float = Field(description="eV")
    vbm: float | None = Field(None, description="eV, highest state below the Fermi level")
    cbm: float | None = Field(None, description="eV, lowest state above the Fermi level")
    metallic: bool = Field(False, description="partly filled bands: band counts below E_F differ between k-points")
    mean_potential: float = Field(description="eV, cell average of the electrostatic potential")
    potential: list[float] = Field(default_factory=list, description="eV, planar average along c")
    height: float = Field(description="Å, cell height along the surface normal (c)")
    is_slab: bool = False
    calculator: dict[str, Any] = Field(default_factory=dict)
    elapsed_time: float | None = None

    model_config = {"arbitrary_types_allowed": True}


class SlabSurfaceDoc(BaseModel):
    """One (material, facet, termination): surface energy, vacuum level and band edges."""

    material_id: str
    formula: str
    miller_index: tuple[int, int, int]
    shift: float
    termination: str
    n_sites: int
    symmetric: bool
    polar: bool
    stoichiometric: bool
    vacuum: float = Field(description="Å, requested vacuum thickness")
    slab_thickness: float = Field(description="Å, outermost atom planes")
    surface_energy: float | None = Field(None, description="J/m^2")
    surface_energy_note: str | None = None
    vacuum_level: float = Field(description="eV, mean of the plateau(s)")
    vacuum_levels: dict[str, float] = Field(default_factory=dict, description="eV, 'bottom' and 'top' plateaus")
    plateau_spread: float = Field(description="eV, largest peak-to-peak variation on a plateau")
    plateau_flat: bool
    fermi_level: float
    work_function: float | None = Field(None, description="eV, metals: vacuum - Fermi level")
    ionization_potential: float | None = Field(None, description="eV, vacuum - bulk-aligned VBM")
    ionization_potential_slab: float | None = Field(None, description="eV, vacuum - slab VBM (no alignment)")
    electron_affinity: float | None = Field(None, description="eV, vacuum - bulk-aligned CBM (PBE gap)")
    alignment_shift: float | None = Field(None, description="eV, slab-middle minus bulk average potential")
    metallic: bool
    backend: str = "gpaw"
    calc_uuid: str | None = Field(None, description="job whose data blob holds the potential profile")


class SurfaceSummaryDoc(BaseModel):
    """One per material: the lowest-energy termination and its IP / EA / work function."""

    material_id: str
    formula: str
    metallic: bool
    best: SlabSurfaceDoc | None = None
    ionization_potential: float | None = None
    electron_affinity: float | None = None
    work_function: float | None = None
    surface_energy: float | None = Field(None, description="J/m^2, of the chosen termination")
    bulk_gap: float | None = Field(None, description="eV, PBE")
    surfaces: list[SlabSurfaceDoc] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="slabs not computed, with the reason")
    vacuum_convergence: dict[str, float] | None = Field(None, description="IP or WF at two vacuum thicknesses")
    backend: str = "gpaw"
    settings: dict[str, Any] = Field(default_factory=dict)


# --- Li adsorption (li_adsorption stage) ------------------------------------------------------

"""Surface documents: one (facet, termination) and the per-material summary (IP, EA, work function)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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

"""Li adsorption documents: one site, and the stage's calculation document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pymatgen.core import Structure


class AdsorptionSite(BaseModel):
    """One symmetry-distinct Li site on the chosen surface, after relaxation."""

    index: int
    site_type: str = Field(..., description="ontop | bridge | hollow, from the nearest top-layer atoms")
    site_atoms: list[str] = Field(default_factory=list, description="top-layer atoms defining the site")
    coordination: int | None = Field(None, description="slab atoms within 2.8 A of the relaxed Li")
    neighbours: list[str] = Field(default_factory=list)
    e_ads_ml: float | None = Field(None, description="eV, vs bulk bcc Li, ML backend")
    e_ads_dft: float | None = Field(None, description="eV, vs bulk bcc Li, DFT backend (confirmed sites only)")
    flags: list[str] = Field(default_factory=list, description="desorbed | subsurface | reconstructed | not_converged")
    li_height: float | None = Field(None, description="A above the top slab atom, after relaxation")
    max_slab_displacement: float | None = Field(None, description="A, vs the relaxed clean slab")
    relaxed_to: int | None = Field(None, description="site the Li ended on (index), None if between sites")
    structure: Structure | None = Field(None, description="relaxed slab + Li")

    model_config = {"arbitrary_types_allowed": True}


class LiAdsorptionDoc(BaseModel):
    """Li adsorption on the most stable surface: E_ads = E(slab+Li) - E(slab) - mu_Li."""

    reference: str = "bulk bcc Li (energy per atom of the relaxed bcc cell, same calculator)"
    mu_li: dict[str, float] = Field(default_factory=dict, description="eV/atom per backend")
    isolated_atom_energy: dict[str, float] = Field(
        default_factory=dict, description="eV, isolated Li atom per backend: a labelled extra, not the reference")
    surface: dict[str, Any] = Field(default_factory=dict, description="chosen facet/termination and how")
    surfaces: list[dict[str, Any]] = Field(default_factory=list, description="surface energies compared")
    slab: Structure | None = Field(None, description="relaxed clean slab (bottom layers fixed)")
    slab_energy: dict[str, float] = Field(default_factory=dict, description="eV per backend")
    sites: list[AdsorptionSite] = Field(default_factory=list)
    e_ads_min: float | None = Field(None, description="eV, lowest physical site")
    min_site: int | None = None
    min_backend: str | None = Field(None, description="backend that produced e_ads_min")
    ml_backend: str = "mlip"
    dft: dict[str, Any] = Field(default_factory=dict, description="DFT confirmation: status, backend, reason, metric")
    reason: str | None = Field(None, description="why no E_ads could be given")

    model_config = {"arbitrary_types_allowed": True}

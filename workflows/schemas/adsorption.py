"""Li adsorption documents: one site, the stage's calculation document, and its verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field
from pymatgen.core import Structure

from coatflow.workflows.schemas.stage import StageResult, Status


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


# --- the li_adsorption stage verdict --------------------------------------------------------------


class ChosenSite(BaseModel):
    """The site that gave the stage's E_ads."""

    index: int
    site_type: str = Field(..., description="ontop | bridge | hollow")
    site_atoms: list[str] = Field(default_factory=list)
    coordination: int | None = None


class UnrelaxedSite(BaseModel):
    """A site left out of the relaxations (more sites than max_sites), with its single-point E_ads."""

    index: int
    site_type: str
    site_atoms: list[str] = Field(default_factory=list)
    e_ads_unrelaxed: float | None = Field(None, description="eV, Li at the starting position, slab unrelaxed")


class AdsorptionSurface(BaseModel):
    """The surface the sites were put on, and how it was chosen."""

    chosen: int | None = Field(None, description="index of the chosen termination among those compared")
    how: str | None = None
    miller_index: list[int] | None = None
    termination: int | None = Field(None, description="index among the facet's terminations (pymatgen order)")
    gamma: float | None = Field(None, description="J/m^2, relaxed surface energy")
    symmetric: bool | None = None
    n_sites_enumerated: int | None = None
    sites_not_relaxed: list[UnrelaxedSite] = Field(default_factory=list)
    wall_time_sites: float | None = Field(None, description="s")


class DftConfirmation(BaseModel):
    """DFT single points on the ML geometries of the lowest sites (AdsorbML ML+SP), or why they did not run."""

    status: Literal["pending", "not_run", "done"]
    backend: str | None = None
    reason: str | None = None
    k: int | None = Field(None, description="sites confirmed")
    method: str | None = None
    ml_selected_site: int | None = None
    dft_min_site: int | None = None
    ml_within_0_1eV: bool | None = Field(
        None, validation_alias=AliasChoices("ml_within_0_1eV", "ml_within_0.1eV"),
        description="AdsorbML success: the ML-selected site is within 0.1 eV of the DFT minimum")


class SiteEnergies(BaseModel):
    """E_ads of one relaxed site per backend (eV, vs bulk bcc Li), and its outcome flags."""

    ml: float | None = None
    dft: float | None = None
    flags: list[str] = Field(default_factory=list)


class LiAdsorptionDetails(BaseModel):
    """What the li_adsorption verdict records besides its value."""

    site: ChosenSite | None = None
    surface: AdsorptionSurface = Field(default_factory=AdsorptionSurface)
    n_sites: int = Field(0, description="sites relaxed")
    n_flagged: int = Field(0, description="relaxed sites with an unphysical outcome")
    reference: str | None = None
    mu_li: dict[str, float] = Field(default_factory=dict, description="eV/atom per backend")
    dft: DftConfirmation | None = None
    e_ads: dict[int, SiteEnergies] = Field(default_factory=dict, description="per site index")


class LiAdsorptionResult(StageResult):
    """The li_adsorption verdict: E_ads(min) of the lowest physical site vs the threshold."""

    stage: str = "li_adsorption"
    details: LiAdsorptionDetails = Field(default_factory=LiAdsorptionDetails)

    @classmethod
    def from_adsorption(cls, ident: dict, doc: LiAdsorptionDoc, *, status: Status, value: float | None,
                        site: int | None, reason: str | None, e_ads_max: float, structure: Structure | None = None,
                        task_uuids: Sequence[str | None] = ()) -> LiAdsorptionResult:
        """The verdict document from the stage's calculation document and its decision (status, value, site)."""
        chosen = next((s for s in doc.sites if s.index == site), None)
        details = LiAdsorptionDetails(
            site=None if chosen is None else ChosenSite(index=chosen.index, site_type=chosen.site_type,
                                                        site_atoms=chosen.site_atoms, coordination=chosen.coordination),
            surface=AdsorptionSurface.model_validate({k: v for k, v in doc.surface.items() if k != "skipped"}),
            n_sites=len(doc.sites), n_flagged=sum(bool(s.flags) for s in doc.sites), reference=doc.reference,
            mu_li=doc.mu_li, dft=DftConfirmation.model_validate(doc.dft) if doc.dft else None,
            e_ads={s.index: SiteEnergies(ml=s.e_ads_ml, dft=s.e_ads_dft, flags=s.flags) for s in doc.sites})
        return cls(**ident, status=status, value=value, unit="eV",
                   criterion=f"E_ads(min) <= {e_ads_max} eV vs bulk bcc Li", reason=reason, backend=doc.min_backend,
                   task_uuids=[u for u in task_uuids if u], details=details, structure=structure)

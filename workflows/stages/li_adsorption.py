"""Stage 7, Li adsorption: E_ads of Li on the most stable surface, vs bulk bcc Li."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from coatflow.workflows.stages.base import Stage


@dataclasses.dataclass
class LiAdsorptionStage(Stage):
    """Li adsorption: lowest E_ads over the symmetry-distinct sites of the most stable surface (docs/adsorption.md)."""

    stage: ClassVar[str] = "li_adsorption"
    name: str = "li adsorption"
    e_ads_max: Annotated[float, Field(ge=-20, le=20, allow_inf_nan=False, description="eV, vs bulk Li")] = 0.0
    backend: Annotated[Literal["mlip"], Field(description="site search and relaxations (mlip)")] = "mlip"
    top_k: Annotated[int, Field(ge=1, description="lowest ML sites confirmed with DFT")] = 3
    dft_backend: Annotated[Literal["vasp", "gpaw"] | None, Field(
        description="vasp | gpaw | null (no DFT confirmation)")] = None
    layers: Annotated[int, Field(ge=1, description="slab thickness in d_hkl planes")] = 2
    vacuum: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False, description="Å")] = 12.0
    min_lw: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False, description="Å, minimum in-plane cell length")] = 6.0
    max_index: Annotated[int, Field(ge=1, le=3, description="facets compared: Miller indices up to this")] = 1
    max_atoms: Annotated[int, Field(ge=2, description="larger slabs are skipped")] = 60
    max_surfaces: Annotated[int, Field(ge=1, description="terminations relaxed (lowest single-point surface energy)")] = 2
    max_sites: Annotated[int, Field(ge=1, description="sites relaxed (lowest single-point energy)")] = 6
    fmax: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False, description="eV/Å, slab and site relaxations")] = 0.1
    steps: Annotated[int, Field(ge=1, description="optimizer step cap per relaxation (then flagged not converged)")] = 150

    @classmethod
    def note(cls, details: dict) -> str:
        site = details.get("site") or {}
        return f" {site['site_type']}" if site.get("site_type") else ""

    def plan(self, planner, plan, upstream: str, verdict):
        from coatflow.workflows.adsorption import plan_li_adsorption  # TEMPORARY: moves here (recut step 3)

        return plan_li_adsorption(planner, plan, upstream, verdict)

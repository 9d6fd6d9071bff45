"""Stage 7, Li adsorption: E_ads of Li on the most stable surface, vs bulk bcc Li.

E_ads = E(slab + Li) - E(slab) - mu_Li, with mu_Li the energy per atom of relaxed bcc Li on the same
calculator. The physics (slabs, sites, outcome checks, the pass/fail rule) is in
``coatflow.workflows.analysis.slabs`` and ``.adsorption_sites``; the calculations are the jobs of the
adsorption Maker (``coatflow.makers.adsorption``, from the registry when the stage is planned: it brings
CHGNet and atomate2). Optionally the lowest ``top_k`` sites are confirmed with DFT.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from jobflow import Response, job
from pydantic import Field
from pymatgen.core import Structure

from coatflow.makers.registry import backend_problems, get_maker
from coatflow.workflows.analysis.adsorption_sites import adsorption_decision
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import LiAdsorptionDoc
from coatflow.workflows.schemas.adsorption import LiAdsorptionResult
from coatflow.workflows.stages.base import Stage


def dft_status(maker) -> dict:
    """Whether the adsorption ``maker``'s DFT confirmation runs: 'pending' (will run) or 'not_run' with the reason.

    The dict goes into the stage's job keys: its wording must stay as it is.
    """
    requested = maker.requested_dft()
    if requested["status"] != "pending":
        return requested
    backend = maker.dft_backend
    missing = backend_problems(backend)
    try:
        get_maker("static", backend)
    except CoatflowError:
        if not missing:
            return {"status": "not_run", "backend": backend, "reason": f"no ('static', '{backend}') maker registered"}
    if missing:
        return {"status": "not_run", "backend": backend, "reason": f"backend '{backend}' missing {'; '.join(missing)}"}
    return requested


@job(name="li adsorption verdict", output_schema=LiAdsorptionResult)
def adsorption_verdict(ident: dict, doc: LiAdsorptionDoc, bulk: Structure, e_ads_max: float,
                       uuids: list[str]) -> Response:
    """Pass when the lowest physical E_ads (DFT when it confirmed sites, else ML) is at most ``e_ads_max`` eV."""
    which = "dft" if doc.dft.get("status") == "done" else "ml"
    decision = adsorption_decision({s.index: getattr(s, f"e_ads_{which}") for s in doc.sites},
                                   {s.index: s.flags for s in doc.sites}, e_ads_max, doc.reason)
    result = LiAdsorptionResult.from_adsorption(
        ident, doc, status=decision.status, value=decision.value, site=decision.site, reason=decision.reason,
        e_ads_max=e_ads_max, structure=bulk, task_uuids=uuids)
    return Response(output=result, stop_children=not result.passed)




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

    def adsorption_maker(self, maker):
        """The backend's adsorption Maker with this stage's slab, site and DFT settings."""
        return dataclasses.replace(maker, top_k=self.top_k, dft_backend=self.dft_backend, layers=self.layers,
                                   min_vacuum=self.vacuum, min_lw=self.min_lw, max_index=self.max_index,
                                   max_atoms=self.max_atoms, max_surfaces=self.max_surfaces,
                                   max_sites=self.max_sites, fmax=self.fmax, steps=self.steps)

    def calculators(self) -> list[tuple[str, str]]:
        return [("adsorption", self.backend)]

    def plan(self, planner, plan, upstream: str, verdict):
        """bcc Li reference (shared), surface choice, site relaxations, DFT confirmation, verdict."""
        maker = self.adsorption_maker(planner.maker("adsorption", self.backend))
        relax_backend = planner.config.bulk_relax.backend
        base = planner.calc_key(upstream, self.stage, self.backend, maker, relax_backend,
                                planner.settings(planner.maker("relax", relax_backend)))
        # the bcc Li reference depends only on the calculator: shared by every candidate
        ref, ref_uuid = planner.add(plan, planner.key("bcc_li_reference", planner.settings(maker.li_relax_maker)),
                                    self.stage, "li_reference", self.backend, maker.reference_job)
        surf, surf_uuid = planner.add(plan, planner.key(base, "surface"), self.stage, "adsorption_surface",
                                      self.backend, lambda: maker.surface_job(verdict.structure))
        dft = dft_status(maker)
        doc, uuid = planner.add(plan, planner.key(base, "sites", dft), self.stage, "adsorption", self.backend,
                                lambda: maker.sites_job(surf, ref, dft))
        uuids = [ref_uuid, surf_uuid, uuid]
        if dft["status"] == "pending":
            prior = doc
            doc, uuid = planner.add(plan, planner.key(base, "dft", maker.dft_backend, maker.top_k), self.stage,
                                    "adsorption_dft", maker.dft_backend, lambda: maker.dft_job(prior))
            uuids.append(uuid)
        vkey = planner.key(base, "verdict", dft, self.e_ads_max)
        return planner.gate(plan, vkey, self.stage, self.backend,
                            lambda: adsorption_verdict(plan.ident, doc, verdict.structure, self.e_ads_max, uuids))

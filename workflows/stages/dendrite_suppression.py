"""Dendrite suppression (off by default): Li nuclei grown under the candidate as a layer, at its G_VRH.

Runs the 2D finite-element model of workflows/analysis/dendrite.py (docs/dendrite.md) with the layer's shear
modulus and Poisson ratio from the shear stage's verdict (G_VRH, and nu from K_VRH and G_VRH) and reports the
roughness amplification, so a user sees what the shear threshold means for each candidate. The Li+ volume
ratio v = V_Li+/V_Li is the candidate's own (``li_ion_volume_ratio``: the Shannon radius of Li+ at each Li site's
CrystalNN coordination in the structure the shear verdict carries, after Ahmad et al., ACS Cent. Sci. 4, 996
(2018)), unless ``ion_volume_ratio`` sets one for every candidate. Inorganic layers have v << 1 (Li2O 0.040,
octahedral Li 0.085): in Ahmad & Viswanathan's analysis such a layer is stable only below about 0.7 G_Li, so a
stiff candidate roughens here, the faster the stiffer (docs/dendrite.md).

Off unless ``dendrite_suppression.enabled: true``: a disabled stage plans nothing, has no key and hands the
shear verdict on unchanged (the table shows no column). Its verdict is informative (always passed) unless
``amplification_max`` is set; then a candidate whose amplification exceeds it fails and stops its funnel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, ClassVar

from jobflow import Response, job
from pydantic import Field

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.dendrite import DendriteParams, Mesh, li_ion_volume_ratio, run
from coatflow.workflows.schemas.dendrite import DendriteSuppressionDetails, DendriteSuppressionResult
from coatflow.workflows.stages.base import Stage, not_computed, respond


def poisson_ratio(k_vrh: float | None, g_vrh: float) -> float:
    """Isotropic nu = (3K - 2G) / (2 (3K + G)); 0.3 when K is unknown; kept inside (-0.9, 0.49)."""
    if k_vrh is None or not math.isfinite(k_vrh) or k_vrh <= 0:
        return 0.3
    return min(0.49, max(-0.9, (3 * k_vrh - 2 * g_vrh) / (2 * (3 * k_vrh + g_vrh))))


@job(name="dendrite suppression verdict", output_schema=DendriteSuppressionResult)
def dendrite_verdict(ident: dict, g_vrh: float | None, k_vrh: float | None, structure, settings: dict) -> Response:
    """Run the model at the candidate's G_VRH (GPa); pass unless ``amplification_max`` is set and exceeded."""
    limit = settings.get("amplification_max")
    criterion = "informative" if limit is None else f"roughness amplification <= {limit}"
    if g_vrh is None or not math.isfinite(g_vrh) or g_vrh <= 0:
        return not_computed(DendriteSuppressionResult, ident, structure, "no positive G_VRH from the shear stage",
                            criterion=criterion)
    nu = poisson_ratio(k_vrh, g_vrh)
    v, coordination, source = settings.get("ion_volume_ratio"), None, "config (dendrite_suppression.ion_volume_ratio)"
    if v is None:
        try:
            if structure is None:
                raise AnalysisError("no structure")
            ions = li_ion_volume_ratio(structure)
        except AnalysisError as e:
            return not_computed(DendriteSuppressionResult, ident, structure,
                                f"no Li+ volume ratio from the structure ({e}); set dendrite_suppression.ion_volume_ratio",
                                criterion=criterion)
        v, coordination = ions.ratio, ions.mean_coordination
        source = "Shannon radius of Li+ at its CrystalNN coordination" + (
            f" (CN {', '.join(map(str, ions.interpolated))} from the linear fit)" if ions.interpolated else "")
    mesh = Mesh(nx=settings["nx"], ny=settings["ny"])
    r = run(dataclasses.replace(DendriteParams(), shear_modulus=g_vrh * 1e9, poisson=nu, ion_volume_ratio=v),
            total_time=settings["time"], mesh=mesh)
    details = DendriteSuppressionDetails(
        g_vrh=g_vrh, poisson=round(nu, 4), ion_volume_ratio=round(v, 5), li_coordination=coordination,
        ion_volume_source=source, time=settings["time"], time_reached=r.times[-1],
        tip_height=r.tip_height * 1e9, valley_height=r.valley_height * 1e9,
        tip_valley_ratio=None if math.isinf(r.ratio) else r.ratio, amplification=r.amplification,
        flattening_time=r.time_to(0.1), stopped=r.stopped, mesh=[mesh.nx, mesh.ny])
    # a run stopped by runaway sharpening roughened faster than the model resolves: it fails any set limit
    ok = limit is None or (r.stopped is None and r.amplification <= limit)
    reason = None if ok else (f"roughness amplification {r.amplification:.3g} > {limit}" if r.stopped is None
                              else f"roughness amplification: {r.stopped}")
    return respond(DendriteSuppressionResult(
        **ident, status="passed" if ok else "failed", value=r.amplification, criterion=criterion, details=details,
        structure=structure, reason=reason))


@dataclasses.dataclass
class DendriteSuppressionStage(Stage):
    """dendrite suppression: roughness amplification of Li nuclei under the candidate (off by default)."""

    stage: ClassVar[str] = "dendrite_suppression"
    name: str = "dendrite suppression"
    enabled: Annotated[bool, Field(description="run the Li-deposition model at each candidate's G_VRH")] = False
    amplification_max: Annotated[float | None, Field(gt=0, allow_inf_nan=False, description=(
        "fail above this roughness amplification; null: informative only"))] = None
    ion_volume_ratio: Annotated[float | None, Field(ge=0, allow_inf_nan=False, description=(
        "V_Li+/V_Li for every candidate; null: each candidate's own, from its Li coordination"))] = None
    time: Annotated[float, Field(gt=0, le=1e5, allow_inf_nan=False, description="s of growth")] = 450.0
    nx: Annotated[int, Field(ge=8, le=512, description="surface nodes per 20 nm period")] = 32
    ny: Annotated[int, Field(ge=2, le=128, description="element layers in the layer and in the Li")] = 8

    @classmethod
    def value_text(cls, summary: dict) -> str:
        return "" if summary.get("value") is None else f"x{summary['value']:.2g} "

    @classmethod
    def note(cls, details: dict) -> str:
        return " runaway" if details.get("stopped") else ""

    def plan(self, planner, plan, upstream: str, verdict):
        """Nothing when disabled (the shear verdict is handed on); else one verdict job keyed on the shear verdict."""
        if not self.enabled:
            return verdict
        shear_key = plan.verdict_keys.get("shear_modulus", upstream)
        key = planner.key(shear_key, self.stage, self.key_settings())
        settings = self.settings()
        return planner.gate(plan, key, self.stage, None,
                            lambda: dendrite_verdict(plan.ident, verdict.details.g_vrh, verdict.details.k_vrh,
                                                     verdict.structure, settings))

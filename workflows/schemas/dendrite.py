"""Dendrite-suppression stage verdict: roughness amplification of Li nuclei under the candidate as a layer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from coatflow.workflows.schemas.stage import StageResult


class DendriteSuppressionDetails(BaseModel):
    """What the dendrite_suppression verdict records (workflows/analysis/dendrite.py, docs/dendrite.md)."""

    g_vrh: float | None = Field(None, description="GPa, the layer's shear modulus (the shear stage's G_VRH)")
    poisson: float | None = Field(None, description="the layer's Poisson ratio, from K_VRH and G_VRH")
    ion_volume_ratio: float | None = Field(None, description="v = V_Li+/V_Li, the layer's Li+ partial molar volume over Li metal's")
    li_coordination: float | None = Field(None, description="mean coordination number of the Li sites (when v is from the structure)")
    ion_volume_source: str | None = Field(None, description="where v comes from: the structure or the config")
    time: float | None = Field(None, description="s, growth time asked for")
    time_reached: float | None = Field(None, description="s, growth time reached (less when the run stopped)")
    tip_height: float | None = Field(None, description="nm above the initial flat Li surface, at the end")
    valley_height: float | None = Field(None, description="nm above the initial flat Li surface, at the end")
    tip_valley_ratio: float | None = Field(None, description="tip height / valley height (None: valley <= 0)")
    amplification: float | None = Field(None, description="peak-to-valley amplitude at the end / at the start")
    flattening_time: float | None = Field(None, description="s until the amplitude fell below 10 % of its start")
    stopped: str | None = Field(None, description="why the run ended early (runaway sharpening), if it did")
    mesh: list[int] = Field(default_factory=list, description="nx, ny of the run")


class DendriteSuppressionResult(StageResult):
    """The dendrite_suppression verdict: informative (passed) unless ``amplification_max`` is set."""

    stage: str = "dendrite_suppression"
    unit: str | None = None
    details: DendriteSuppressionDetails = Field(default_factory=DendriteSuppressionDetails)

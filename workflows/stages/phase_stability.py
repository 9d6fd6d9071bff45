"""Stage 3, phase stability: E_hull on the campaign's own energies (the database filter's hull criterion)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from pydantic import Field

from coatflow.workflows.stages.base import Stage


@dataclasses.dataclass
class PhaseStabilityStage(Stage):
    """phase stability: energy above the convex hull of the candidate's chemical system (thermo.entries)."""

    stage: ClassVar[str] = "phase_stability"
    name: str = "phase stability"
    e_hull_max: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="eV/atom")] = 0.005

    def plan(self, planner, plan, upstream: str, verdict):
        from coatflow.workflows.thermo_stages import plan_phase_stability  # TEMPORARY: moves here (recut step 3)

        return plan_phase_stability(planner, plan, upstream, verdict)

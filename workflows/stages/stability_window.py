"""Stage 4, electrochemical window: the Li chemical-potential range where the candidate is stable."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from pydantic import Field

from coatflow.workflows.stages.base import Stage


@dataclasses.dataclass
class StabilityWindowStage(Stage):
    """electrochemical window: reduction and oxidation limits vs Li/Li+ (grand-potential phase diagram)."""

    stage: ClassVar[str] = "stability_window"
    name: str = "stability window"
    reduction_limit_max: Annotated[float, Field(ge=0, le=6, allow_inf_nan=False, description="V vs Li/Li+")] = 0.5
    oxidation_limit_min: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False, description="V vs Li/Li+")] = 2.0

    @classmethod
    def value_text(cls, summary: dict) -> str:
        det = summary.get("details") or {}
        if det.get("reduction_limit") is not None:
            return f"{det['reduction_limit']:.2f}–{det['oxidation_limit']:.2f} "
        return super().value_text(summary)

    def plan(self, planner, plan, upstream: str, verdict):
        from coatflow.workflows.thermo_stages import plan_stability_window  # TEMPORARY: moves here (recut step 3)

        return plan_stability_window(planner, plan, upstream, verdict)

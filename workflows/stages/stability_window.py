"""Stage 4, electrochemical window: the Li chemical-potential range where the candidate is stable.

The window comes from pymatgen's phase diagram (workflows/analysis/thermo.py ``stability_window``) on the
energies of workflows/phase_diagrams.py.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from jobflow import job
from pydantic import Field

from coatflow.workflows.analysis import AnalysisError, thermo
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import (
    backend_of, entries_on_scale, entries_state, phase_inputs, stage_key)
from coatflow.workflows.schemas.thermo import StabilityWindowResult
from coatflow.workflows.stages.base import Stage, not_computed, respond


@job(name="stability window verdict", output_schema=StabilityWindowResult)
def stability_window_verdict(ident, cand_doc, phase_docs, structure, red_max, ox_min, source=None):
    try:
        cand, entries = entries_on_scale(cand_doc, phase_docs, source)
        window = thermo.stability_window(cand, entries)
    except (CoatflowError, AnalysisError) as exc:
        return not_computed(StabilityWindowResult, ident, structure, str(exc))
    return respond(StabilityWindowResult.from_window(ident, window, red_max, ox_min, energy_scale=thermo.scale_of(cand),
                                                      structure=structure, backend=backend_of(source)))




@dataclasses.dataclass
class StabilityWindowStage(Stage):
    """electrochemical window: reduction and oxidation limits vs Li/Li+ (grand-potential phase diagram)."""

    stage: ClassVar[str] = "stability_window"
    phase_diagram: ClassVar[bool] = True
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
        cand, phases, _, source = phase_inputs(planner, plan, upstream, verdict)
        key = stage_key(planner, upstream, self.stage, sorted(phases), entries_state(source), self.key_settings())
        return planner.gate(plan, key, self.stage, source["backend"], lambda: stability_window_verdict(
            plan.ident, cand, phases, verdict.structure, self.reduction_limit_max, self.oxidation_limit_min, source))

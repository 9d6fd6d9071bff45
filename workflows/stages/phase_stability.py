"""Stage 3, phase stability: E_hull on the campaign's own energies (the database filter's hull criterion).

The candidate and its competing phases come from workflows/phase_diagrams.py (one energy scale,
``thermo.entries``), the hull from workflows/analysis/thermo.py.
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
from coatflow.workflows.schemas.thermo import FormationFromPrecursors, PhaseStabilityDetails, PhaseStabilityResult
from coatflow.workflows.stages.base import Stage, not_computed, respond


@job(name="phase stability verdict", output_schema=PhaseStabilityResult)
def phase_stability_verdict(ident, cand_doc, phase_docs, structure, e_max, uuids, source=None):
    try:
        cand, entries = entries_on_scale(cand_doc, phase_docs, source)
    except (CoatflowError, AnalysisError) as exc:
        return not_computed(PhaseStabilityResult, ident, structure, str(exc))
    scale = thermo.scale_of(cand)
    if miss := thermo.covers(entries, cand.composition.elements):
        return not_computed(PhaseStabilityResult, ident, structure,
                             f"no elemental reference for {', '.join(miss)} on the {scale} scale")
    ehull, decomp = thermo.e_above_hull(cand, entries)
    try:
        formation = FormationFromPrecursors(status="computed",
                                            precursors=thermo.formation_from_precursors(cand, entries))
    except AnalysisError as exc:
        formation = FormationFromPrecursors(status="not_computed", reason=str(exc))
    details = PhaseStabilityDetails(energy_scale=scale, decomposition=decomp,
                                    competing_phases=sorted(phase_docs) or len(entries),
                                    formation_from_precursors=formation)
    return respond(PhaseStabilityResult.from_hull(ident, ehull, e_max, details, structure=structure,
                                                   backend=backend_of(source), task_uuids=uuids))




@dataclasses.dataclass
class PhaseStabilityStage(Stage):
    """phase stability: energy above the convex hull of the candidate's chemical system (thermo.entries)."""

    stage: ClassVar[str] = "phase_stability"
    phase_diagram: ClassVar[bool] = True
    name: str = "phase stability"
    e_hull_max: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="eV/atom")] = 0.005

    def plan(self, planner, plan, upstream: str, verdict):
        cand, phases, uuids, source = phase_inputs(planner, plan, upstream, verdict)
        key = stage_key(planner, upstream, self.stage, sorted(phases), entries_state(source), self.key_settings())
        return planner.gate(plan, key, self.stage, source["backend"], lambda: phase_stability_verdict(
            plan.ident, cand, phases, verdict.structure, self.e_hull_max, uuids, source))

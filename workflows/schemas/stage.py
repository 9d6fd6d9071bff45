"""Stage verdicts: the base document every funnel stage returns, and the candidate row built from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

Status = Literal["passed", "failed", "not_computed"]


class StageResult(BaseModel):
    """The verdict of one funnel stage for one material (a job output in the JobStore)."""

    material_id: str
    formula: str
    stage: str
    status: Status
    source: str | None = Field(None, description="where the candidate came from, e.g. 'example', 'mp', a file")
    value: float | None = None
    unit: str | None = None
    criterion: str | None = Field(None, description="e.g. '>= 35 GPa'")
    reason: str | None = Field(None, description="why the stage failed or was not computed")
    backend: str | None = None
    task_uuids: list[str] = Field(default_factory=list, description="jobs the value came from")
    predicted: bool = Field(False, description="structure predicted by prototype substitution")
    details: dict[str, Any] = Field(default_factory=dict)
    structure: Structure | None = Field(None, description="structure handed to the next stage")
    structures: dict[str, Structure] = Field(
        default_factory=dict, description="alternative structures handed on, e.g. prototype polymorphs"
    )

    model_config = {"arbitrary_types_allowed": True}

    @property
    def passed(self) -> bool:
        """Whether later stages should run (a stage that could not be computed does not block)."""
        return self.status != "failed"


class StageSummary(BaseModel):
    status: Status
    value: float | None = None
    unit: str | None = None
    criterion: str | None = None
    reason: str | None = None
    backend: str | None = None
    task_uuids: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class CandidateDoc(BaseModel):
    """One document per material in the ``candidates`` collection, written by CandidateBuilder."""

    material_id: str
    formula: str
    source: str | None = None
    predicted: bool = False
    stages: dict[str, StageSummary] = Field(default_factory=dict)
    furthest_stage: str | None = None
    failed_stage: str | None = None
    stages_passed: int = 0
    last_job_completed_at: str | None = None

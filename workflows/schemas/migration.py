"""Li migration: the migration_barrier stage's verdict, with typed details (workflows/stages/migration_barrier.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from coatflow.workflows.analysis.hops import migration_decision
from coatflow.workflows.schemas.stage import StageResult

STAGE = "migration_barrier"


class HopRow(BaseModel):
    """One computed hop in the verdict's table."""

    hop_label: int
    length: float = Field(description="Å")
    forward_barrier: float | None = Field(None, description="eV")
    reverse_barrier: float | None = Field(None, description="eV")
    barrier: float | None = Field(None, description="eV, the larger direction (what percolation uses)")
    status: Literal["converged", "unconverged", "inputs_written"] | None = None
    n_atoms: int | None = None
    max_force: float | None = Field(None, description="eV/Å, largest NEB force at the end")
    neb_steps: int | None = None
    wall_time: float | None = Field(None, description="s")


class SkippedHop(BaseModel):
    """A symmetry-distinct hop that was not computed, and why."""

    label: int
    length: float = Field(description="Å")
    reason: str


class PercolationOnset(BaseModel):
    """The barrier at which the open hops first reach a dimensionality."""

    barrier: float = Field(description="eV")
    dimensionality: Literal["1D", "2D", "3D"]
    hops: list[int] = Field(default_factory=list, description="hop labels open at that barrier")


class MigrationDetails(BaseModel):
    """What the migration verdict found besides E_m (empty when there was no migration result)."""

    dimensionality: Literal["0D", "1D", "2D", "3D"] | None = Field(
        None, description="of the network that percolates at E_m (0D: none)")
    limiting_hop: int | None = Field(None, description="the hop whose barrier is E_m")
    onsets: list[PercolationOnset] = Field(default_factory=list, description="the onset of each dimensionality")
    hops: list[HopRow] = Field(default_factory=list)
    skipped: list[SkippedHop] = Field(default_factory=list)
    unconverged: list[int] = Field(default_factory=list, description="labels of hops whose CI-NEB did not converge")
    e_m_all_hops: float | None = Field(None, description="eV, E_m counting unconverged hops too")
    settings: dict[str, Any] = Field(default_factory=dict)
    confirm_with_dft: list[int] = Field(
        default_factory=list, description="hops on the percolating path or within dft_margin of the threshold")


class MigrationBarrierResult(StageResult):
    """The migration_barrier verdict: E_m < migration_barrier_max."""

    stage: str = STAGE
    details: MigrationDetails = Field(default_factory=MigrationDetails)

    @classmethod
    def from_summary(cls, summary: dict | None, e_max: float, margin: float = 0.1, **base) -> MigrationBarrierResult:
        """The verdict from the stage document (``analysis.hops.summarize``; None when there is none).

        ``base``: the candidate's identity and where the verdict came from (material_id, formula, backend,
        task_uuids, structure, ...)."""
        d = migration_decision(summary, e_max, margin)
        return cls(**base, criterion=f"E_m < {e_max} eV", status=d["status"], value=d["value"], unit=d["unit"],
                   reason=d["reason"], details=MigrationDetails(**d["details"]))

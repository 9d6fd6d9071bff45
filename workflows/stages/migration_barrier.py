"""Stage 8, Li migration: the Li-vacancy barrier by climbing-image NEB over every symmetry-distinct hop."""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from pydantic import Field

from coatflow.workflows.stages.base import Backend, Stage


@dataclasses.dataclass
class MigrationBarrierStage(Stage):
    """Li migration barrier: lowest percolating Li-vacancy CI-NEB barrier (docs/migration.md)."""

    stage: ClassVar[str] = "migration_barrier"
    name: str = "migration barrier"
    migration_barrier_max: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False, description="eV")] = 0.7
    backend: Annotated[Backend, Field(description="CI-NEB: mlip (CHGNet) | gpaw | vasp (inputs written)")] = "mlip"
    hop_cutoff: Annotated[float, Field(gt=0, le=20, allow_inf_nan=False, description="Å, longest Li-Li hop")] = 4.0
    rel_cutoff: Annotated[float | None, Field(ge=1, le=10, allow_inf_nan=False,
                                              description="skip hops longer than this x the shortest (null: none)")] = 1.3
    min_size: Annotated[float, Field(gt=0, le=50, allow_inf_nan=False,
                                     description="Å, minimum perpendicular width of the vacancy supercell")] = 7.0
    max_atoms: Annotated[int, Field(ge=2, description="hops needing larger supercells are skipped")] = 160
    max_hops: Annotated[int, Field(ge=1, description="shortest symmetry-distinct hops computed")] = 4
    n_images: Annotated[int, Field(ge=1, le=50, description="intermediate NEB images (IDPP)")] = 3
    fmax: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False, description="eV/Å, CI-NEB and endpoints")] = 0.1
    steps: Annotated[int, Field(ge=1, description="CI-NEB step cap (then reported unconverged)")] = 150
    dft_margin: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False,
                                       description="eV, hops this close to the threshold are listed for DFT")] = 0.1

    @classmethod
    def note(cls, details: dict) -> str:
        return f" {details['dimensionality']}" if details.get("dimensionality") else ""

    def plan(self, planner, plan, upstream: str, verdict):
        from coatflow.workflows.migration import plan_migration_barrier  # TEMPORARY: moves here (recut step 3)

        return plan_migration_barrier(planner, plan, upstream, verdict)

"""Stage 8, Li migration: the Li-vacancy barrier by climbing-image NEB over every symmetry-distinct hop.

One job (``MigrationMaker.make``, makers/neb.py) enumerates the candidate's symmetry-distinct Li hops and
replaces itself at run time with one NEB job per hop plus ``migration_summary`` (the per-hop table and the
percolating barrier, ``analysis.hops.summarize``); the run-time jobs get the stage's labels from the
planner's dynamic metadata. ``migration_verdict`` decides E_m < ``migration_barrier_max``. The geometry
and percolation physics live in workflows/analysis/hops.py.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated, ClassVar

from jobflow import Maker, Response, job
from pydantic import Field
from pymatgen.core import Structure

from coatflow.workflows.analysis.hops import plan_hops, summarize
from coatflow.workflows.schemas import MigrationHopResult
from coatflow.workflows.schemas.migration import MigrationBarrierResult
from coatflow.workflows.stages.base import Backend, Stage

logger = logging.getLogger(__name__)


@job(name="migration summary")
def migration_summary(hops: list[MigrationHopResult], graph: dict, skipped: list, settings: dict) -> dict:
    """Percolating barrier and dimensionality from the per-hop results (images left out)."""
    return summarize([h.model_dump(exclude={"images"}) for h in hops], graph, skipped, settings)


@job(name="migration barrier verdict", output_schema=MigrationBarrierResult)
def migration_verdict(ident: dict, doc: dict | None, structure, e_max: float, backend: str, uuids: list,
                      margin: float = 0.1) -> Response:
    """E_m < e_max from the stage document (``analysis.hops.migration_decision``); a fail stops the children."""
    r = MigrationBarrierResult.from_summary(doc, e_max, margin, **ident, backend=backend, task_uuids=uuids,
                                            structure=structure)
    return Response(output=r, stop_children=r.status == "failed")


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

    def neb_maker(self, maker: Maker) -> Maker:
        """The backend's MigrationMaker with this stage's hop, supercell and NEB settings."""
        hop = maker.hop_maker
        if hasattr(hop, "fmax"):
            hop = dataclasses.replace(hop, n_images=self.n_images, fmax=self.fmax, steps=self.steps)
        else:
            hop = dataclasses.replace(hop, n_images=self.n_images)
        return dataclasses.replace(maker, hop_maker=hop, hop_cutoff=self.hop_cutoff, rel_cutoff=self.rel_cutoff,
                                   min_size=self.min_size, max_atoms=self.max_atoms, max_hops=self.max_hops)

    def calculators(self) -> list[tuple[str, str]]:
        return [("neb", self.backend)]

    def plan(self, planner, plan, upstream: str, verdict):
        """CI-NEB of every symmetry-distinct Li hop, then E_m < migration_barrier_max."""
        maker = self.neb_maker(planner.maker("neb", self.backend))
        mid = plan.candidate.material_id
        key = planner.calc_key(upstream, "migration", self.backend, maker)
        if planner.stored(key) is None and isinstance(verdict.structure, Structure):
            # structure known now: say how many NEB jobs this candidate will cost
            hops, _, skipped = plan_hops(verdict.structure, maker.ion, maker.hop_cutoff, maker.min_size,
                                         maker.max_atoms, maker.max_hops, maker.rel_cutoff)
            logger.warning("%s: migration_barrier plans %d NEB job(s) (%d hop(s) skipped)", mid, len(hops),
                           len(skipped))
        # a stage whose enumeration job ran but whose NEB jobs did not finish has no stored output: planned again
        doc, uuid = planner.add(plan, key, self.stage, "neb", self.backend,
                                lambda: maker.make(verdict.structure, mid, summary=migration_summary))
        vkey = planner.key(key, "verdict", self.migration_barrier_max, self.dft_margin)
        return planner.gate(plan, vkey, self.stage, self.backend,
                            lambda: migration_verdict(plan.ident, doc, verdict.structure, self.migration_barrier_max,
                                                      self.backend, [uuid], self.dft_margin))

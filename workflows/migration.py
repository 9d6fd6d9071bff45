"""The migration_barrier stage (the last of the funnel): plan the CI-NEB hops, summarize, decide.

* ``plan_migration_barrier``: the funnel planner. One job (``MigrationMaker.make``, makers/neb.py)
  enumerates the symmetry-distinct Li hops of the candidate and replaces itself at run time with one NEB
  job per hop plus ``migration_summary``; the run-time jobs get the stage's coatflow labels from the
  planner's dynamic metadata.
* ``migration_summary``: the stage document (per-hop table, percolating barrier, from
  ``analysis.hops.summarize``).
* ``migration_verdict``: E_m < ``thresholds.migration_barrier_max``, a ``MigrationBarrierResult``.

The geometry and percolation physics live in workflows/analysis/hops.py.
"""

from __future__ import annotations

import dataclasses
import logging

from jobflow import Response, job
from pymatgen.core import Structure

from coatflow.makers.registry import get_maker
from coatflow.workflows.analysis.hops import plan_hops, summarize
from coatflow.workflows.campaign import make_key, settings_of
from coatflow.workflows.schemas import MigrationHopResult
from coatflow.workflows.schemas.migration import STAGE, MigrationBarrierResult

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


def migration_maker(config):
    """The configured MigrationMaker (the ``migration_barrier`` section: backend, hops, supercells, NEB)."""
    m = config.migration_barrier
    maker = get_maker("neb", m.backend)
    hop = maker.hop_maker
    if hasattr(hop, "fmax"):
        hop = dataclasses.replace(hop, n_images=m.n_images, fmax=m.fmax, steps=m.steps)
    else:
        hop = dataclasses.replace(hop, n_images=m.n_images)
    return dataclasses.replace(maker, hop_maker=hop, hop_cutoff=m.hop_cutoff, rel_cutoff=m.rel_cutoff,
                               min_size=m.min_size, max_atoms=m.max_atoms, max_hops=m.max_hops)


def plan_migration_barrier(planner, plan, upstream_key: str, verdict):
    """Last funnel stage: CI-NEB of every symmetry-distinct Li hop, then E_m < migration_barrier_max."""
    section = planner.config.migration_barrier
    backend = section.backend
    maker = migration_maker(planner.config)
    mid = plan.candidate.material_id
    key = make_key(upstream_key, "migration", backend, settings_of(maker))
    if planner.stored(key) is None and isinstance(verdict.structure, Structure):
        # structure known now: say how many NEB jobs this candidate will cost
        hops, _, skipped = plan_hops(verdict.structure, maker.ion, maker.hop_cutoff, maker.min_size,
                                     maker.max_atoms, maker.max_hops, maker.rel_cutoff)
        logger.warning("%s: migration_barrier plans %d NEB job(s) (%d hop(s) skipped)", mid, len(hops), len(skipped))
    # a stage whose enumeration job ran but whose NEB jobs did not finish has no stored output: planned again
    doc, uuid = planner.add(plan, key, STAGE, "neb", backend,
                            lambda: maker.make(verdict.structure, mid, summary=migration_summary))
    e_max = section.migration_barrier_max
    vkey = make_key(key, "verdict", e_max)
    return planner.gate(plan, vkey, STAGE, backend,
                        lambda: migration_verdict(plan.ident, doc, verdict.structure, e_max, backend, [uuid],
                                                  section.dft_margin))

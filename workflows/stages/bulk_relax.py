"""Stage 2, bulk relaxation: the structure every later stage works on.

A candidate with a structure is relaxed once. A predicted candidate (a formula substituted into
prototypes) has each prototype relaxed, and the lowest energy per atom wins. A predicted candidate with no
prototype (an ``mp_snapshot`` formula that no structure type fits, or a formula no example-set prototype
matches) is "not computed: no prototype". Its funnel goes on only through the stages that need no structure
(the phase-diagram stages on a database scale, ``Stage.needs_structure``); the planner stops it at the
first stage that needs one.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar

from jobflow import Response, job
from pydantic import Field

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.prototypes import NO_PROTOTYPE, stoichiometry_type
from coatflow.workflows.phase_diagrams import relax_after
from coatflow.workflows.schemas.funnel import BulkRelaxDetails, BulkRelaxResult
from coatflow.workflows.stages.base import Backend, Stage, as_structure, not_computed, respond


def _get(doc: Any, *path: str):
    """Field of a task document (relaxation outputs of atomate2, GPAW or VASP makers)."""
    for key in path:
        if doc is None:
            return None
        doc = doc.get(key) if isinstance(doc, dict) else getattr(doc, key, None)
    return doc


def relax_summary(task_doc) -> dict:
    """structure, energy per atom and convergence of one relaxation's task document."""
    structure = as_structure(_get(task_doc, "output", "structure") or _get(task_doc, "structure"))
    energy = _get(task_doc, "output", "energy")
    return {"structure": structure, "energy_per_atom": None if energy is None else energy / len(structure),
            "converged": _get(task_doc, "is_force_converged") is not False}


@job(name="record bulk relaxation", output_schema=BulkRelaxResult)
def record_relaxation(ident: dict, task_doc, backend: str, relax_uuid: str) -> Response:
    r = relax_summary(task_doc)
    return respond(BulkRelaxResult(
        **ident, status="passed" if r["converged"] else "failed", value=r["energy_per_atom"], unit="eV/atom",
        criterion="forces converged", reason=None if r["converged"] else "relaxation did not converge",
        backend=backend, task_uuids=[relax_uuid],
        details=BulkRelaxDetails(volume=r["structure"].volume, nsites=len(r["structure"])), structure=r["structure"]))


@job(name="select lowest-energy polymorph", output_schema=BulkRelaxResult)
def select_polymorph(ident: dict, task_docs: list, prototype_ids: list[str], backend: str,
                     relax_uuids: list[str]) -> Response:
    """For a predicted candidate: keep the relaxed prototype substitution with the lowest energy."""
    summaries = [relax_summary(d) for d in task_docs]
    energies = {pid: r["energy_per_atom"] for pid, r in zip(prototype_ids, summaries)}
    ranked = sorted((r["energy_per_atom"], pid, i) for i, (pid, r) in enumerate(zip(prototype_ids, summaries))
                    if r["converged"])
    if not ranked:
        return respond(BulkRelaxResult(**ident, status="failed", reason="no prototype relaxation converged",
                                       backend=backend, task_uuids=relax_uuids,
                                       details=BulkRelaxDetails(prototype_energies=energies)))
    e, pid, i = ranked[0]
    r = summaries[i]
    return respond(BulkRelaxResult(
        **ident, status="passed", value=e, unit="eV/atom", criterion="forces converged; lowest-energy prototype",
        backend=backend, task_uuids=[relax_uuids[i]],
        details=BulkRelaxDetails(prototype=pid, prototype_energies=energies, volume=r["structure"].volume,
                                 nsites=len(r["structure"])),
        structure=r["structure"]))


@job(name="no prototype", output_schema=BulkRelaxResult)
def no_prototype(ident: dict) -> Response:
    """The verdict of a predicted candidate that no structure type fits: not computed, reason "no prototype"."""
    try:
        why = f"{NO_PROTOTYPE}: no structure type has the ratio {stoichiometry_type(ident['formula'])}"
    except AnalysisError:
        why = f"{NO_PROTOTYPE} for {ident['formula']}"
    return not_computed(BulkRelaxResult, ident, None, why, criterion="a structure type of the formula's ratio")


@dataclasses.dataclass
class BulkRelaxStage(Stage):
    """bulk relaxation: the structure every later stage works on (predicted formulas: lowest prototype)."""

    stage: ClassVar[str] = "bulk_relax"
    name: str = "bulk relax"
    backend: Annotated[Backend, Field(description="calculator: mlip (CHGNet, offline) | vasp (custodian) | gpaw")] \
        = "mlip"

    def calculators(self) -> list[tuple[str, str]]:
        return [("relax", self.backend)]

    def plan(self, planner, plan, upstream: str, verdict):
        """Relax; the relaxation's key becomes ``plan.structure_key``, from which later calculations derive."""
        maker = planner.maker("relax", self.backend)
        cand = plan.candidate
        if not cand.predicted:
            rkey = plan.structure_key = planner.calc_key(upstream, "relax", self.backend, maker)
            out, uuid = planner.add(plan, rkey, self.stage, "relax", self.backend, lambda: maker.make(verdict.structure))
            return planner.gate(plan, planner.key(rkey, "verdict"), self.stage, self.backend,
                                lambda: record_relaxation(plan.ident, out, self.backend, uuid))
        if not cand.prototypes:  # nothing to relax: the verdict says so; only formula-level stages follow
            plan.structureless = True
            return planner.gate(plan, planner.key(upstream, self.stage, NO_PROTOTYPE), self.stage, None,
                                lambda: no_prototype(plan.ident))
        # Prototype structures come through the filter verdict, so an excluded formula costs nothing; when
        # stages run between the two (the phase-diagram stages on a database scale), each relaxation also
        # waits for the last of them, and does not run if it failed.
        protos = plan.filter_verdict if plan.filter_verdict is not None else verdict

        def relax(pid):
            structure = protos.structures[pid]
            return maker.make(structure) if protos is verdict else relax_after(maker, verdict.structure, structure)

        outs, uuids, pids = [], [], []
        for pid, _ in cand.prototypes:
            rkey = planner.calc_key(upstream, "relax", self.backend, maker, pid)
            out, uuid = planner.add(plan, rkey, self.stage, "relax", self.backend, lambda pid=pid: relax(pid))
            outs.append(out)
            uuids.append(uuid)
            pids.append(pid)
        vkey = plan.structure_key = planner.calc_key(upstream, "polymorphs", self.backend, maker)
        return planner.gate(plan, vkey, self.stage, self.backend,
                            lambda: select_polymorph(plan.ident, outs, pids, self.backend, uuids))

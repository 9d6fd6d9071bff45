"""Plan and run the funnel: one jobflow Flow per candidate, skipping work that is already stored.

Every job carries ``metadata.coatflow.key``, a hash of (material, upstream key, task, backend,
settings). Before a job is added, the store is asked for that key; a completed job is not run
again and its stored output feeds the next stage instead. A stored failed verdict ends the plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, Job, JobStore, Maker, run_locally
from monty.json import MontyDecoder, jsanitize

from coatflow.makers.registry import get_maker
from coatflow.workflows import stages
from coatflow.workflows.candidates import Candidate
from coatflow.workflows.schemas import StageResult

logger = logging.getLogger(__name__)


def settings_of(maker: Maker) -> dict:
    d = jsanitize(maker.as_dict(), strict=False, allow_bson=False)
    d.pop("@version", None)
    return d


def make_key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class CandidatePlan:
    """The jobs still to run for one candidate, and the stored results already there."""

    candidate: Candidate
    jobs: list[Job] = field(default_factory=list)
    cached: dict[str, StageResult] = field(default_factory=dict)
    stopped_at: str | None = None

    @property
    def ident(self) -> dict:
        c = self.candidate
        return {"material_id": c.material_id, "formula": c.formula, "source": c.source, "predicted": c.predicted}


class FunnelPlanner:
    """Builds each candidate's remaining flow from the config and what the store already holds."""

    def __init__(self, config, job_store: JobStore):
        self.config = config
        self.store = job_store
        self.thresholds = config.thresholds.model_dump()

    # -- caching -------------------------------------------------------------------------------

    def stored(self, key: str):
        """(output, uuid) of the completed job with this key, or None."""
        doc = self.store.query_one({"metadata.coatflow.key": key}, properties=["output", "uuid"], load=True)
        return None if doc is None else (MontyDecoder().process_decoded(doc["output"]), doc["uuid"])

    def add(self, plan: CandidatePlan, key: str, stage: str, task: str, backend: str | None,
            factory: Callable[[], Job | Flow]):
        """(output, uuid): the stored output for ``key``, or a new job's output reference."""
        stored = self.stored(key)
        if stored is not None:
            return stored
        new = factory()
        meta = {"key": key, "material_id": plan.candidate.material_id, "stage": stage, "task": task,
                "backend": backend}
        for j in new.jobs if isinstance(new, Flow) else [new]:
            j.metadata = {**(j.metadata or {}), "coatflow": meta}
            j.name = f"{j.name} [{plan.candidate.material_id}]"
        plan.jobs.append(new)
        return new.output, new.uuid

    def gate(self, plan: CandidatePlan, key: str, stage: str, backend: str | None, factory: Callable[[], Job]):
        """Add a stage-verdict job; returns its output, or None when a stored verdict failed."""
        out, _ = self.add(plan, key, stage, "verdict", backend, factory)
        if isinstance(out, StageResult):
            plan.cached[stage] = out
            if not out.passed:
                plan.stopped_at = stage
                return None
        return out

    # -- stages --------------------------------------------------------------------------------

    def plan(self, cand: Candidate) -> CandidatePlan:
        plan = CandidatePlan(cand)
        root = make_key(cand.material_id, cand.structure.as_dict() if cand.structure else
                        [(pid, s.as_dict()) for pid, s in cand.prototypes])
        key = make_key(root, "database_filter", self.thresholds)
        verdict = self.gate(plan, key, "database_filter", None, lambda: stages.database_filter(
            plan.ident, cand.structure, dict(cand.prototypes), cand.mp_properties, self.thresholds))
        if verdict is None:
            return plan
        verdict = self.plan_relax(plan, key, verdict)
        for extra in STAGE_PLANNERS:
            if verdict is None:
                break
            verdict = extra(self, plan, key, verdict)
        return plan

    def plan_relax(self, plan: CandidatePlan, upstream: str, verdict):
        backend = self.config.backends.relax
        maker = get_maker("relax", backend)
        settings = settings_of(maker)
        cand = plan.candidate
        if not cand.predicted:
            rkey = make_key(upstream, "relax", backend, settings)
            out, uuid = self.add(plan, rkey, "bulk_relax", "relax", backend, lambda: maker.make(verdict.structure))
            return self.gate(plan, make_key(rkey, "verdict"), "bulk_relax", backend,
                             lambda: stages.record_relaxation(plan.ident, out, backend, uuid))
        # Prototype structures come through the filter verdict, so an excluded formula costs nothing.
        outs, uuids, pids = [], [], []
        for pid, _ in cand.prototypes:
            rkey = make_key(upstream, "relax", pid, backend, settings)
            out, uuid = self.add(plan, rkey, "bulk_relax", "relax", backend,
                                 lambda pid=pid: maker.make(verdict.structures[pid]))
            outs.append(out)
            uuids.append(uuid)
            pids.append(pid)
        vkey = make_key(upstream, "polymorphs", backend, settings)
        return self.gate(plan, vkey, "bulk_relax", backend,
                         lambda: stages.select_polymorph(plan.ident, outs, pids, backend, uuids))


#: Later stages register here: ``planner(FunnelPlanner, CandidatePlan, upstream_key, verdict) -> verdict | None``.
STAGE_PLANNERS: list[Callable] = []


@dataclass
class RunReport:
    candidates: int = 0
    jobs_run: int = 0
    jobs_failed: int = 0
    wall_time: float = 0.0
    errors: list[str] = field(default_factory=list)


class _ErrorCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage().splitlines()[0])


def run_plans(plans: list[CandidatePlan], job_store: JobStore, work_dir: Path,
              on_candidate: Callable[[CandidatePlan, int], None] | None = None) -> RunReport:
    """Run each candidate's remaining jobs locally, into the job store."""
    report = RunReport(candidates=len(plans))
    t0 = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        n_done = 0
        if plan.jobs:
            collector = _ErrorCollector()
            jf_logger = logging.getLogger("jobflow")
            jf_logger.addHandler(collector)
            try:
                responses = run_locally(Flow(plan.jobs, name=plan.candidate.material_id), store=job_store,
                                        create_folders=True, root_dir=str(work_dir), log=False)
            finally:
                jf_logger.removeHandler(collector)
            n_done = len(responses)
            report.jobs_run += n_done
            report.jobs_failed += len(collector.messages)
            report.errors += [f"{plan.candidate.material_id}: {m}" for m in collector.messages]
        if on_candidate:
            on_candidate(plan, n_done)
    report.wall_time = time.perf_counter() - t0
    return report


# Energy and elasticity stages (issue 3). li_adsorption's planner belongs between the window and
# interfacial_reactions, i.e. inserted before the last line below.
from coatflow.workflows.elastic import plan_shear_modulus  # noqa: E402
from coatflow.workflows.thermo_stages import (  # noqa: E402
    plan_interfacial_reactions, plan_phase_stability, plan_stability_window)

STAGE_PLANNERS += [plan_shear_modulus, plan_phase_stability, plan_stability_window]
STAGE_PLANNERS.append(plan_interfacial_reactions)

# Li migration barrier (issue 7): the last stage, always the last planner.
from coatflow.workflows.migration import plan_migration_barrier  # noqa: E402

STAGE_PLANNERS.append(plan_migration_barrier)

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jobflow import Flow, Job, JobStore, Maker, run_locally
from monty.json import MontyDecoder, jsanitize

from coatflow.makers.registry import get_maker
from coatflow.workflows import stages
from coatflow.workflows.candidates import Candidate
from coatflow.workflows.criteria import STAGES
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
    """The jobs still to run for one candidate."""

    candidate: Candidate
    jobs: list[Job] = field(default_factory=list)
    #: key of the computation that produced the structure later stages work on; computation keys
    #: derive from it (never from verdict keys, so a changed threshold re-runs only verdicts)
    structure_key: str | None = None
    #: stage -> key of the verdict this plan asks for: the builder shows exactly these verdicts
    verdict_keys: dict[str, str] = field(default_factory=dict)

    @property
    def ident(self) -> dict:
        c = self.candidate
        return {"material_id": c.material_id, "formula": c.formula, "source": c.source, "predicted": c.predicted}


class FunnelPlanner:
    """Builds each candidate's remaining flow from the config and what the store already holds.

    Lookups go through the store's index on ``metadata.coatflow.key`` (one indexed query per key, so
    a lookup costs the same at 10 and at 10,000 candidates); hits are remembered for the process,
    since a completed job document is never removed.
    """

    def __init__(self, config, job_store: JobStore, cache=None):
        self.config = config
        self.store = job_store
        self.cache = cache  # Materials Project entries and band gaps (thermo.entries: mp)
        self.thresholds = config.thresholds.model_dump()
        self._hits: dict[str, tuple] = {}

    # -- keys and stored work ------------------------------------------------------------------

    key = staticmethod(make_key)
    settings = staticmethod(settings_of)

    def _lookup(self, key: str):
        """(index, raw output, uuid) of the newest completed document with ``key``, or None."""
        docs = list(self.store.docs_store.query({"metadata.coatflow.key": key},
                                                properties=["output", "uuid", "index"], sort={"index": -1}, limit=1))
        return (docs[0]["index"], docs[0].get("output"), docs[0]["uuid"]) if docs else None

    def stored(self, key: str):
        """(output, uuid) of the completed job with this key, or None.

        A job that replaced itself at run time stores one document per index; the newest holds the output.
        Large ``data`` blobs (relaxation trajectories) are not loaded: no stage plans from them. They stay
        in the store, and a query with ``load=True`` gets them.
        """
        if key not in self._hits:
            hit = self._lookup(key)
            if hit is None or hit[1] is None:
                return None
            self._hits[key] = (MontyDecoder().process_decoded(_without_blobs(hit[1])), hit[2])
        return self._hits[key]

    def add(self, plan: CandidatePlan, key: str, stage: str, task: str, backend: str | None,
            factory: Callable[[], Job | Flow]):
        """(output, uuid): the stored output for ``key``, or a new job's output reference.

        Every job of a new Flow, including those it creates at run time, is labelled with the
        material, stage, task and backend; only the job that produces the output carries ``key``.
        """
        stored = self.stored(key)
        if stored is not None:
            return stored
        new = factory()
        label = {"material_id": plan.candidate.material_id, "stage": stage, "task": task, "backend": backend}
        new.update_metadata({"coatflow": label}, dynamic=True, callback_filter=_unlabelled)
        producer = _output_job(new)
        producer.metadata["coatflow"] = {**label, "key": key}
        for j in [new] if isinstance(new, Job) else [j for j, _ in new.iterflow()]:
            j.name = f"{j.name} [{plan.candidate.material_id}]"
        plan.jobs.append(new)
        return new.output, producer.uuid

    def gate(self, plan: CandidatePlan, key: str, stage: str, backend: str | None, factory: Callable[[], Job]):
        """Add a stage-verdict job; returns its output, or None when a stored verdict failed."""
        out, _ = self.add(plan, key, stage, "verdict", backend, factory)
        plan.verdict_keys[stage] = key
        if isinstance(out, StageResult) and not out.passed:
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
        if verdict is None or self.config.run.stop_after == "database_filter":
            return plan
        verdict = self.plan_relax(plan, root, verdict)
        for extra in stage_planners(self.config.run.stop_after):
            if verdict is None:
                break
            verdict = extra(self, plan, plan.structure_key, verdict)
        return plan

    def plan_relax(self, plan: CandidatePlan, upstream: str, verdict):
        backend = self.config.backends.relax
        maker = get_maker("relax", backend)
        settings = settings_of(maker)
        cand = plan.candidate
        if not cand.predicted:
            rkey = plan.structure_key = make_key(upstream, "relax", backend, settings)
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
        vkey = plan.structure_key = make_key(upstream, "polymorphs", backend, settings)
        return self.gate(plan, vkey, "bulk_relax", backend,
                         lambda: stages.select_polymorph(plan.ident, outs, pids, backend, uuids))


def _without_blobs(obj):
    """A copy of a stored output with each unloaded blob reference replaced by None."""
    if isinstance(obj, dict):
        if "blob_uuid" in obj and "store" in obj:
            return None
        return {k: _without_blobs(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without_blobs(v) for v in obj]
    return obj


def _unlabelled(job: Job | Flow) -> bool:
    """Jobs made at run time keep the coatflow labels their own stage gave them."""
    return "coatflow" not in (job.metadata or {})


def producer_keys(plan: CandidatePlan) -> list[str]:
    """Keys of the jobs a plan would run (what a parallel worker claims before running them)."""
    keys = []
    for new in plan.jobs:
        for j in [new] if isinstance(new, Job) else [j for j, _ in new.iterflow()]:
            key = (j.metadata or {}).get("coatflow", {}).get("key")
            if key:
                keys.append(key)
    return keys


def _output_job(new: Job | Flow) -> Job:
    """The job whose output is the output of ``new`` (the last job when that is ambiguous)."""
    if isinstance(new, Job):
        return new
    jobs = [j for j, _ in new.iterflow()]
    uuid = getattr(new.output, "uuid", None)
    return next((j for j in jobs if j.uuid == uuid), jobs[-1])


def stage_planners(stop_after: str | None = None) -> list[Callable]:
    """Planners of the stages after bulk_relax, in ``STAGES`` order, up to ``stop_after``.

    Each is ``plan_x(planner, plan, upstream_key, verdict) -> verdict | None``.
    """
    from coatflow.workflows.adsorption import plan_li_adsorption
    from coatflow.workflows.elastic import plan_shear_modulus
    from coatflow.workflows.migration import plan_migration_barrier
    from coatflow.workflows.thermo_stages import (
        plan_interfacial_reactions, plan_phase_stability, plan_stability_window)

    by_stage = {
        "shear_modulus": plan_shear_modulus,
        "phase_stability": plan_phase_stability,
        "stability_window": plan_stability_window,
        "li_adsorption": plan_li_adsorption,
        "interfacial_reactions": plan_interfacial_reactions,
        "migration_barrier": plan_migration_barrier,
    }
    order = list(STAGES[: STAGES.index(stop_after) + 1] if stop_after else STAGES)
    return [by_stage[s] for s in order if s in by_stage]


@dataclass
class RunReport:
    candidates: int = 0
    jobs_run: int = 0
    jobs_failed: int = 0
    wall_time: float = 0.0
    errors: list[str] = field(default_factory=list)


class _FailureCollector(logging.Handler):
    """Collects the jobs that raised: jobflow's local manager reports them at INFO level."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record):
        msg = record.getMessage()
        if " failed with exception:" in msg:
            name = msg.split(" failed with exception:")[0]
            last = [line for line in msg.strip().splitlines() if line.strip()][-1]
            self.messages.append(f"{name}: {last.strip()}")


def run_plans(plans: Iterable[CandidatePlan], job_store: JobStore, work_dir: Path,
              on_candidate: Callable[[CandidatePlan, int], None] | None = None) -> RunReport:
    """Run each plan's jobs locally, into the job store.

    ``plans`` may be lazy: a generator that plans each candidate just before it runs reuses the
    work stored by the candidates before it (shared competing phases, the Li reference).
    """
    report = RunReport()
    t0 = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        cand = plan.candidate
        report.candidates += 1
        n_done = 0
        if plan.jobs:
            collector = _FailureCollector()
            jf_logger = logging.getLogger("jobflow")
            saved = jf_logger.level, jf_logger.propagate
            jf_logger.addHandler(collector)
            jf_logger.setLevel(logging.INFO)
            jf_logger.propagate = False
            try:
                responses = run_locally(Flow(plan.jobs, name=cand.material_id), store=job_store,
                                        create_folders=True, root_dir=str(work_dir), log=False)
            finally:
                jf_logger.removeHandler(collector)
                jf_logger.setLevel(saved[0])
                jf_logger.propagate = saved[1]
            n_done = len(responses)
            report.jobs_run += n_done
            report.jobs_failed += len(collector.messages)
            report.errors += [f"{cand.material_id}: {m}" for m in collector.messages]
        if on_candidate:
            on_candidate(plan, n_done)
    report.wall_time = time.perf_counter() - t0
    return report

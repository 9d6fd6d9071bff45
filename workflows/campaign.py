"""Plan and run the funnel: one jobflow Flow per candidate, skipping work that is already stored.

Every job carries ``metadata.coatflow.key``, a hash of (material, upstream key, task, backend,
settings). Before a job is added, the store is asked for that key; a completed job is not run
again and its stored output feeds the next stage instead. A stored failed verdict ends the plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobflow import Flow, Job, JobStore, Maker, run_locally
from monty.json import MontyDecoder, jsanitize

from coatflow.makers.registry import get_maker
from coatflow.workflows.candidates import Candidate
from coatflow.workflows.schemas import StageResult

logger = logging.getLogger(__name__)


#: The fields of each Maker class that change its numbers; a job key depends on these and on nothing
#: else of the Maker, so a library upgrade that adds a field (a new output option, say) reruns nothing.
#: Looked up along the class hierarchy; nested Makers contribute their own settings.
PHYSICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "ForceFieldRelaxMaker": ("force_field_name", "calculator_meta", "relax_cell", "fix_symmetry", "symprec", "steps",
                             "relax_kwargs", "optimizer_kwargs", "calculator_kwargs"),
    "ForceFieldStaticMaker": ("force_field_name", "calculator_meta", "calculator_kwargs"),
    "ElasticMaker": ("bulk_relax_maker", "elastic_relax_maker", "generate_elastic_deformations_kwargs",
                     "fit_elastic_tensor_kwargs", "order", "sym_reduce", "symprec", "symmetrize"),
    "BaseVaspMaker": ("input_set_generator",),
    "VaspInputGenerator": ("user_incar_settings", "user_kpoints_settings", "user_potcar_functional",
                           "user_potcar_settings", "auto_ispin", "auto_kspacing", "use_structure_charge"),
}


def physical_settings(obj):
    """What of a Maker (or input-set generator) changes its numbers: ``PHYSICAL_FIELDS`` of its class,
    or the Maker's own ``key_settings()``; other Makers of coatflow's own: every field but ``name``."""
    if isinstance(obj, (list, tuple)):
        return [physical_settings(o) for o in obj]
    if isinstance(obj, dict):
        return {k: physical_settings(v) for k, v in obj.items()}
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return jsanitize(obj, strict=False, allow_bson=False)
    if hasattr(obj, "key_settings"):
        return {"@class": type(obj).__name__, **physical_settings(obj.key_settings())}
    names = next((PHYSICAL_FIELDS[c.__name__] for c in type(obj).__mro__ if c.__name__ in PHYSICAL_FIELDS), None)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(obj) if f.name != "name")
    return {"@class": type(obj).__name__,
            **{n: physical_settings(getattr(obj, n)) for n in names if hasattr(obj, n)}}


def settings_of(maker: Maker) -> dict:
    """The settings a job key depends on (``physical_settings``)."""
    return physical_settings(maker)


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
    #: bulk relax found no structure ("no prototype"): only stages that need none are planned
    structureless: bool = False
    #: the database filter's verdict: it holds a predicted candidate's prototype structures
    filter_verdict: Any = None

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
        self._hits: dict[str, tuple] = {}
        self._makers: dict[tuple[str, str], Maker] = {}
        self.stages = config.stages()  # the configured Stage Makers, in funnel order

    # -- keys and stored work ------------------------------------------------------------------

    key = staticmethod(make_key)
    settings = staticmethod(settings_of)

    def maker(self, task: str, backend: str) -> Maker:
        """The calculator Maker of ``task`` on ``backend`` (makers/registry.py), one per planner."""
        if (task, backend) not in self._makers:
            self._makers[(task, backend)] = get_maker(task, backend)
        return self._makers[(task, backend)]

    def calc_key(self, upstream: str, task: str, backend: str, maker: Maker, *extra) -> str:
        """Key of a calculation: its input's key, the task, the backend and the Maker's physical settings."""
        return make_key(upstream, task, backend, settings_of(maker), *extra)

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
        material, stage, task and backend, and ``flow``: the key of the Flow it belongs to, from which the
        sub-jobs it creates at run time derive their own keys (makers/restarts.py ``sub_key``). Only the job
        that produces the output carries ``key``.
        """
        stored = self.stored(key)
        if stored is not None:
            return stored
        return self._new(plan, key, stage, task, backend, factory)

    def _new(self, plan: CandidatePlan, key: str, stage: str, task: str, backend: str | None,
             factory: Callable[[], Job | Flow]):
        """Add the job(s) ``factory`` makes, labelled, to the plan; (output reference, producer uuid)."""
        new = factory()
        label = {"material_id": plan.candidate.material_id, "stage": stage, "task": task, "backend": backend,
                 "flow": key}
        new.update_metadata({"coatflow": label}, dynamic=True, callback_filter=_unlabelled)
        producer = _output_job(new)
        producer.metadata["coatflow"] = {**label, "key": key}
        for j in leaf_jobs(new):
            j.name = f"{j.name} [{plan.candidate.material_id}]"
        plan.jobs.append(new)
        return new.output, producer.uuid

    def gate(self, plan: CandidatePlan, key: str, stage: str, backend: str | None, factory: Callable[[], Job]):
        """Add a stage-verdict job; returns its output, or None when a stored verdict failed.

        A stored verdict comes back as a ``StoredVerdict``: its status is read from the document, and the
        structure it hands on is decoded only if a later stage has work to plan from it.
        """
        plan.verdict_keys[stage] = key
        if key in self._hits:
            out = self._hits[key][0]
        else:
            hit = self._lookup(key)
            if hit is not None and isinstance(hit[1], dict):
                return None if hit[1].get("status") == "failed" else StoredVerdict(hit[1])
            out, _ = self._new(plan, key, stage, "verdict", backend, factory)
        if isinstance(out, StageResult) and not out.passed:
            return None
        return out

    # -- stages --------------------------------------------------------------------------------

    def plan(self, cand: Candidate) -> CandidatePlan:
        """The candidate's remaining jobs, stage by stage, up to ``run.stop_after``, a stored failure, or (a
        candidate with no structure) the first stage that needs a structure."""
        plan = CandidatePlan(cand)
        root = cand.key
        upstream, verdict = root, None
        for stage in self.stages:
            if plan.structureless and stage.needs_structure(self.config):
                break
            verdict = stage.plan(self, plan, upstream, verdict)
            if verdict is None or stage.stage == self.config.run.stop_after:
                break
            upstream = plan.structure_key or root
        return plan


class StoredVerdict:
    """A stored verdict document, decoded into its ``StageResult`` on the first attribute asked for."""

    __slots__ = ("raw", "_obj")

    def __init__(self, raw: dict):
        self.raw = raw
        self._obj = None

    @property
    def status(self) -> str:
        return self.raw.get("status")

    @property
    def passed(self) -> bool:
        return self.raw.get("status") != "failed"

    def decoded(self) -> StageResult:
        if self._obj is None:
            self._obj = MontyDecoder().process_decoded(_without_blobs(self.raw))
        return self._obj

    def __getattr__(self, name):
        return getattr(self.decoded(), name)


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


def leaf_jobs(obj):
    """Every Job in a Job, Flow or list of them."""
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from leaf_jobs(o)
    elif isinstance(obj, Flow):
        yield from leaf_jobs(obj.jobs)
    else:
        yield obj


def producer_keys(plan: CandidatePlan) -> list[str]:
    """Keys of the jobs a plan would run (what a parallel worker claims before running them)."""
    return [k for j in leaf_jobs(plan.jobs) if (k := (j.metadata or {}).get("coatflow", {}).get("key"))]


def _output_job(new: Job | Flow) -> Job:
    """The job whose output is the output of ``new`` (the last job when that is ambiguous)."""
    if isinstance(new, Job):
        return new
    jobs = [j for j, _ in new.iterflow()]
    uuid = getattr(new.output, "uuid", None)
    return next((j for j in jobs if j.uuid == uuid), jobs[-1])


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


def _verdicts_only(plan: CandidatePlan) -> bool:
    """Whether every job of the plan is a verdict (no calculation, nothing another candidate could share)."""
    return all((j.metadata or {}).get("coatflow", {}).get("task") == "verdict" for j in leaf_jobs(plan.jobs))


def _run_flow(jobs: list, name: str, job_store: JobStore, work_dir: Path, folders: bool) -> tuple[int, list[str]]:
    """Run ``jobs`` with jobflow's local manager; (jobs run, "job name: last error line" of each failure)."""
    collector = _FailureCollector()
    jf_logger = logging.getLogger("jobflow")
    saved = jf_logger.level, jf_logger.propagate
    jf_logger.addHandler(collector)
    jf_logger.setLevel(logging.INFO)
    jf_logger.propagate = False
    try:
        responses = run_locally(Flow(jobs, name=name), store=job_store, create_folders=folders,
                                root_dir=str(work_dir), log=False)
    finally:
        jf_logger.removeHandler(collector)
        jf_logger.setLevel(saved[0])
        jf_logger.propagate = saved[1]
    return len(responses), collector.messages


def run_plans(plans: Iterable[CandidatePlan], job_store: JobStore, work_dir: Path,
              on_candidate: Callable[[CandidatePlan, int], None] | None = None, batch: int = 500) -> RunReport:
    """Run each plan's jobs locally, into the job store.

    ``plans`` may be lazy: a generator that plans each candidate just before it runs reuses the
    work stored by the candidates before it (shared competing phases, the Li reference). So a plan
    with a calculation runs on its own; plans of verdicts only (a rerun after a threshold changed,
    say) share nothing and run together, up to ``batch`` candidates per ``run_locally``.
    """
    report = RunReport()
    t0 = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    pending: list[CandidatePlan] = []

    def run(group: list[CandidatePlan], folders: bool) -> None:
        if not group:
            return
        name = group[0].candidate.material_id if len(group) == 1 else f"{len(group)} candidates"
        n_done, failures = _run_flow([j for p in group for j in p.jobs], name, job_store, work_dir, folders)
        report.jobs_run += n_done
        report.jobs_failed += len(failures)
        report.errors += [f"{_owner(group, m)}: {m}" for m in failures]
        for p in group:
            if on_candidate:
                on_candidate(p, n_done if len(group) == 1 else len(p.jobs))
        group.clear()

    for plan in plans:
        report.candidates += 1
        if not plan.jobs:
            if on_candidate:
                on_candidate(plan, 0)
        elif _verdicts_only(plan):
            pending.append(plan)
            if len(pending) >= batch:
                run(pending, folders=False)
        else:
            run(pending, folders=False)
            run([plan], folders=True)
    run(pending, folders=False)
    report.wall_time = time.perf_counter() - t0
    return report


def _owner(group: list[CandidatePlan], message: str) -> str:
    """The material a failed job belongs to (job names end with ' [material_id]')."""
    for p in group:
        if f"[{p.candidate.material_id}]" in message:
            return p.candidate.material_id
    return group[0].candidate.material_id

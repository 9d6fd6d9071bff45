"""Run a campaign on this machine: candidates -> flows -> store -> builder.

``coatflow run`` holds the store's lock for the whole run (one writer per store), runs independent
candidates in ``run.workers`` processes, and keeps workers apart with key claims: a worker claims the
keys of the jobs its plan would run; if another worker holds one of them (a competing phase both
need, the shared Li reference), it waits for that worker and plans again, finding the work stored.

Before anything is written (lock, store, job folders) the inputs are checked: backends, candidates, side
programme formulas, and, with ``thermo.entries: mp``, that ``MP_API_KEY`` is set or every chemical system
the thermodynamic stages need is cached. ``coatflow build`` refuses a store that does not exist.
"""

from __future__ import annotations

import itertools
import logging
import os
import warnings
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context

from pymatgen.core import Composition, Element

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import CampaignStores, StoreLock, embedded_file, require_store
from coatflow.makers.registry import check_backend
from coatflow.workflows.builders import CandidateBuilder, PotentialMapBuilder
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, RunReport, leaf_jobs, producer_keys, run_plans
from coatflow.workflows.candidates import Candidate, load_candidates
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.potential_maps import plan_cathode_voltages, with_map_ingredients
from coatflow.workflows.reference_data import MP_API_KEY_ENV
from coatflow.workflows.surfaces import bulk_structure, plan_surfaces

logger = logging.getLogger(__name__)

@dataclass
class CampaignPlan:
    """What a campaign asks for: the funnel candidates and the side programmes' plans."""

    config: CampaignConfig
    planner: FunnelPlanner
    candidates: list[Candidate]
    side_plans: list[CandidatePlan]

    @property
    def surface_ids(self) -> list[str]:
        return [p.candidate.material_id for p in self.side_plans if p.candidate.source == "ip_materials"]

    def planned_verdicts(self) -> list[dict]:
        """Per funnel candidate, the verdict keys its plan asks for (planning only; nothing runs)."""
        rows = []
        for cand in self.candidates:
            plan = self.planner.plan(cand)
            rows.append({"ident": plan.ident, "verdict_keys": dict(plan.verdict_keys)})
        return rows


def _build(builder) -> int:
    items = list(builder.get_items())
    docs = [builder.process_item(i) for i in items]
    builder.update_targets(docs)
    if hasattr(builder, "finalize"):
        builder.finalize()
    return getattr(builder, "updated", len(docs))


def build_candidates(stores: CampaignStores, campaign: CampaignPlan | None = None) -> int:
    """Rebuild the candidates collection for the current config; returns how many documents changed."""
    campaign = campaign or plan_campaign_inputs(stores.config, stores)
    return _build(CandidateBuilder(stores.jobs.docs_store, stores.candidates, campaign.planned_verdicts(),
                                   campaign.surface_ids))


def build_potential_maps(stores: CampaignStores) -> int:
    """Run the PotentialMapBuilder once; returns how many stacks it (re)built."""
    settings = stores.config.potential_maps.model_dump(exclude={"stacks", "states_of_charge", "voltage_backend"})
    return _build(PotentialMapBuilder(stores.jobs.docs_store, stores.maps, settings))


def _mp_systems(config: CampaignConfig, candidates: list[Candidate]) -> set[str]:
    """The chemical systems (``Li-O-Ti``) whose MP entries the configured thermodynamic stages read."""
    stages = {s.stage: s for s in config.stages()}  # the programme's funnel
    names = list(stages)
    run = names[:names.index(config.run.stop_after) + 1] if config.run.stop_after in names else names
    partners = {el for f in config.interfacial_reactions.electrolytes for el in Composition(f).elements}
    cathodes = stages["cathode_compatibility"].partner_elements() if "cathode_compatibility" in run else None
    systems = set()
    for cand in candidates:
        own = frozenset(Composition(cand.formula).elements)
        if {"phase_stability", "stability_window"} & set(run):
            systems.add(own)
        if "interfacial_reactions" in run:
            systems.add(frozenset({*own, Element("Li"), *partners}))
        if cathodes:
            systems.add(frozenset({*own, Element("Li"), *cathodes}))
    return {"-".join(sorted(el.symbol for el in s)) for s in systems}


def require_mp_entries(config: CampaignConfig, candidates: list[Candidate], stores: CampaignStores) -> None:
    """``thermo.entries: mp`` without ``MP_API_KEY``: a one-line error unless every chemical system the
    thermodynamic stages need is in the cache (else each of those verdicts would be 'not computed')."""
    if config.thermo.entries != "mp" or os.environ.get(MP_API_KEY_ENV):
        return
    systems = _mp_systems(config, candidates)
    cached: set[str] = set()
    if systems and (config.store.kind == "mongodb" or embedded_file(config).exists()):
        stores.cache.connect()  # the same key as reference_data.mp_entries
        keys = [f"mp-entries:{s}" for s in systems]
        cached = {d["key"].split(":", 1)[1] for d in stores.cache.query({"key": {"$in": keys}}, properties=["key"])}
    missing = sorted(systems - cached)
    if missing:
        more = f" and {len(missing) - 3} more chemical systems" if len(missing) > 3 else ""
        raise CoatflowError(f"thermo.entries is 'mp' but {MP_API_KEY_ENV} is not set and no MP entries are cached "
                            f"for {', '.join(missing[:3])}{more}; export {MP_API_KEY_ENV}=<your key>, or set "
                            "thermo.entries: local")


def plan_campaign_inputs(config: CampaignConfig, stores: CampaignStores, lock: StoreLock | None = None) -> CampaignPlan:
    """Check backends, load candidates and plan the side programmes; connects ``stores``.

    Backends are checked and candidates loaded before anything is written; then ``lock`` is taken
    (its file lives in the store folder) and the stores are connected.
    """
    for stage in config.stages():  # a backend that cannot run here fails before any job starts
        for task, backend in stage.calculators():
            check_backend(task, backend)
    if config.candidates.source == "materials_project":
        stores.cache.connect()
    candidates = load_candidates(config, stores.cache)
    require_mp_entries(config, candidates, stores)
    side = with_map_ingredients(config)  # the funnel's config plus the surfaces and defects of map stacks
    for formula in {*side.slab.ip_materials, *side.defects.materials}:  # a bad formula writes nothing
        bulk_structure(formula)
    if lock is not None:
        lock.acquire()
    stores.connect()
    side_plans: list[CandidatePlan] = []
    if side.slab.ip_materials:  # ionization potentials / work functions (workflows/surfaces.py)
        side_plans += plan_surfaces(side, stores.jobs)
    if side.defects.materials:  # charged defects and E_F(mu_Li) (workflows/defects.py)
        from coatflow.workflows.defects import plan_defects  # GPAW and atomate2's ASE jobs: only when asked for

        side_plans += plan_defects(side, stores.jobs)
    if side.potential_maps.stacks:  # cathode voltages (workflows/potential_maps.py)
        side_plans += plan_cathode_voltages(side, stores.jobs)
    return CampaignPlan(config, FunnelPlanner(config, stores.jobs, stores.cache), candidates, side_plans)


def plan_campaign(config: CampaignConfig, stores: CampaignStores, lazy: bool = False) -> tuple[Iterable, int]:
    """(plans, how many) for every candidate and requested side calculation; connects ``stores``.

    With ``lazy``, each candidate is planned just before it is used, so ``run_plans`` reuses what the
    previous ones stored.
    """
    c = plan_campaign_inputs(config, stores)
    plans: Iterable[CandidatePlan] = itertools.chain((c.planner.plan(x) for x in c.candidates), c.side_plans)
    return (plans if lazy else list(plans)), len(c.candidates) + len(c.side_plans)


def _stages_of(plan: CandidatePlan) -> str:
    stages = sorted({j.metadata["coatflow"]["stage"] for j in leaf_jobs(plan.jobs)})
    return ", ".join(stages) if stages else "stored"


# -- parallel workers ------------------------------------------------------------------------------

_WORKER: dict = {}


def _worker_init(config: CampaignConfig) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: two 1-thread workers beat one 2-thread run
    warnings.filterwarnings("ignore")  # as in the parent CLI: library warnings would flood the progress display
    stores = CampaignStores(config).connect()
    _WORKER.update(config=config, stores=stores, planner=FunnelPlanner(config, stores.jobs, stores.cache),
                   owner=_owner())


def _claimed_plan(planner: FunnelPlanner, stores: CampaignStores, owner: str, cand: Candidate
                  ) -> tuple[CandidatePlan, float]:
    """(plan, seconds waited): plan ``cand`` and claim its keys; while another process holds some of them
    (a parallel worker, or an orphaned worker of a killed run), wait and plan again, finding its work stored."""
    waited = 0.0
    while True:
        plan = planner.plan(cand)
        if not stores.claims.claim(producer_keys(plan), owner):
            return plan, waited
        time.sleep(0.5)
        waited += 0.5


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_run(cand: Candidate) -> tuple[str, str, RunReport]:
    """Plan, claim and run one candidate in a worker process."""
    config, stores, owner = _WORKER["config"], _WORKER["stores"], _WORKER["owner"]
    plan, waited = _claimed_plan(_WORKER["planner"], stores, owner, cand)
    try:
        label = _stages_of(plan) + (f" (waited {waited:.0f} s for shared work)" if waited >= 1 else "")
        report = run_plans([plan], stores.jobs, config.resolve(config.run.work_dir))
    finally:
        stores.claims.release(owner)
    return cand.material_id, label, report


def _merge(total: RunReport, part: RunReport) -> None:
    total.candidates += part.candidates
    total.jobs_run += part.jobs_run
    total.jobs_failed += part.jobs_failed
    total.errors += part.errors


def _size(cand: Candidate) -> int:
    """Sites of the candidate's cell (its largest prototype when predicted): its calculations' cost grows with it."""
    cells = [cand.structure] if cand.structure is not None else [s for _, s in cand.prototypes]
    return max((len(s) for s in cells), default=0)


def run_parallel(campaign: CampaignPlan, workers: int,
                 on_candidate: Callable[[str, str, int], None] | None = None) -> RunReport:
    """Run the funnel candidates in ``workers`` processes (side programmes after, in this process).

    Largest cells first (longest-processing-time order): a large candidate that reaches the NEB stage last
    would leave the other workers idle while it runs alone.
    """
    config = campaign.config
    report = RunReport()
    t0 = time.perf_counter()
    ctx = get_context("spawn")  # torch and GPAW are not fork-safe
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(config,)) as pool:
        pending = {pool.submit(_worker_run, c) for c in sorted(campaign.candidates, key=_size, reverse=True)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                mid, label, part = fut.result()
                _merge(report, part)
                if on_candidate:
                    on_candidate(mid, label, part.jobs_run)
    side = run_plans(campaign.side_plans, campaign.planner.store, config.resolve(config.run.work_dir),
                     _callback(on_candidate))
    _merge(report, side)
    report.wall_time = time.perf_counter() - t0
    return report


def _callback(on_candidate):
    if on_candidate is None:
        return None
    return lambda plan, n: on_candidate(plan.candidate.material_id, _stages_of(plan), n)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_campaign(config: CampaignConfig, on_start: Callable[[int], None] | None = None,
                 on_candidate: Callable[[str, str, int], None] | None = None) -> tuple[RunReport, int]:
    """Plan every candidate, run what is not yet stored, and rebuild the candidates collection.

    The store's lock is held throughout: a second ``coatflow run`` on the same store fails at once.
    """
    stores, lock = CampaignStores(config), StoreLock(config, command="coatflow run")
    try:
        campaign = plan_campaign_inputs(config, stores, lock)
        if on_start:
            on_start(len(campaign.candidates) + len(campaign.side_plans))
        workers = min(config.run.workers or default_workers(), max(1, len(campaign.candidates)))
        if workers > 1:
            report = run_parallel(campaign, workers, on_candidate)
        else:  # claimed as planned, released at the end: an orphaned worker of a killed run may still be busy
            plans = itertools.chain((_claimed_plan(campaign.planner, stores, _owner(), c)[0]
                                     for c in campaign.candidates), campaign.side_plans)
            try:
                report = run_plans(plans, stores.jobs, config.resolve(config.run.work_dir), _callback(on_candidate))
            finally:
                stores.claims.release(_owner())
        campaign.planner = FunnelPlanner(config, stores.jobs, stores.cache)  # plan again on what is stored now
        updated = build_candidates(stores, campaign)
        build_potential_maps(stores)
    finally:
        lock.release()
        stores.close()
    return report, updated


def build_all(config: CampaignConfig) -> tuple[int, int]:
    """``coatflow build``: (candidate documents changed, potential-map stacks rebuilt); the store must exist."""
    require_store(config)
    stores, lock = CampaignStores(config), StoreLock(config, command="coatflow build")
    try:
        campaign = plan_campaign_inputs(config, stores, lock)
        return build_candidates(stores, campaign), build_potential_maps(stores)
    finally:
        lock.release()
        stores.close()

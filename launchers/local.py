"""Run a campaign on this machine: candidates -> flows -> store -> builder."""

from __future__ import annotations

from collections.abc import Callable

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import CampaignStores
from coatflow.makers.registry import get_maker
from coatflow.workflows.builders import CandidateBuilder
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, RunReport, run_plans
from coatflow.workflows.candidates import load_candidates

#: Tasks the funnel runs, and the config field naming each one's backend.
FUNNEL_TASKS = ("relax", "elastic", "neb")


def build_candidates(stores: CampaignStores) -> int:
    """Run the CandidateBuilder once; returns how many materials it updated."""
    builder = CandidateBuilder(stores.jobs.docs_store, stores.candidates)
    items = list(builder.get_items())
    docs = [builder.process_item(i) for i in items]
    builder.update_targets(docs)
    return len(docs)


def run_campaign(config: CampaignConfig, on_plan: Callable[[list[CandidatePlan]], None] | None = None,
                 on_candidate: Callable[[CandidatePlan, int], None] | None = None) -> tuple[RunReport, int]:
    """Plan every candidate, run what is not yet stored, and rebuild the candidates collection."""
    for task in FUNNEL_TASKS:  # fail before any job starts
        get_maker(task, getattr(config.backends, task))
    stores = CampaignStores(config)
    try:
        stores.cache.connect() if config.candidates.source == "materials_project" else None
        candidates = load_candidates(config, stores.cache)
        stores.connect()
        planner = FunnelPlanner(config, stores.jobs)
        plans = [planner.plan(c) for c in candidates]
        if config.slab.ip_materials:  # ionization potentials / work functions (workflows/surfaces.py)
            from coatflow.workflows.surfaces import plan_surfaces

            plans += plan_surfaces(config, stores.jobs)
        if config.defects.materials:  # charged defects and E_F(mu_Li) (workflows/defects.py)
            from coatflow.workflows.defects import plan_defects

            plans += plan_defects(config, stores.jobs)
        if on_plan:
            on_plan(plans)
        report = run_plans(plans, stores.jobs, config.resolve(config.run.work_dir), on_candidate)
        updated = build_candidates(stores)
    finally:
        stores.close()
    return report, updated


def plan_campaign(config: CampaignConfig, stores: CampaignStores) -> list[CandidatePlan]:
    """Every candidate's remaining plan (``coatflow submit``): the same checks, loading and planning as
    ``run_campaign``, all at once; connects ``stores``."""
    for task in FUNNEL_TASKS:  # fail before anything is submitted
        get_maker(task, getattr(config.backends, task))
    if config.candidates.source == "materials_project":
        stores.cache.connect()
    candidates = load_candidates(config, stores.cache)
    stores.connect()
    planner = FunnelPlanner(config, stores.jobs)
    plans = [planner.plan(c) for c in candidates]
    if config.slab.ip_materials:
        from coatflow.workflows.surfaces import plan_surfaces

        plans += plan_surfaces(config, stores.jobs)
    if config.defects.materials:
        from coatflow.workflows.defects import plan_defects

        plans += plan_defects(config, stores.jobs)
    return plans

"""Run a campaign on this machine: candidates -> flows -> store -> builder."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import CampaignStores
from coatflow.makers.registry import get_maker
from coatflow.workflows.builders import CandidateBuilder, PotentialMapBuilder
from coatflow.workflows.campaign import CandidatePlan, FunnelPlanner, RunReport, run_plans
from coatflow.workflows.candidates import load_candidates
from coatflow.workflows.potential_maps import plan_cathode_voltages, with_map_ingredients
from coatflow.workflows.surfaces import bulk_structure, plan_surfaces

#: Tasks the funnel runs, and the config field naming each one's backend.
FUNNEL_TASKS = ("relax", "elastic", "adsorption", "neb", "band_gap")


def _build(builder) -> int:
    items = list(builder.get_items())
    docs = [builder.process_item(i) for i in items]
    builder.update_targets(docs)
    return len(docs)


def build_candidates(stores: CampaignStores) -> int:
    """Run the CandidateBuilder once; returns how many materials it updated."""
    return _build(CandidateBuilder(stores.jobs.docs_store, stores.candidates))


def build_potential_maps(stores: CampaignStores) -> int:
    """Run the PotentialMapBuilder once; returns how many stacks it (re)built."""
    settings = stores.config.potential_maps.model_dump(exclude={"stacks", "states_of_charge", "voltage_backend"})
    return _build(PotentialMapBuilder(stores.jobs.docs_store, stores.maps, settings))


def plan_campaign(config: CampaignConfig, stores: CampaignStores, lazy: bool = False) -> tuple[Iterable, int]:
    """(plans, how many) for every candidate and requested side calculation; connects ``stores``.

    Backends are checked and candidates loaded before anything is written. With ``lazy``, each
    candidate is planned just before it is used, so ``run_plans`` reuses what the previous ones stored.
    """
    for task in FUNNEL_TASKS:  # fail before any job starts
        get_maker(task, getattr(config.backends, task))
    if config.candidates.source == "materials_project":
        stores.cache.connect()
    candidates = load_candidates(config, stores.cache)
    side = with_map_ingredients(config)  # the funnel's config plus the surfaces and defects of map stacks
    for formula in {*side.slab.ip_materials, *side.defects.materials}:  # a bad formula writes nothing
        bulk_structure(formula)
    stores.connect()
    planner = FunnelPlanner(config, stores.jobs, stores.cache)
    plans: Iterable[CandidatePlan] = (planner.plan(c) for c in candidates)
    n_plans = len(candidates)
    if side.slab.ip_materials:  # ionization potentials / work functions (workflows/surfaces.py)
        surface_plans = plan_surfaces(side, stores.jobs)
        plans, n_plans = itertools.chain(plans, surface_plans), n_plans + len(surface_plans)
    if side.defects.materials:  # charged defects and E_F(mu_Li) (workflows/defects.py)
        from coatflow.workflows.defects import plan_defects

        defect_plans = plan_defects(side, stores.jobs)
        plans, n_plans = itertools.chain(plans, defect_plans), n_plans + len(defect_plans)
    if side.potential_maps.stacks:  # cathode voltages (workflows/potential_maps.py)
        voltage_plans = plan_cathode_voltages(side, stores.jobs)
        plans, n_plans = itertools.chain(plans, voltage_plans), n_plans + len(voltage_plans)
    return (plans if lazy else list(plans)), n_plans


def run_campaign(config: CampaignConfig, on_start: Callable[[int], None] | None = None,
                 on_candidate: Callable[[CandidatePlan, int], None] | None = None) -> tuple[RunReport, int]:
    """Plan every candidate, run what is not yet stored, and rebuild the candidates collection."""
    stores = CampaignStores(config)
    try:
        plans, n_plans = plan_campaign(config, stores, lazy=True)
        if on_start:
            on_start(n_plans)
        report = run_plans(plans, stores.jobs, config.resolve(config.run.work_dir), on_candidate)
        updated = build_candidates(stores)
        build_potential_maps(stores)
    finally:
        stores.close()
    return report, updated

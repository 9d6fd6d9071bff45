"""The li_adsorption funnel stage: plan the calculations, decide whether DFT confirms, give the verdict.

E_ads = E(slab + Li) - E(slab) - mu_Li, with mu_Li the energy per atom of relaxed bcc Li on the same
calculator. The physics (slabs, sites, outcome checks, the pass/fail rule) is in
``coatflow.workflows.analysis.slabs`` and ``.adsorption_sites``; the calculations are the jobs of the
adsorption Maker (``coatflow.makers.adsorption``, imported through the registry when the stage is planned:
it brings CHGNet and atomate2).
"""

from __future__ import annotations

import dataclasses

from jobflow import Response, job
from pymatgen.core import Structure

from coatflow.makers.registry import backend_problems, get_maker
from coatflow.workflows.analysis.adsorption_sites import adsorption_decision
from coatflow.workflows.campaign import make_key, settings_of
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.schemas import LiAdsorptionDoc
from coatflow.workflows.schemas.adsorption import LiAdsorptionResult


def dft_status(maker) -> dict:
    """Whether the adsorption ``maker``'s DFT confirmation runs: 'pending' (will run) or 'not_run' with the reason.

    The dict goes into the stage's job keys: its wording must stay as it is.
    """
    requested = maker.requested_dft()
    if requested["status"] != "pending":
        return requested
    backend = maker.dft_backend
    missing = backend_problems(backend)
    try:
        get_maker("static", backend)
    except CoatflowError:
        if not missing:
            return {"status": "not_run", "backend": backend, "reason": f"no ('static', '{backend}') maker registered"}
    if missing:
        return {"status": "not_run", "backend": backend, "reason": f"backend '{backend}' missing {'; '.join(missing)}"}
    return requested


@job(name="li adsorption verdict", output_schema=LiAdsorptionResult)
def adsorption_verdict(ident: dict, doc: LiAdsorptionDoc, bulk: Structure, e_ads_max: float,
                       uuids: list[str]) -> Response:
    """Pass when the lowest physical E_ads (DFT when it confirmed sites, else ML) is at most ``e_ads_max`` eV."""
    which = "dft" if doc.dft.get("status") == "done" else "ml"
    decision = adsorption_decision({s.index: getattr(s, f"e_ads_{which}") for s in doc.sites},
                                   {s.index: s.flags for s in doc.sites}, e_ads_max, doc.reason)
    result = LiAdsorptionResult.from_adsorption(
        ident, doc, status=decision.status, value=decision.value, site=decision.site, reason=decision.reason,
        e_ads_max=e_ads_max, structure=bulk, task_uuids=uuids)
    return Response(output=result, stop_children=not result.passed)


def plan_li_adsorption(planner, plan, upstream_key: str, verdict):
    """Plan the li_adsorption stage: bcc Li reference, surface choice, site relaxations, DFT, verdict."""
    cfg = planner.config
    a = cfg.adsorption
    backend = cfg.backends.adsorption
    maker = dataclasses.replace(get_maker("adsorption", backend), top_k=a.top_k, dft_backend=a.dft_backend,
                                layers=a.layers, min_vacuum=a.vacuum, min_lw=a.min_lw, max_index=a.max_index,
                                max_atoms=a.max_atoms, max_surfaces=a.max_surfaces, max_sites=a.max_sites,
                                fmax=a.fmax, steps=a.steps)
    settings = settings_of(maker)
    relax_settings = settings_of(get_maker("relax", cfg.backends.relax))
    base = make_key(upstream_key, "li_adsorption", cfg.backends.relax, relax_settings, backend, settings)
    # the bcc Li reference depends only on the calculator: shared by every candidate
    ref, ref_uuid = planner.add(plan, make_key("bcc_li_reference", settings_of(maker.li_relax_maker)),
                                "li_adsorption", "li_reference", backend,
                                maker.reference_job)
    surf, surf_uuid = planner.add(plan, make_key(base, "surface"), "li_adsorption", "adsorption_surface", backend,
                                  lambda: maker.surface_job(verdict.structure))
    dft = dft_status(maker)
    doc, uuid = planner.add(plan, make_key(base, "sites", dft), "li_adsorption", "adsorption", backend,
                            lambda: maker.sites_job(surf, ref, dft))
    uuids = [ref_uuid, surf_uuid, uuid]
    if dft["status"] == "pending":
        dkey = make_key(base, "dft", maker.dft_backend, maker.top_k)
        stored = planner.stored(dkey)
        if stored is None:
            doc, uuid = planner.add(plan, dkey, "li_adsorption", "adsorption_dft", maker.dft_backend,
                                    lambda: maker.dft_job(doc))
        else:
            doc, uuid = stored
        uuids.append(uuid)
    vkey = make_key(base, "verdict", dft, planner.thresholds["e_ads_max"])
    return planner.gate(plan, vkey, "li_adsorption", backend,
                        lambda: adsorption_verdict(plan.ident, doc, verdict.structure,
                                                   planner.thresholds["e_ads_max"], uuids))

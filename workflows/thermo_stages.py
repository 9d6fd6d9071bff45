"""Funnel stages built on workflows/thermo.py: phase_stability, stability_window, interfacial_reactions.

Energies come from one scale only: with the ``mlip`` relax backend, CHGNet relaxes the candidate and
the bundled competing phases of its chemical system (data/competing_phases.json.gz); with ``vasp``,
Materials Project entries (MP_API_KEY, cached in the ``cache`` store) are used.
"""

from __future__ import annotations

import gzip
import json
from functools import cache

from jobflow import Flow, Response, job
from pymatgen.core import Composition, Structure

from coatflow.makers.registry import get_maker
from coatflow.workflows import thermo
from coatflow.workflows.schemas import StageResult

LOCAL_SCALE = "CHGNet+MP2020"


@cache
def competing_phases() -> dict[str, dict]:
    with gzip.open(thermo._data_path("competing_phases.json.gz").open("rb"), "rt") as f:
        return json.load(f)["phases"]


def phases_for(elements) -> dict[str, dict]:
    els = {str(e) for e in elements}
    return {pid: d for pid, d in competing_phases().items()
            if {sp["element"] for s in d["sites"] for sp in s["species"]} <= els}


@job(name="pass structure")
def pass_structure(_after, structure):
    """Makes a competing-phase relaxation wait for (and stop with) the candidate's previous stage."""
    return structure


def _entries(cand_doc, phase_docs: dict) -> tuple:
    def entry(doc, eid):
        s = Structure.from_dict(doc["output"]["structure"]) if isinstance(doc, dict) else doc.output.structure
        e = doc["output"]["energy"] if isinstance(doc, dict) else doc.output.energy
        return thermo.mp2020_entry(s.composition, e, LOCAL_SCALE, entry_id=eid)
    cand = entry(cand_doc, "candidate")
    return cand, [entry(d, pid) for pid, d in phase_docs.items()]


def _missing(cand, entries) -> list[str]:
    return thermo.covers(entries, cand.composition.elements)


def _result(ident, stage, **kw) -> Response:
    r = StageResult(**ident, stage=stage, **kw)
    return Response(output=r, stop_children=not r.passed)


@job(name="phase stability verdict")
def phase_stability_verdict(ident, cand_doc, phase_docs, structure, e_max, uuids):
    cand, entries = _entries(cand_doc, phase_docs)
    if miss := _missing(cand, entries):
        return _result(ident, "phase_stability", status="not_computed", structure=structure, backend="mlip",
                       reason=f"not computed: no elemental reference for {', '.join(miss)} in the local phase set")
    ehull, decomp = thermo.e_above_hull(cand, entries)
    ok = ehull <= e_max
    return _result(ident, "phase_stability", status="passed" if ok else "failed", value=round(1000 * ehull, 1),
                   unit="meV/atom", criterion=f"E_hull <= {1000 * e_max:.0f} meV/atom", backend="mlip",
                   reason=None if ok else f"E_hull = {1000 * ehull:.0f} meV/atom", task_uuids=uuids,
                   structure=structure,
                   details={"energy_scale": LOCAL_SCALE, "decomposition": decomp,
                            "competing_phases": sorted(phase_docs),
                            "formation_from_precursors": thermo.formation_from_precursors(cand, entries)})


@job(name="stability window verdict")
def stability_window_verdict(ident, cand_doc, phase_docs, structure, red_max, ox_min):
    cand, entries = _entries(cand_doc, phase_docs)
    if miss := _missing(cand, [*entries, cand]):
        return _result(ident, "stability_window", status="not_computed", structure=structure,
                       reason=f"not computed: no elemental reference for {', '.join(miss)}")
    w = thermo.stability_window(cand, entries)
    if w["status"] != "computed":
        return _result(ident, "stability_window", status="not_computed", reason=w["reason"], details=w,
                       structure=structure)
    ok = w["reduction_limit"] < red_max and w["oxidation_limit"] > ox_min
    return _result(ident, "stability_window", status="passed" if ok else "failed", value=w["oxidation_limit"] -
                   w["reduction_limit"], unit="V", criterion=f"reduction < {red_max} V and oxidation > {ox_min} V",
                   reason=None if ok else f"window {w['reduction_limit']:.2f}-{w['oxidation_limit']:.2f} V",
                   details={**w, "energy_scale": LOCAL_SCALE}, structure=structure, backend="mlip")


@job(name="interfacial reactions verdict")
def interfacial_verdict(ident, cand_doc, phase_docs, structure, gap_min):
    cand, entries = _entries(cand_doc, phase_docs)
    pool = [*entries, cand]
    formula = cand.composition.reduced_formula
    have = {e.composition.reduced_formula for e in pool}
    pairs = {}
    for other in ("Li", *thermo.ELECTROLYTES):
        f = Composition(other).reduced_formula
        if f not in have:
            pairs[f"{formula} | {f}"] = {"status": "not_computed",
                                         "reason": f"not computed: no {f} entry on the {LOCAL_SCALE} scale"}
            continue
        pairs[f"{formula} | {f}"] = thermo.interfacial_reaction(formula, other, pool, {}, gap_min)
    for el in thermo.ELECTROLYTES:  # what the coating prevents
        f = Composition(el).reduced_formula
        pairs[f"Li | {f}"] = (thermo.interfacial_reaction("Li", el, pool, {}, gap_min) if f in have else
                              {"status": "not_computed", "reason": f"not computed: no {f} entry"})
    done = {k: v for k, v in pairs.items() if v["status"] == "computed" and not k.startswith("Li |")}
    classes = {p: c for v in done.values() for p, c in v["product_class"].items()}
    bad = sorted(p for p, c in classes.items() if c == "conducting")
    unknown = sorted(p for p, c in classes.items() if c == "unknown")
    worst = min((v["reaction_energy"] for v in done.values()), default=None)
    details = {"pairs": pairs, "band_gap_source": "elemental metals are conductors; no offline band gaps "
               "for compounds (MP band gaps need MP_API_KEY)"}
    if not done:
        return _result(ident, "interfacial_reactions", status="not_computed", details=details, structure=structure,
                       reason="not computed: no coating/partner pair has entries on one energy scale")
    if bad:
        status, reason = "failed", f"conducting products: {', '.join(bad)}"
    elif unknown:
        status, reason = "not_computed", f"not computed: band gap unknown for {', '.join(unknown)}"
    else:
        status, reason = "passed", None
    return _result(ident, "interfacial_reactions", status=status, value=worst, unit="eV/atom", reason=reason,
                   criterion=f"no product with gap < {gap_min} eV", details=details, structure=structure)


# --- planners ---------------------------------------------------------------------------------------


def _local_inputs(planner, plan, upstream, verdict):
    """(candidate relax output, {phase id: relax output}, uuids) on the relax backend, once per plan."""
    if getattr(plan, "_thermo_inputs", None) is not None:
        return plan._thermo_inputs
    from coatflow.workflows.campaign import make_key, settings_of

    backend = planner.config.backends.relax
    maker = get_maker("relax", backend)
    settings = settings_of(maker)
    cand_out, cand_uuid = planner.add(plan, make_key(upstream, "thermo-relax", backend, settings), "phase_stability",
                                      "relax", backend, lambda: maker.make(verdict.structure))
    outs, uuids = {}, [cand_uuid]
    elements = Composition(plan.candidate.formula).elements
    for pid, sd in phases_for(elements).items():
        m = maker
        if sd.get("molecule"):  # a dimer in a box: relax atoms, not the box
            from dataclasses import replace
            m = replace(maker, relax_cell=False)

        def factory(sd=sd, m=m):
            g = pass_structure(verdict.structure, Structure.from_dict(sd))
            r = m.make(g.output)
            return Flow([g, r], output=r.output)
        out, uuid = planner.add(plan, make_key("competing", pid, backend, settings_of(m)), "phase_stability",
                                "relax", backend, factory)
        outs[pid], _ = out, uuids.append(uuid)
    plan._thermo_inputs = (cand_out, outs, uuids)
    return plan._thermo_inputs


def _key(upstream, stage, planner):
    from coatflow.workflows.campaign import make_key

    return make_key(upstream, stage, planner.config.backends.relax, planner.thresholds)


def plan_phase_stability(planner, plan, upstream, verdict):
    cand, phases, uuids = _local_inputs(planner, plan, upstream, verdict)
    t = planner.thresholds
    return planner.gate(plan, _key(upstream, "phase_stability", planner), "phase_stability", "mlip",
                        lambda: phase_stability_verdict(plan.ident, cand, phases, verdict.structure,
                                                        t["e_hull_max"], uuids))


def plan_stability_window(planner, plan, upstream, verdict):
    cand, phases, _ = _local_inputs(planner, plan, upstream, verdict)
    t = planner.thresholds
    return planner.gate(plan, _key(upstream, "stability_window", planner), "stability_window", "mlip",
                        lambda: stability_window_verdict(plan.ident, cand, phases, verdict.structure,
                                                         t["reduction_limit_max"], t["oxidation_limit_min"]))


def plan_interfacial_reactions(planner, plan, upstream, verdict):
    cand, phases, _ = _local_inputs(planner, plan, upstream, verdict)
    return planner.gate(plan, _key(upstream, "interfacial_reactions", planner), "interfacial_reactions", "mlip",
                        lambda: interfacial_verdict(plan.ident, cand, phases, verdict.structure,
                                                    planner.thresholds["insulator_gap_min"]))

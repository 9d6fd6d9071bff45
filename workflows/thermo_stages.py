"""Funnel stages built on workflows/analysis/thermo.py: phase_stability, stability_window, interfacial_reactions.

Energies come from one scale only (``thermo.entries``): ``local`` relaxes the candidate and the
bundled competing phases of its chemical system (data/competing_phases.json.gz) on ``backends.relax``;
``mp`` uses Materials Project MP2020 entries (MP_API_KEY, cached in the ``cache`` store).
"""

from __future__ import annotations

from dataclasses import replace

from jobflow import Flow, Response, job
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

from coatflow.makers.registry import get_maker
from coatflow.workflows import reference_data
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import thermo
from coatflow.workflows.campaign import make_key, settings_of
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.reference_data import competing_phases, phases_for  # noqa: F401 - imported from here too
from coatflow.workflows.schemas.thermo import (
    FormationFromPrecursors, InterfacialReactions, InterfacialReactionsResult, PairReaction, PhaseStabilityDetails,
    PhaseStabilityResult, ProductGap, RelaxedEnergy, StabilityWindowResult)
from coatflow.workflows.schemas import StageResult

LOCAL_SCALE = "CHGNet+MP2020"


@job(name="pass structure")
def pass_structure(_after, structure):
    """Makes a competing-phase relaxation wait for (and stop with) the candidate's previous stage."""
    return structure


def local_scale(backend: str) -> str:
    return {"mlip": LOCAL_SCALE}.get(backend, f"{backend.upper()}+MP2020")


def _entries(cand_doc, phase_docs: dict, source: dict | None = None) -> tuple:
    """(candidate entry, competing entries) on one scale.

    ``source`` is {"kind": "local", "backend": ...} (default: CHGNet relaxations of the bundled phases) or
    {"kind": "mp", "entries": [...], "material_id": ...} (cached MP2020 entries; the candidate is MP's own
    entry of that material, or its VASP relaxation with MP2020 corrections). Raises CoatflowError when
    the candidate has no energy on that scale.
    """
    source = source or {"kind": "local", "backend": "mlip"}
    if source["kind"] == "mp":
        return _mp_entries(cand_doc, source)
    scale = local_scale(source["backend"])

    def entry(doc, eid):
        r = RelaxedEnergy.from_task_doc(doc)
        return thermo.mp2020_entry(r.structure.composition, r.energy, scale, entry_id=eid)
    return entry(cand_doc, "candidate"), [entry(d, pid) for pid, d in phase_docs.items()]


def _mp_entries(cand_doc, source: dict) -> tuple:
    if source.get("error"):
        raise CoatflowError(source["error"])
    entries = reference_data.decode_entries(source["entries"])
    own = [e for e in entries if e.data.get("material_id") == source.get("material_id")]
    if own:  # the candidate is an MP material: its own MP entry, so E_hull is MP's
        cand = own[0].copy()
        cand.entry_id = "candidate"
        return cand, [e for e in entries if e is not own[0]]
    if source.get("backend") == "vasp" and cand_doc is not None:
        raw = cand_doc.get("entry") if isinstance(cand_doc, dict) else getattr(cand_doc, "entry", None)
        raw = reference_data.decode_entries([raw])[0] if isinstance(raw, dict) else raw
        cand = MaterialsProject2020Compatibility().process_entry(raw, on_error="ignore") if raw else None
        if cand is not None:
            cand.entry_id, cand.data["energy_scale"] = "candidate", thermo.MP_SCALE
            return cand, entries
    raise CoatflowError(f"no MP2020-scale energy for the candidate: it is not a Materials Project material and "
                        f"was relaxed with '{source.get('backend')}' (thermo.entries: mp needs backends.relax: vasp)")


def _respond(result: StageResult) -> Response:
    return Response(output=result, stop_children=not result.passed)


def _not_computed(cls, ident, structure, reason: str, **kw) -> Response:
    return _respond(cls(**ident, status="not_computed", structure=structure, reason=reason, **kw))


@job(name="phase stability verdict", output_schema=PhaseStabilityResult)
def phase_stability_verdict(ident, cand_doc, phase_docs, structure, e_max, uuids, source=None):
    try:
        cand, entries = _entries(cand_doc, phase_docs, source)
    except (CoatflowError, AnalysisError) as exc:
        return _not_computed(PhaseStabilityResult, ident, structure, str(exc))
    scale = thermo.scale_of(cand)
    if miss := thermo.covers(entries, cand.composition.elements):
        return _not_computed(PhaseStabilityResult, ident, structure,
                             f"no elemental reference for {', '.join(miss)} on the {scale} scale")
    ehull, decomp = thermo.e_above_hull(cand, entries)
    try:
        formation = FormationFromPrecursors(status="computed",
                                            precursors=thermo.formation_from_precursors(cand, entries))
    except AnalysisError as exc:
        formation = FormationFromPrecursors(status="not_computed", reason=str(exc))
    details = PhaseStabilityDetails(energy_scale=scale, decomposition=decomp,
                                    competing_phases=sorted(phase_docs) or len(entries),
                                    formation_from_precursors=formation)
    return _respond(PhaseStabilityResult.from_hull(ident, ehull, e_max, details, structure=structure,
                                                   backend=_backend(source), task_uuids=uuids))


@job(name="stability window verdict", output_schema=StabilityWindowResult)
def stability_window_verdict(ident, cand_doc, phase_docs, structure, red_max, ox_min, source=None):
    try:
        cand, entries = _entries(cand_doc, phase_docs, source)
        window = thermo.stability_window(cand, entries)
    except (CoatflowError, AnalysisError) as exc:
        return _not_computed(StabilityWindowResult, ident, structure, str(exc))
    return _respond(StabilityWindowResult.from_window(ident, window, red_max, ox_min, energy_scale=thermo.scale_of(cand),
                                                      structure=structure, backend=_backend(source)))


def _backend(source) -> str:
    return "materials_project" if source and source["kind"] == "mp" else (source or {}).get("backend", "mlip")


def _pair(a: str, b: str, pool, gaps: dict[str, ProductGap], gap_min: float) -> PairReaction:
    """The reaction of ``a`` and ``b`` on the entries of their chemical system: one small phase diagram per pair."""
    entries = thermo.in_chemsys(pool, {*Composition(a).elements, *Composition(b).elements})
    numbers = {f: g.band_gap for f, g in gaps.items()}
    try:
        return PairReaction.from_reaction(thermo.interfacial_reaction(a, b, entries, numbers, gap_min), gaps)
    except AnalysisError as exc:
        return PairReaction.not_computed(str(exc))


def _pairs(cand, pool, partners, gaps: dict[str, ProductGap], gap_min: float) -> dict[str, PairReaction]:
    """The candidate against Li and each partner, and Li against each partner (what the coating prevents)."""
    formula = cand.composition.reduced_formula
    have = {e.composition.reduced_formula for e in pool}
    pairs = {}
    for a, others in ((formula, ("Li", *partners)), ("Li", partners)):
        for other in others:
            f = Composition(other).reduced_formula
            pairs[f"{a} | {other}"] = (_pair(a, other, pool, gaps, gap_min) if f in have else
                                       PairReaction.not_computed(f"no {f} entry on the {thermo.scale_of(cand)} scale"))
    return pairs


def _unknown_products(pairs: dict[str, PairReaction]) -> set[str]:
    """Compound products of the coating's pairs that have no band gap yet."""
    return {p for k, v in pairs.items() if v.status == "computed" and not k.startswith("Li |")
            for p, c in v.product_class.items() if c == "unknown"}


@job(name="interfacial reactions", output_schema=InterfacialReactions)
def interfacial_reactions(cand_doc, phase_docs, partners, gap_min, known_gaps, gap_jobs=None, source=None,
                          _after=None):
    """Reaction of the candidate with Li and each partner, and the band gap of every product.

    ``_after`` (the previous verdict's structure) makes this job a child of that verdict, so a candidate
    that failed the window never pays for band-gap jobs.

    ``known_gaps`` maps formulas to ProductGaps or band_gap job outputs (shipped data, or gaps this campaign
    stored). ``gap_jobs`` is (maker, {phase id: job key}, labels): products still without a gap get one job
    each, then this job runs again with their outputs and without ``gap_jobs``.
    """
    gaps = {f: ProductGap.from_calc(g) for f, g in known_gaps.items()}
    try:
        cand, entries = _entries(cand_doc, phase_docs, source)
    except (CoatflowError, AnalysisError) as exc:
        return InterfacialReactions(error=str(exc))
    pool = [*entries, cand]
    pairs = _pairs(cand, pool, partners, gaps, gap_min)
    unknown = _unknown_products(pairs) - set(gaps)
    if unknown and gap_jobs:
        maker, keys, labels = gap_jobs
        best = thermo.ground_states(pool)
        jobs, new = [], {}
        for f in sorted(unknown):
            pid = best[f].entry_id
            if pid not in keys:  # the candidate itself: its gap comes from the database filter
                continue
            j = maker.make(RelaxedEnergy.from_task_doc(phase_docs[pid]).structure)
            j.name = f"{j.name} {f}"
            j.update_metadata({"coatflow": {**labels, "task": "band_gap", "key": keys[pid]}})
            jobs.append(j)
            new[f] = j.output
        if jobs:
            again = interfacial_reactions(cand_doc, phase_docs, partners, gap_min, {**gaps, **new}, source=source)
            return Response(replace=Flow([*jobs, again], output=again.output))
    used = {p for v in pairs.values() if v.status == "computed" for p in v.products}
    return InterfacialReactions(pairs=pairs, band_gaps={f: g for f, g in gaps.items() if f in used})


@job(name="interfacial reactions verdict", output_schema=InterfacialReactionsResult)
def interfacial_verdict(ident, reactions, structure, gap_min):
    result = InterfacialReactionsResult.from_reactions(ident, InterfacialReactions.model_validate(reactions), gap_min,
                                                       structure=structure)
    return _respond(result)


# --- planners ---------------------------------------------------------------------------------------


def _inputs(planner, plan, upstream, verdict, elements=None):
    """(candidate relax output, {phase id: relax output}, uuids, entry source) for one stage.

    ``thermo.entries: local``: the relax backend relaxes the candidate and the bundled phases of
    ``elements`` (default: the candidate's chemical system), each added to a plan once.
    ``thermo.entries: mp``: cached Materials Project entries; only a VASP candidate is relaxed again.
    """
    backend = planner.config.backends.relax
    maker = get_maker("relax", backend)
    elements = elements or Composition(plan.candidate.formula).elements
    memo = plan.__dict__.setdefault("_thermo_memo", {})
    mp = planner.config.thermo.entries == "mp"
    if "candidate" not in memo:
        memo["candidate"] = (None, None) if mp and backend != "vasp" else planner.add(
            plan, make_key(upstream, "thermo-relax", backend, settings_of(maker)), "phase_stability", "relax",
            backend, lambda: maker.make(verdict.structure))
    if mp:
        return memo["candidate"][0], {}, [u for u in [memo["candidate"][1]] if u], mp_source(planner, plan, elements)
    outs, uuids = {}, [memo["candidate"][1]]
    for pid, sd in phases_for(elements).items():
        if pid not in memo:
            m = replace(maker, relax_cell=False) if sd.get("molecule") else maker  # a dimer in a box

            def factory(sd=sd, m=m):
                g = pass_structure(verdict.structure, Structure.from_dict(sd))
                r = m.make(g.output)
                return Flow([g, r], output=r.output)
            memo[pid] = planner.add(plan, phase_key(pid, backend, m), "phase_stability", "relax", backend, factory)
        outs[pid] = memo[pid][0]
        uuids.append(memo[pid][1])
    return memo["candidate"][0], outs, uuids, {"kind": "local", "backend": backend}


def mp_source(planner, plan, elements) -> dict:
    """MP2020 entries of ``elements`` from the cache (or mp-api), or the reason they are missing."""
    src = {"kind": "mp", "backend": planner.config.backends.relax, "material_id": plan.candidate.material_id}
    try:
        entries = reference_data.mp_entries(elements, planner.cache)
    except CoatflowError as exc:
        return {**src, "error": str(exc)}
    return {**src, "entries": [e.as_dict() for e in entries]}


def phase_key(pid: str, backend: str, maker) -> str:
    """Job key of a competing phase's relaxation: shared by every candidate and campaign."""
    return make_key("competing", pid, backend, settings_of(maker))


def _key(upstream, stage, planner, *extra):
    """A verdict's key: a verdict left 'not computed' for missing MP entries is redone once they are there."""
    return make_key(upstream, stage, planner.config.backends.relax, planner.config.thermo.entries,
                    planner.thresholds, *extra)


def _entries_state(source: dict):
    return source.get("error") or len(source.get("entries", ()))


def plan_phase_stability(planner, plan, upstream, verdict):
    cand, phases, uuids, source = _inputs(planner, plan, upstream, verdict)
    t = planner.thresholds
    return planner.gate(plan, _key(upstream, "phase_stability", planner, sorted(phases), _entries_state(source)), "phase_stability",
                        source["backend"], lambda: phase_stability_verdict(
                            plan.ident, cand, phases, verdict.structure, t["e_hull_max"], uuids, source))


def plan_stability_window(planner, plan, upstream, verdict):
    cand, phases, _, source = _inputs(planner, plan, upstream, verdict)
    t = planner.thresholds
    return planner.gate(plan, _key(upstream, "stability_window", planner, sorted(phases), _entries_state(source)), "stability_window",
                        source["backend"], lambda: stability_window_verdict(
                            plan.ident, cand, phases, verdict.structure, t["reduction_limit_max"],
                            t["oxidation_limit_min"], source))


def _known_gaps(planner, source, elements, keys) -> dict[str, ProductGap]:
    """Band gaps known before the stage runs: shipped Alexandria data, MP (mp kind), gaps stored by key.

    Phases with an open 4f shell get no computed gap (``thermo.OPEN_4F``): their gap stays unknown, with why.
    """
    known = {f: ProductGap(band_gap=g, source="Alexandria PBE (shipped)")
             for f, g in reference_data.alexandria_band_gaps().items()}
    if source["kind"] == "mp" and "entries" in source:
        best = thermo.ground_states(reference_data.decode_entries(source["entries"]))
        ids = {e.data.get("material_id"): f for f, e in best.items() if e.data.get("material_id")}
        for mid, gap in reference_data.mp_band_gaps(ids, planner.cache).items():
            known[ids[mid]] = ProductGap(band_gap=gap, source=f"Materials Project ({mid})")
    for pid, key in keys.items():
        formula = Structure.from_dict(phases_for(elements)[pid]).composition.reduced_formula
        if thermo.has_open_4f(formula):
            known[formula] = ProductGap(reason=thermo.OPEN_4F_NOTE)
        elif (stored := planner.stored(key)) is not None:
            known[formula] = ProductGap.from_calc(stored[0])
    return known


def plan_interfacial_reactions(planner, plan, upstream, verdict):
    """Reactions with Li and the configured electrolytes, on the union of their chemical systems.

    Product band gaps: shipped Alexandria PBE gaps, MP gaps (mp entries), gaps this campaign stored,
    and one ``backends.band_gap`` job per remaining product with a structure (shared by key).
    """
    partners = planner.config.interfacial.electrolytes
    elements = {*Composition(plan.candidate.formula).elements, Element("Li"),
                *(el for f in partners for el in Composition(f).elements)}
    cand, phases, _, source = _inputs(planner, plan, upstream, verdict, elements)
    relax_backend, gap_backend = planner.config.backends.relax, planner.config.backends.band_gap
    relax_maker, gap_maker = get_maker("relax", relax_backend), get_maker("band_gap", gap_backend)
    keys = {}
    for pid in phases:
        m = replace(relax_maker, relax_cell=False) if phases_for(elements)[pid].get("molecule") else relax_maker
        keys[pid] = make_key(phase_key(pid, relax_backend, m), "band_gap", gap_backend, settings_of(gap_maker))
    known = _known_gaps(planner, source, elements, keys)
    labels = {"material_id": plan.candidate.material_id, "stage": "interfacial_reactions", "backend": gap_backend}
    gap_min = planner.thresholds["insulator_gap_min"]
    reactions, _ = planner.add(
        plan, _key(upstream, "interfacial_reactions", planner, partners, gap_backend, sorted(phases),
             _entries_state(source), sorted(thermo.OPEN_4F)),
        "interfacial_reactions", "reactions", source["backend"], lambda: interfacial_reactions(
            cand, phases, partners, gap_min, known, (gap_maker, keys, labels), source=source,
            _after=verdict.structure))
    return planner.gate(plan, _key(upstream, "interfacial_reactions verdict", planner, partners, gap_backend,
                                   sorted(phases), _entries_state(source), sorted(thermo.OPEN_4F)), "interfacial_reactions", source["backend"],
                        lambda: interfacial_verdict(plan.ident, reactions, verdict.structure, gap_min))

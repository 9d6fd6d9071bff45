"""Funnel stages built on workflows/thermo.py: phase_stability, stability_window, interfacial_reactions.

Energies come from one scale only (``thermo.entries``): ``local`` relaxes the candidate and the
bundled competing phases of its chemical system (data/competing_phases.json.gz) on ``backends.relax``;
``mp`` uses Materials Project MP2020 entries (MP_API_KEY, cached in the ``cache`` store).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from functools import cache

from jobflow import Flow, Response, job
from pymatgen.core import Composition, Element, Structure

from coatflow.makers.registry import get_maker
from coatflow.workflows import thermo
from coatflow.workflows.campaign import make_key, settings_of
from coatflow.workflows.errors import CoatflowError
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
        s = Structure.from_dict(doc["output"]["structure"]) if isinstance(doc, dict) else doc.output.structure
        e = doc["output"]["energy"] if isinstance(doc, dict) else doc.output.energy
        return thermo.mp2020_entry(s.composition, e, scale, entry_id=eid)
    cand = entry(cand_doc, "candidate")
    return cand, [entry(d, pid) for pid, d in phase_docs.items()]


def _mp_entries(cand_doc, source: dict) -> tuple:
    from monty.json import MontyDecoder
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    if source.get("error"):
        raise CoatflowError(source["error"])
    entries = [MontyDecoder().process_decoded(d) for d in source["entries"]]
    for e in entries:
        e.data["energy_scale"] = thermo.MP_SCALE
    own = [e for e in entries if e.data.get("material_id") == source.get("material_id")]
    if own:  # the candidate is an MP material: its own MP entry, so E_hull is MP's
        cand = own[0].copy()
        cand.entry_id = "candidate"
        return cand, [e for e in entries if e is not own[0]]
    if source.get("backend") == "vasp" and cand_doc is not None:
        raw = cand_doc.get("entry") if isinstance(cand_doc, dict) else getattr(cand_doc, "entry", None)
        raw = MontyDecoder().process_decoded(raw) if isinstance(raw, dict) else raw
        cand = MaterialsProject2020Compatibility().process_entry(raw, on_error="ignore") if raw else None
        if cand is not None:
            cand.entry_id, cand.data["energy_scale"] = "candidate", thermo.MP_SCALE
            return cand, entries
    raise CoatflowError(f"no MP2020-scale energy for the candidate: it is not a Materials Project material and "
                        f"was relaxed with '{source.get('backend')}' (thermo.entries: mp needs backends.relax: vasp)")


def _not_on_scale(ident, stage, structure, exc) -> Response:
    return _result(ident, stage, status="not_computed", structure=structure, reason=f"not computed: {exc}")


def _missing(cand, entries) -> list[str]:
    return thermo.covers(entries, cand.composition.elements)


def _result(ident, stage, **kw) -> Response:
    r = StageResult(**ident, stage=stage, **kw)
    return Response(output=r, stop_children=not r.passed)


@job(name="phase stability verdict")
def phase_stability_verdict(ident, cand_doc, phase_docs, structure, e_max, uuids, source=None):
    try:
        cand, entries = _entries(cand_doc, phase_docs, source)
    except CoatflowError as exc:
        return _not_on_scale(ident, "phase_stability", structure, exc)
    scale = thermo.scale_of(cand)
    if miss := _missing(cand, entries):
        return _result(ident, "phase_stability", status="not_computed", structure=structure,
                       reason=f"not computed: no elemental reference for {', '.join(miss)} on the {scale} scale")
    ehull, decomp = thermo.e_above_hull(cand, entries)
    ok = ehull <= e_max
    return _result(ident, "phase_stability", status="passed" if ok else "failed", value=round(1000 * ehull, 1),
                   unit="meV/atom", criterion=f"E_hull <= {1000 * e_max:.0f} meV/atom", backend=_backend(source),
                   reason=None if ok else f"E_hull = {1000 * ehull:.0f} meV/atom", task_uuids=uuids,
                   structure=structure,
                   details={"energy_scale": scale, "decomposition": decomp,
                            "competing_phases": sorted(phase_docs) or len(entries),
                            "formation_from_precursors": thermo.formation_from_precursors(cand, entries)})


@job(name="stability window verdict")
def stability_window_verdict(ident, cand_doc, phase_docs, structure, red_max, ox_min, source=None):
    try:
        cand, entries = _entries(cand_doc, phase_docs, source)
    except CoatflowError as exc:
        return _not_on_scale(ident, "stability_window", structure, exc)
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
                   details={**w, "energy_scale": thermo.scale_of(cand)}, structure=structure, backend=_backend(source))


def _backend(source) -> str:
    return "materials_project" if source and source["kind"] == "mp" else (source or {}).get("backend", "mlip")


def _pool_for(pool, a: str, b: str) -> list:
    """Entries of the chemical system of ``a`` + ``b``: one small phase diagram per pair."""
    return thermo.in_chemsys(pool, {*Composition(a).elements, *Composition(b).elements})


def _pairs(cand, pool, partners, gaps: dict[str, float], gap_min: float) -> dict:
    formula = cand.composition.reduced_formula
    have = {e.composition.reduced_formula for e in pool}
    pairs = {}
    for other in ("Li", *partners):
        f = Composition(other).reduced_formula
        pairs[f"{formula} | {other}"] = (
            thermo.interfacial_reaction(formula, other, _pool_for(pool, formula, other), gaps, gap_min)
            if f in have else {"status": "not_computed",
                               "reason": f"not computed: no {f} entry on the {thermo.scale_of(cand)} scale"})
    for other in partners:  # what the coating prevents
        f = Composition(other).reduced_formula
        pairs[f"Li | {other}"] = (thermo.interfacial_reaction("Li", other, _pool_for(pool, "Li", other), gaps, gap_min)
                              if f in have else {"status": "not_computed", "reason": f"not computed: no {f} entry"})
    return pairs


#: 4f elements with partly filled shells in their usual oxidation states: a PBE gap (no U, f in valence)
#: is not a classification (Tb2O3 comes out metallic), so their products are not sent to band_gap jobs.
OPEN_4F = frozenset({"Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb"})
OPEN_4F_NOTE = "not computed: open 4f shell, a PBE gap is unreliable"


def _unknown_products(pairs: dict) -> set[str]:
    """Compound products of the coating's pairs that have no band gap yet."""
    return {p for k, v in pairs.items() if v["status"] == "computed" and not k.startswith("Li |")
            for p, c in v["product_class"].items() if c == "unknown"}


@job(name="interfacial reactions")
def interfacial_reactions(cand_doc, phase_docs, partners, gap_min, known_gaps, gap_jobs=None, source=None,
                          _after=None):
    """Reaction of the candidate with Li and each partner, and the band gap of every product.

    ``_after`` (the previous verdict's structure) makes this job a child of that verdict, so a candidate
    that failed the window never pays for band-gap jobs.

    ``known_gaps`` maps formulas to {"band_gap", "source"} (shipped data, or gaps this campaign stored).
    ``gap_jobs`` is (maker, {phase id: job key}, labels): products still without a gap get one job each,
    then this job runs again with their outputs and without ``gap_jobs``.
    """
    from coatflow.makers.band_gap import gap_of

    gaps = {f: g if isinstance(g, dict) else {"band_gap": gap_of(g), "source": getattr(g, "source", "VASP static")}
            for f, g in known_gaps.items()}
    try:
        cand, entries = _entries(cand_doc, phase_docs, source)
    except CoatflowError as exc:
        return {"error": f"not computed: {exc}"}
    pool = [*entries, cand]
    pairs = _pairs(cand, pool, partners, {f: g["band_gap"] for f, g in gaps.items()}, gap_min)
    unknown = _unknown_products(pairs)
    if unknown and gap_jobs:
        maker, keys, labels = gap_jobs
        best = thermo.ground_states(pool)
        jobs, new = [], {}
        for f in sorted(unknown):
            pid = best[f].entry_id
            if {el.symbol for el in Composition(f).elements} & OPEN_4F:
                gaps[f] = {"band_gap": None, "source": OPEN_4F_NOTE}
                continue
            if pid not in keys:  # the candidate itself: its gap comes from the database filter
                continue
            doc = phase_docs[pid]
            structure = Structure.from_dict(doc["output"]["structure"]) if isinstance(doc, dict) else doc.output.structure
            j = maker.make(structure)
            j.name = f"{j.name} {f}"
            j.update_metadata({"coatflow": {**labels, "task": "band_gap", "key": keys[pid]}})
            jobs.append(j)
            new[f] = j.output
        if not jobs:
            return _finish(pairs, gaps)
        again = interfacial_reactions(cand_doc, phase_docs, partners, gap_min, {**gaps, **new}, source=source)
        return Response(replace=Flow([*jobs, again], output=again.output))
    return _finish(pairs, gaps)


def _finish(pairs: dict, gaps: dict) -> dict:
    for v in pairs.values():
        if v["status"] == "computed":
            v["product_gap_source"] = {p: gaps[p]["source"] if p in gaps else None for p in v["products"]}
    used = {p for v in pairs.values() if v["status"] == "computed" for p in v["products"]}
    return {"pairs": pairs, "band_gaps": {f: g for f, g in gaps.items() if f in used}}


@job(name="interfacial reactions verdict")
def interfacial_verdict(ident, reactions, structure, gap_min):
    if "error" in reactions:
        return _result(ident, "interfacial_reactions", status="not_computed", structure=structure,
                       reason=reactions["error"])
    pairs = reactions["pairs"]
    done = {k: v for k, v in pairs.items() if v["status"] == "computed" and not k.startswith("Li |")}
    classes = {p: c for v in done.values() for p, c in v["product_class"].items()}
    bad = sorted(p for p, c in classes.items() if c == "conducting")
    unknown = sorted(p for p, c in classes.items() if c == "unknown")
    worst = min((v["reaction_energy"] for v in done.values()), default=None)
    skipped = sorted(k for k, v in pairs.items() if v["status"] != "computed" and not k.startswith("Li |"))
    details = {"pairs": pairs, "band_gaps": reactions["band_gaps"], "pairs_not_computed": skipped}
    why = sorted({pairs[k]["reason"].removeprefix("not computed: ") for k in skipped})
    if not done:
        return _result(ident, "interfacial_reactions", status="not_computed", details=details, structure=structure,
                       reason=f"not computed: {'; '.join(why)}")
    if bad:
        status, reason = "failed", f"conducting products: {', '.join(bad)}"
    elif unknown:
        notes = {p: f" ({reactions['band_gaps'][p]['source'][len('not computed: '):]})" if p in reactions["band_gaps"]
                 and reactions["band_gaps"][p]["source"].startswith("not computed") else "" for p in unknown}
        status, reason = "not_computed", f"not computed: band gap unknown for {', '.join(p + notes[p] for p in unknown)}"
    elif skipped:
        status, reason = "not_computed", f"not computed: {'; '.join(why)}"
    else:
        status, reason = "passed", None
    return _result(ident, "interfacial_reactions", status=status, value=worst, unit="eV/atom", reason=reason,
                   criterion=f"no product with gap < {gap_min} eV", details=details, structure=structure)


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
        entries = thermo.mp_entries(elements, planner.cache)
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


def _known_gaps(planner, source, elements, keys) -> dict:
    """Band gaps known before the stage runs: shipped Alexandria data, MP (mp kind), gaps stored by key."""
    known = {f: {"band_gap": g, "source": "Alexandria PBE (shipped)"} for f, g in thermo.alexandria_band_gaps().items()}
    if source["kind"] == "mp" and "entries" in source:
        from monty.json import MontyDecoder

        best = thermo.ground_states(MontyDecoder().process_decoded(d) for d in source["entries"])
        ids = {e.data.get("material_id"): f for f, e in best.items() if e.data.get("material_id")}
        for mid, gap in thermo.mp_band_gaps(ids, planner.cache).items():
            known[ids[mid]] = {"band_gap": gap, "source": f"Materials Project ({mid})"}
    for pid, key in keys.items():
        formula = Structure.from_dict(phases_for(elements)[pid]).composition.reduced_formula
        stored = planner.stored(key)
        if stored is not None and not {el.symbol for el in Composition(formula).elements} & OPEN_4F:
            known[formula] = stored[0]
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
             _entries_state(source), sorted(OPEN_4F)),
        "interfacial_reactions", "reactions", source["backend"], lambda: interfacial_reactions(
            cand, phases, partners, gap_min, known, (gap_maker, keys, labels), source=source,
            _after=verdict.structure))
    return planner.gate(plan, _key(upstream, "interfacial_reactions verdict", planner, partners, gap_backend,
                                   sorted(phases), _entries_state(source), sorted(OPEN_4F)), "interfacial_reactions", source["backend"],
                        lambda: interfacial_verdict(plan.ident, reactions, verdict.structure, gap_min))

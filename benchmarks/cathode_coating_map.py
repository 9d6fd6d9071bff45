"""The cathode-coating programme's reaction map and ranked table on the MP snapshot (docs/cathode_coating.md).

    python3 benchmarks/cathode_coating_map.py [FORMULA ...]
    python3 benchmarks/cathode_coating_map.py --write DIR   # the bundled coating structures, for candidates: files

For each coating of workflows/data/cathode_coating_set.yaml (or the formulas given): its E_hull and window
(workflows/analysis/thermo.py), its most exothermic reaction with each cathode state (the cathode_compatibility
stage's ``cathode_pairs``) and with each sulfide electrolyte (the interfacial_reactions job, no Li metal; each
product with its class, insulating | mixed-conducting | metallic | unknown), on ``thermo.entries: mp_snapshot``.
Prints one block per coating, the markdown map table of docs/cathode_coating.md and the wall time.

Then the ranked table: the verdicts of the programme's formula-level stages (database_filter, phase_stability,
stability_window, cathode_compatibility, interfacial_reactions), each computed by the stage's own verdict job
at the programme's defaults (``CampaignConfig(programme="cathode_coating")``), in that order, stopping at the
first failed one as the funnel does, and ranked by the builder's ``rank_candidates``. All twelve coatings enter,
also the three with no structure (Li3BO3, Li2WO4, Li3InCl6): on the snapshot those stages need the formula only.
The structure-dependent stages (bulk_relax, migration_barrier) are not run here; their column says whether the
coating has a structure (prototype substitution, a bundled structure, or none: "not computed: no structure").
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from pymatgen.core import Composition

from coatflow.launchers.config import CampaignConfig
from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import AnalysisError, thermo
from coatflow.workflows.builders import rank_candidates
from coatflow.workflows.candidates import example_structures, predicted_candidate
from coatflow.workflows.cathode_phases import coating_structures
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import database_entries_on_scale
from coatflow.workflows.schemas.thermo import InterfacialReactionsResult
from coatflow.workflows.stages.base import not_computed
from coatflow.workflows.stages.cathode_compatibility import (
    cathode_coating_set, cathode_compatibility_verdict, cathode_pairs)
from coatflow.workflows.stages.database_filter import database_filter, database_properties
from coatflow.workflows.stages.interfacial_reactions import interfacial_reactions, interfacial_verdict
from coatflow.workflows.stages.phase_stability import phase_stability_verdict
from coatflow.workflows.stages.stability_window import stability_window_verdict


def source(formula, partners):
    els = {"Li", *(el.symbol for f in (formula, *partners) for el in Composition(f).elements)}
    return {"kind": "mp_snapshot", "backend": "mlip", "material_id": data.snapshot_id(formula),
            "elements": sorted(els), "state": data.snapshot_version()}


SHORT = {"mixed-conducting": "mixed", "metallic": "metallic", "unknown": "gap?"}


def _cell(p) -> str:
    """A sulfide cell of the table: the reaction energy and the classes of its non-insulating products."""
    if p.status != "computed":
        return "n/c"
    kinds = sorted({SHORT[k] for k in p.product_conduction.values() if k in SHORT})
    return f"{p.reaction_energy:.3f}" + (f" ({', '.join(kinds)})" if kinds else "")


def main(formulas) -> None:
    warnings.simplefilter("ignore")
    s = cathode_coating_set()
    cathodes, electrolytes = s["cathodes"], s["electrolytes"]
    t0 = time.perf_counter()
    rows = []
    for f in formulas:
        t = time.perf_counter()
        print(f"## {f}")
        try:
            cand, entries = database_entries_on_scale(None, source(f, ()))
            pd = thermo.phase_diagram([*entries, cand])
            w = thermo.stability_window(cand, entries)
            print(f"E_hull {pd.get_e_above_hull(cand):.3f} eV/atom; window {w.reduction_limit:.2f}-{w.oxidation_limit:.2f} V")
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"window not computed: {exc}")
            continue
        partners = [x for c in cathodes.values() for x in c.values()]
        cand, entries = database_entries_on_scale(None, source(f, partners))
        cpairs = cathode_pairs(cand.composition.reduced_formula, cathodes, [*entries, cand], s.get("end_members"))
        for k, p in cpairs.items():
            if p.status == "computed":
                print(f"{k}: {p.reaction_energy:.3f} eV/atom -> {', '.join(p.products) or 'no reaction'}"
                      + (f" [{p.reason}]" if p.reason else ""))
            else:
                print(f"{k}: not computed ({p.reason})")
        try:
            r = interfacial_reactions.original(None, {}, electrolytes, 0.5, {}, None, source=source(f, electrolytes),
                                               li_metal=False)
        except AnalysisError as exc:
            print(f"electrolytes not computed: {exc}")
            continue
        for k, p in r.pairs.items():
            if p.status == "computed":
                print(f"{k}: {p.reaction_energy:.3f} eV/atom -> "
                      + (", ".join(f"{x} ({p.product_conduction.get(x, p.product_class[x])}, gap "
                                   f"{'?' if p.product_gaps.get(x) is None else format(p.product_gaps[x], '.2f')} eV)"
                                   for x in p.products) or "no reaction"))
            else:
                print(f"{k}: not computed ({p.reason})")
        print(f"({time.perf_counter() - t:.0f} s)\n")
        done = {k: p for k, p in cpairs.items() if p.status == "computed"}
        worst = min(done, key=lambda k: done[k].reaction_energy)
        nmc = next(p for k, p in cpairs.items() if "NMC811 charged" in k)
        rows.append([f, f"{w.reduction_limit:.2f}–{w.oxidation_limit:.2f}",
                     f"{nmc.reaction_energy:.3f}" if nmc.status == "computed" else "n/c",
                     f"{done[worst].reaction_energy:.3f} ({worst.split('| ')[1].split(' (')[0]})",
                     *(_cell(r.pairs[f"{cand.composition.reduced_formula} | {e}"]) for e in electrolytes)])
    print("| coating | window | NMC811 charged | worst cathode | " + " | ".join(electrolytes) + " |")
    print("| --- " * (4 + len(electrolytes)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    ranked(formulas)


#: the programme's stages that need only formula energies on the snapshot, in the order they run here
FORMULA_STAGES = ("database_filter", "phase_stability", "stability_window", "cathode_compatibility",
                  "interfacial_reactions")


def structure_of(formula: str) -> str | None:
    """Where the funnel would get the coating's structure: prototype substitution (candidates.source:
    formulas), a bundled structure (workflows/cathode_phases.py, candidates.source: files), or None."""
    try:
        predicted_candidate(formula, example_structures())
        return "prototype"
    except CoatflowError:
        pass
    return "bundled" if formula in coating_structures() else None


def formula_verdicts(formula: str, cfg) -> dict:
    """{stage: StageResult} of the formula-level stages at ``cfg``'s settings, each from the stage's own verdict
    job, up to and including the first failed one (the funnel stops there)."""
    s = cathode_coating_set()
    ident = {"material_id": f"pred-{formula}", "formula": formula, "source": "formula", "predicted": True}
    db = cfg.stage("database_filter")
    cc = cfg.stage("cathode_compatibility")
    ir = cfg.stage("interfacial_reactions")
    cathodes = {n: s["cathodes"][n] for n in cc.cathodes}
    partners = [x for c in cathodes.values() for x in c.values()]

    def electrolytes():
        try:
            r = interfacial_reactions.original(None, {}, ir.electrolytes, ir.insulator_gap_min, {}, None,
                                               source=source(formula, ir.electrolytes), li_metal=ir.with_li_metal)
        except AnalysisError as exc:
            return not_computed(InterfacialReactionsResult, ident, None, str(exc)).output
        return interfacial_verdict.original(ident, r, None, ir.insulator_gap_min).output

    jobs = {
        "database_filter": lambda: database_filter.original(
            ident, None, {}, database_properties(formula), db.settings()).output,
        "phase_stability": lambda: phase_stability_verdict.original(
            ident, None, {}, None, cfg.phase_stability.e_hull_max, [], source(formula, ())).output,
        "stability_window": lambda: stability_window_verdict.original(
            ident, None, {}, None, cfg.stability_window.reduction_limit_max, cfg.stability_window.oxidation_limit_min,
            source(formula, ())).output,
        "cathode_compatibility": lambda: cathode_compatibility_verdict.original(
            ident, None, {}, None, cathodes, cc.reaction_energy_min, source(formula, partners), cc.reactant_energy
        ).output,
        "interfacial_reactions": electrolytes,
    }
    out = {}
    for stage in FORMULA_STAGES:
        out[stage] = jobs[stage]()
        if out[stage].status == "failed":
            break
    return out


def _verdict_cell(stage: str, r) -> str:
    if r is None:
        return ""
    if stage == "stability_window" and r.details.reduction_limit is not None:
        value = f"{r.details.reduction_limit:.2f}–{r.details.oxidation_limit:.2f}"
    else:
        value = "" if r.value is None else f"{r.value:.3g}"
    word = {"passed": "pass", "failed": "FAIL", "not_computed": "n/c"}[r.status]
    why = r.reason or ""
    if stage in ("cathode_compatibility", "interfacial_reactions") and r.value is not None:
        pairs = r.details.pairs
        done = {k: p for k, p in pairs.items() if p.status == "computed"}
        worst = min(done, key=lambda k: done[k].reaction_energy, default=None)
        why = worst and f"worst {worst.split(' | ', 1)[1]}" + (f"; {r.reason}" if stage == "interfacial_reactions"
                                                                and r.reason else "")
    elif len(why) > 60:
        why = why[:57] + "..."
    return f"{value} {word}".strip() + (f" ({why})" if why and (r.status != "passed" or stage in
                                                                 ("cathode_compatibility",)) else "")


def ranked(formulas) -> None:
    """The ranked table of the formula-level verdicts (module docstring), with its wall time."""
    cfg = CampaignConfig(programme="cathode_coating")
    t0 = time.perf_counter()
    docs = []
    for f in formulas:
        verdicts = formula_verdicts(f, cfg)
        failed = next((k for k, v in verdicts.items() if v.status == "failed"), None)
        docs.append({"formula": f, "verdicts": verdicts, "failed_stage": failed,
                     "furthest_stage": list(verdicts)[-1], "structure": structure_of(f),
                     "stages_passed": sum(v.status == "passed" for v in verdicts.values())})
    wall = time.perf_counter() - t0
    print("\n| # | coating | " + " | ".join(FORMULA_STAGES) + " | structure (bulk_relax, migration_barrier) "
          "| furthest stage |")
    print("| --- " * (4 + len(FORMULA_STAGES)) + "|")
    for i, d in enumerate(rank_candidates(docs), 1):
        where = {"prototype": "prototype substitution (not run here)",
                 "bundled": "bundled structure, candidates: files (not run here)",
                 None: "not computed: no structure"}[d["structure"]]
        fate = f"failed at {d['failed_stage']}" if d["failed_stage"] else f"passed {d['furthest_stage']}"
        print(f"| {i} | {d['formula']} | " + " | ".join(_verdict_cell(s, d["verdicts"].get(s)) for s in FORMULA_STAGES)
              + f" | {where} | {fate} |")
    print(f"ranked table: {len(docs)} coatings in {wall:.0f} s")


def write_structures(folder: str) -> None:
    """The bundled structures of the known coatings the formula route cannot build, one JSON file each."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for formula, st in coating_structures().items():
        path = out / f"{formula.replace('(', '').replace(')', '')}.json"
        st.to(filename=str(path))
        print(path)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_structures(sys.argv[2])
    else:
        main(sys.argv[1:] or cathode_coating_set()["coatings"])

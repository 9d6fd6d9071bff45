"""The cathode-coating programme's reaction map on the MP snapshot: every known coating against every cathode state and electrolyte (docs/cathode_coating.md).

    python3 benchmarks/cathode_coating_map.py [FORMULA ...]
    python3 benchmarks/cathode_coating_map.py --write DIR   # the bundled coating structures, for candidates: files

For each coating of workflows/data/cathode_coating_set.yaml (or the formulas given): its E_hull and window
(workflows/analysis/thermo.py), its most exothermic reaction with each cathode state (the cathode_compatibility
stage's ``cathode_pairs``) and with each sulfide electrolyte (the interfacial_reactions job, no Li metal; each
product with its class, insulating | mixed-conducting | metallic | unknown), on ``thermo.entries: mp_snapshot``.
Prints one block per coating, the markdown map table of docs/cathode_coating.md and the wall time.

The ranked table of the programme is the engine's: ``coatflow init --programme cathode-coating c.yaml``,
``coatflow run -c c.yaml`` (on the snapshot the formula-level stages run before any relaxation, so all twelve
coatings enter, also those with no structure), ``coatflow query -c c.yaml``; ``coatflow report`` draws the map.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from pymatgen.core import Composition

from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import AnalysisError, thermo
from coatflow.workflows.cathode_phases import coating_structures
from coatflow.workflows.phase_diagrams import database_entries_on_scale
from coatflow.workflows.stages.cathode_compatibility import (
    cathode_coating_set, cathode_pairs)
from coatflow.workflows.stages.interfacial_reactions import interfacial_reactions


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


def write_structures(folder: str) -> None:
    """The bundled structures of the known coatings the formula route cannot build, one JSON file each."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for formula, st in coating_structures().items():
        path = out / f"{formula.replace('(', '').replace(')', '')}.json"
        st.to(filename=str(path))
        print(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("formulas", nargs="*", help="coatings (default: the twelve of the programme's set)")
    parser.add_argument("--write", metavar="DIR", help="write the bundled coating structures as JSON files, and stop")
    args = parser.parse_args()
    if args.write:
        write_structures(args.write)
    else:
        main(args.formulas or cathode_coating_set()["coatings"])

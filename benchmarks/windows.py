"""Electrochemical windows (V vs Li) against published values.

Uses MP entries (MP_API_KEY, or the cache) when available; offline it computes what the shipped data
allows (Li3PS4 from Alexandria PBE, Li2O from MP Li-Co-Ni-O) and reports the rest as not computed.
"""

import os
import warnings

from coatflow.workflows import thermo
from coatflow.workflows.errors import CoatflowError

warnings.filterwarnings("ignore")
# Published (reduction, oxidation) limits, V vs Li/Li+ (Zhu, He, Mo, ACS AMI 2015; Richards et al. 2016)
PUBLISHED = {"Li7La3Zr2O12": (0.00, 2.91), "Li3PO4": (0.69, 4.21), "Li2PO2N": (0.68, 2.64), "Li3PS4": (1.74, 2.32)}


def entries_for(formula):
    from pymatgen.core import Composition

    els = [e.symbol for e in Composition(formula).elements]
    if set(els) <= {"Li", "Co", "Ni", "O"}:
        return thermo.matterviz_entries()
    if set(els) <= {"Li", "P", "S"} and not os.environ.get("MP_API_KEY"):
        return thermo.alexandria_entries("Li-P-S")
    return thermo.mp_entries(els)


for formula, (red, ox) in PUBLISHED.items():
    try:
        entries = entries_for(formula)
    except CoatflowError as exc:
        print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  not computed: {exc}")
        continue
    gs = thermo.ground_states(entries)
    w = thermo.stability_window(gs[formula], entries) if formula in gs else {"status": "no entry"}
    if w.get("status") != "computed":
        print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  not computed: {w.get('reason', w['status'])}")
        continue
    print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  {thermo.scale_of(gs[formula]):14s} ({w['reduction_limit']:.2f}, "
          f"{w['oxidation_limit']:.2f})  deviation ({w['reduction_limit'] - red:+.2f}, {w['oxidation_limit'] - ox:+.2f})")
mp = thermo.matterviz_entries()
w = thermo.stability_window(thermo.ground_states(mp)["Li2O"], mp)
print(f"Li2O (MP Li-Co-Ni-O data, offline): ({w['reduction_limit']:.2f}, {w['oxidation_limit']:.2f}) -> "
      f"{w['oxidation_products']};  MP_API_KEY set: {bool(os.environ.get('MP_API_KEY'))}")

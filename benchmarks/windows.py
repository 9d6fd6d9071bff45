"""Electrochemical windows (V vs Li) against published values.

Usage: python benchmarks/windows.py [--local [WORK_DIR]]

Uses MP entries (MP_API_KEY, or the cache) when available; offline it computes what the shipped data
allows (Li3PS4 from Alexandria PBE, Li2O from MP Li-Co-Ni-O) and reports the rest as not computed.
"""

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from pymatgen.core import Composition, Structure

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.local import run_campaign
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows import reference_data as data
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis import thermo
from coatflow.workflows.errors import CoatflowError

warnings.filterwarnings("ignore")
# Published (reduction, oxidation) limits, V vs Li/Li+ (Zhu, He, Mo, ACS AMI 2015; Richards et al. 2016)
PUBLISHED = {"Li7La3Zr2O12": (0.00, 2.91), "Li3PO4": (0.69, 4.21), "Li2PO2N": (0.68, 2.64), "Li3PS4": (1.74, 2.32)}


def entries_for(formula):
    els = [e.symbol for e in Composition(formula).elements]
    if set(els) <= {"Li", "Co", "Ni", "O"}:
        return data.matterviz_entries()
    if set(els) <= {"Li", "P", "S"} and not os.environ.get("MP_API_KEY"):
        return data.alexandria_entries("Li-P-S")
    return data.mp_entries(els)


def offline_windows() -> None:
    """Shipped data offline, MP entries with MP_API_KEY (or cached)."""
    for formula, (red, ox) in PUBLISHED.items():
        try:
            entries = entries_for(formula)
            gs = thermo.ground_states(entries)
            if formula not in gs:
                raise AnalysisError(f"no {formula} entry")
            w = thermo.stability_window(gs[formula], entries)
        except (CoatflowError, AnalysisError) as exc:
            print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  not computed: {exc}")
            continue
        print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  {thermo.scale_of(gs[formula]):14s} ({w.reduction_limit:.2f}, "
              f"{w.oxidation_limit:.2f})  deviation ({w.reduction_limit - red:+.2f}, {w.oxidation_limit - ox:+.2f})")
    mp = data.matterviz_entries()
    w = thermo.stability_window(thermo.ground_states(mp)["Li2O"], mp)
    print(f"Li2O (MP Li-Co-Ni-O data, offline): ({w.reduction_limit:.2f}, {w.oxidation_limit:.2f}) -> "
          f"{w.oxidation_products};  MP_API_KEY set: {bool(os.environ.get('MP_API_KEY'))}")


def local_windows() -> None:
    """The campaign itself relaxes each electrolyte and its competing phases with CHGNet (local scale)."""
    work = Path(sys.argv[sys.argv.index("--local") + 1] if len(sys.argv) > sys.argv.index("--local") + 1
                else tempfile.mkdtemp(prefix="coatflow-windows-"))
    (work / "structures").mkdir(parents=True, exist_ok=True)
    shipped = {Composition(f).reduced_formula for f in PUBLISHED}
    for pid, sd in data.competing_phases().items():
        s = Structure.from_dict(sd)
        if s.composition.reduced_formula in shipped:
            s.to(filename=str(work / "structures" / f"{s.composition.reduced_formula}.json"))
    config = CampaignConfig(base_dir=work, candidates={"source": "files", "paths": ["structures"]},
                            phase_stability={"e_hull_max": 1.0}, run={"stop_after": "stability_window"})
    t0 = time.perf_counter()
    report, _ = run_campaign(config)
    stores = CampaignStores(config).connect()
    docs = {d["formula"]: d for d in stores.candidates.query({})}
    stores.close()
    print(f"\nlocal scale (CHGNet+MP2020), {report.jobs_run} jobs in {time.perf_counter() - t0:.0f} s, store {work}")
    for formula, (red, ox) in PUBLISHED.items():
        st = docs.get(Composition(formula).reduced_formula, {}).get("stages", {}).get("stability_window")
        if st is None or st["status"] == "not_computed":
            why = "no bundled structure" if st is None else st["reason"]
            print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  not computed: {why}")
            continue
        d = st["details"]
        print(f"{formula:14s} published ({red:.2f}, {ox:.2f})  CHGNet+MP2020 ({d['reduction_limit']:.2f}, "
              f"{d['oxidation_limit']:.2f})  deviation ({d['reduction_limit'] - red:+.2f}, {d['oxidation_limit'] - ox:+.2f})"
              f"  E_hull {1000 * d['e_above_hull']:.0f} meV/atom")


if __name__ == "__main__":  # the campaign's workers re-import this module
    offline_windows()
    if "--local" in sys.argv:
        local_windows()

"""Li adsorption benchmark: E_ads(min), number of sites and wall time per example candidate (CHGNet).

usage: python benchmarks/adsorption.py [material_id ...]   (default: every example candidate)
Uses each structure as given (no bulk relax first) and the default adsorption settings.
"""

import sys
import time
import warnings

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from coatflow.makers.adsorption import LiAdsorptionMaker
from coatflow.workflows.candidates import example_candidates

warnings.filterwarnings("ignore")


def main(ids):
    cands = [c for c in example_candidates() if not ids or c.material_id in ids]
    print(f"{'material':<16}{'facet':<12}{'E_ads min (eV)':>15}{'sites':>7}{'flagged':>9}{'wall (s)':>10}")
    for c in cands:
        bulk = c.structure or c.prototypes[0][1]  # predicted: first prototype substitution, unrelaxed
        t0 = time.perf_counter()
        flow = LiAdsorptionMaker().make(bulk)
        store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        out = run_locally(flow, store=store, create_folders=False, log=False)
        doc = out[flow.jobs[2].uuid][1].output
        e = "n/a" if doc.e_ads_min is None else f"{doc.e_ads_min:.3f}"
        print(f"{c.material_id:<16}{str(doc.surface.get('miller_index')):<12}{e:>15}{len(doc.sites):>7}"
              f"{sum(bool(s.flags) for s in doc.sites):>9}{time.perf_counter() - t0:>10.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

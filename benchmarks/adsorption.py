"""Li adsorption benchmark: E_ads(min), number of sites and wall time per example candidate (CHGNet).

usage: python benchmarks/adsorption.py [material_id ...]   (default: every example candidate)
Uses each structure as given (no bulk relax first) and the default adsorption settings.
"""

import sys
import time
import warnings

import torch
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from coatflow.makers.adsorption import LiAdsorptionMaker
from coatflow.workflows.candidates import example_candidates

warnings.filterwarnings("ignore")
torch.set_num_threads(1)  # small graphs; extra threads only spin on a shared machine


def main(ids):
    cands = [c for c in example_candidates() if not ids or c.material_id in ids]
    print(f"{'material':<16}{'facet':<12}{'atoms':>6}{'E_ads min (eV)':>15}{'site':>8}{'sites':>7}{'relaxed':>8}"
          f"{'flagged':>8}{'wall (s)':>9}")
    for c in cands:
        bulk = c.structure or c.prototypes[0][1]  # predicted: first prototype substitution, unrelaxed
        t0 = time.perf_counter()
        flow = LiAdsorptionMaker().make(bulk)
        store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        out = run_locally(flow, store=store, create_folders=False, log=False)
        doc = out[flow.jobs[2].uuid][1].output
        e = "n/a" if doc.e_ads_min is None else f"{doc.e_ads_min:.3f}"
        best = next((s.site_type for s in doc.sites if s.index == doc.min_site), "-")
        hkl = "".join(map(str, doc.surface.get("miller_index") or [])) or "-"
        print(f"{c.material_id:<16}{hkl:<12}{len(doc.slab) if doc.slab else 0:>6}{e:>15}{best:>8}"
              f"{doc.surface.get('n_sites_enumerated', 0):>7}{len(doc.sites):>8}"
              f"{sum(bool(s.flags) for s in doc.sites):>8}{time.perf_counter() - t0:>9.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Li adsorption benchmark: E_ads(min), number of sites and wall time per example candidate (CHGNet).

usage: python benchmarks/adsorption.py [material_id ...]   (default: every example candidate)
       OMP_NUM_THREADS=1 python benchmarks/adsorption.py --dft gpaw --small ex-Li2O ex-LiF
Uses each structure as given (no bulk relax first) and the default adsorption settings.
``--dft gpaw`` confirms *every* physical site with GPAW single points on the ML geometries and prints
AdsorbML's success metric: is the ML-selected site within 0.1 eV of the DFT minimum over all sites?
``--small`` uses the test settings (one d_hkl layer, 4 Å in-plane, at most 4 sites) to keep DFT cheap.
"""

import sys
import time
import warnings

import torch
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder

from coatflow.makers.adsorption import LiAdsorptionMaker
from coatflow.workflows.schemas import LiAdsorptionDoc
from coatflow.workflows.candidates import example_candidates

warnings.filterwarnings("ignore")
torch.set_num_threads(1)  # small graphs; extra threads only spin on a shared machine


SMALL = {"layers": 1, "min_lw": 4.0, "min_vacuum": 10.0, "max_atoms": 30, "max_sites": 4}


def main(ids, dft=None, small=False):
    cands = [c for c in example_candidates() if not ids or c.material_id in ids]
    settings = {**(SMALL if small else {}), **({"dft_backend": dft, "top_k": 99} if dft else {})}
    print(f"{'material':<16}{'facet':<12}{'atoms':>6}{'E_ads min (eV)':>15}{'site':>8}{'sites':>7}{'relaxed':>8}"
          f"{'flagged':>8}{'wall (s)':>9}")
    for c in cands:
        bulk = c.structure or c.prototypes[0][1]  # predicted: first prototype substitution, unrelaxed
        t0 = time.perf_counter()
        flow = LiAdsorptionMaker(**settings).make(bulk)
        store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        run_locally(flow, store=store, create_folders=False, log=False)
        doc = MontyDecoder().process_decoded(store.get_output(flow.jobs[-1].uuid, which="last", load=True))
        if isinstance(doc, dict):
            doc = LiAdsorptionDoc(**{k: v for k, v in doc.items() if not k.startswith("@")})
        e = "n/a" if doc.e_ads_min is None else f"{doc.e_ads_min:.3f}"
        best = next((s.site_type for s in doc.sites if s.index == doc.min_site), "-")
        hkl = "".join(map(str, doc.surface.get("miller_index") or [])) or "-"
        print(f"{c.material_id:<16}{hkl:<12}{len(doc.slab) if doc.slab else 0:>6}{e:>15}{best:>8}"
              f"{doc.surface.get('n_sites_enumerated', 0):>7}{len(doc.sites):>8}"
              f"{sum(bool(s.flags) for s in doc.sites):>8}{time.perf_counter() - t0:>9.0f}", flush=True)
        if dft:
            d = doc.dft
            rows = [(s.index, s.site_type, s.e_ads_ml, s.e_ads_dft) for s in doc.sites if s.e_ads_dft is not None]
            print(f"    DFT ({d.get('status')}): " + ", ".join(f"site {i} {t}: ML {m:.3f} / DFT {e:.3f}"
                                                       for i, t, m, e in rows))
            print(f"    ML-selected site {d.get('ml_selected_site')}, DFT minimum site {d.get('dft_min_site')}, "
                  f"ML pick within 0.1 eV of the DFT minimum: {d.get('ml_within_0.1eV')}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    dft = args[args.index("--dft") + 1] if "--dft" in args else None
    ids = [a for a in args if a not in ("--dft", "--small", dft)]
    main(ids, dft, "--small" in args)

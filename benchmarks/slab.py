"""Benchmark: IP / work function of Li, LiF and Li2O on GPAW, with a vacuum-convergence check.

    OMP_NUM_THREADS=1 python benchmarks/slab.py [Li,LiF,Li2O] [facet e.g. 100]

Runs the same flows as ``coatflow run`` (relax -> bulk reference -> slabs -> summary) into a
throw-away embedded store under ./slab_benchmark and prints values and wall time per material.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.campaign import run_plans
from coatflow.workflows.surfaces import plan_surfaces


def main(materials: list[str], facets: list | None) -> None:
    root = Path("slab_benchmark").resolve()
    for formula in materials:
        cfg = CampaignConfig(base_dir=root, slab={"ip_materials": [formula], "facets": facets, "vacuum_check": True})
        stores = CampaignStores(cfg).connect()
        try:
            t0 = time.perf_counter()
            report = run_plans(plan_surfaces(cfg, stores.jobs), stores.jobs, cfg.resolve(cfg.run.work_dir))
            wall = time.perf_counter() - t0
            for d in stores.jobs.query({"metadata.coatflow.task": "surface_summary",
                                        "metadata.coatflow.material_id": f"ip-{formula}"}):
                o = d["output"]
                print(f"{formula}: IP {o['ionization_potential']} EA {o['electron_affinity']} WF {o['work_function']} "
                      f"gamma {o['surface_energy']} J/m2; vacuum check {o['vacuum_convergence']}; "
                      f"{report.jobs_run} jobs, {wall:.0f} s")
                for s in o["surfaces"]:
                    print(f"   {s['miller_index']} {s['termination']} vac {s['vacuum']}: IP {s['ionization_potential']} "
                          f"(slab alone {s['ionization_potential_slab']}) WF {s['work_function']} "
                          f"gamma {s['surface_energy']} plateau spread {s['plateau_spread']:.3f} eV")
        finally:
            stores.close()


if __name__ == "__main__":
    mats = sys.argv[1].split(",") if len(sys.argv) > 1 else ["Li", "LiF", "Li2O"]
    facet = [[int(c) for c in sys.argv[2]]] if len(sys.argv) > 2 else None
    main(mats, facet)

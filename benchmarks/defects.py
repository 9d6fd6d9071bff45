"""Benchmark: charged point defects and E_F(mu_Li) of LiF / Li2O on GPAW.

    OMP_NUM_THREADS=1 python benchmarks/defects.py [LiF,Li2O] [relax_steps] [min_length] [max_atoms]

Runs the same flows as ``coatflow run`` with a ``defects`` section (V_Li and Li_i in their default
charge states) into a throw-away embedded store under ./defects_benchmark, and prints formation
energies, corrections, E_F at both window ends, the dE_F/dmu_Li slope regimes and wall times.
Static dielectric constants: LiF 9.0, Li2O 8.0 (experimental, given in the config so the figures compare
with earlier runs; without them the gpaw backend computes the tensor, docs/defects.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.campaign import run_plans
from coatflow.workflows.defects import plan_defects

DIELECTRIC = {"LiF": 9.0, "Li2O": 8.0}


def main(materials: list[str], relax_steps: int, min_length: float, max_atoms: int) -> None:
    root = Path("defects_benchmark").resolve()
    for formula in materials:
        cfg = CampaignConfig(base_dir=root, defects={
            "materials": [formula], "include": ["v_Li", "Li_i"], "dielectric": {formula: DIELECTRIC[formula]},
            "min_length": min_length, "max_atoms": max_atoms, "relax_bulk": False, "relax_steps": relax_steps,
            "ecut": 300, "kpt_density": 1.5, "dos_kpt_density": 3.0, "n_mu": 21})
        stores = CampaignStores(cfg).connect()
        try:
            t0 = time.perf_counter()
            report = run_plans(plan_defects(cfg, stores.jobs), stores.jobs, cfg.resolve(cfg.run.work_dir))
            wall = time.perf_counter() - t0
            doc = stores.jobs.query_one({"metadata.coatflow.task": "defect_thermo",
                                         "metadata.coatflow.material_id": f"defects-{formula}"}, properties=["output"])
            if doc is None:
                print(f"{formula}: no result; errors {report.errors}")
                continue
            o = doc["output"]
            w = o["window"]
            print(f"{formula}: {o['n_supercell_sites']}-site supercell, gap {o['band_gap']:.2f} eV, window "
                  f"{w['reduction_limit']:.2f}-{w['oxidation_limit']:.2f} V; {report.jobs_run} jobs, {wall:.0f} s")
            for c in o["charge_states"]:
                print(f"   {c['name']:6s} {c['charge']:+d}: E_f(E_F=VBM, Li-rich) {c['e0_at_li_rich']:7.3f} eV, "
                      f"Freysoldt {c['correction']:.3f} eV {c['correction_metadata']}, "
                      f"max displacement {c['max_displacement']:.3f} Å")
            print(f"   E_F: {o['fermi_level_li_rich']:.3f} eV (Li-rich) -> {o['fermi_level_li_poor']:.3f} eV (Li-poor)")
            for r in o["slope_regimes"]:
                print(f"   dE_F/dmu_Li = {r['slope']:+.3f} for mu_Li {r['mu_li_from']:.2f} .. {r['mu_li_to']:.2f} eV")
            for p in o["fermi"][:: max(1, len(o["fermi"]) // 5)]:
                print(f"   mu_Li {p['mu_li']:6.2f}: E_F {p['fermi_level']:.3f}, dominant {p['dominant']}")
            print("   wall times (s):", {k: round(v, 1) for k, v in o["timings"].items()})
            for msg in o["warnings"]:
                print("   warning:", msg)
        finally:
            stores.close()


if __name__ == "__main__":
    mats = sys.argv[1].split(",") if len(sys.argv) > 1 else ["LiF"]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    length = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    atoms = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    main(mats, steps, length, atoms)

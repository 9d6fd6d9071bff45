"""Orchestration cost per candidate: coatflow's planner + builder against bare ``jobflow.run_locally``.

N trivial candidates (LiF, one database-filter verdict job each, a small document) go through
``FunnelPlanner.plan`` -> ``run_plans`` -> ``CandidateBuilder``, into a fresh store; the same N trivial
jobs then go through one bare ``run_locally`` into a fresh store of the same kind. Printed: seconds per
candidate for plan+run, for the builder, for a rerun (0 jobs), and for bare run_locally, and the ratios
the issue asks for (coatflow at the largest N within 2x of the smallest N, and within 3x of bare).

    python benchmarks/scaling.py                  # N = 100, 1000, 5000 on the embedded store
    python benchmarks/scaling.py --n 100 1000     # quicker
    COATFLOW_TEST_MONGODB_URI=mongodb://... python benchmarks/scaling.py --kind mongodb
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from jobflow import Flow, job, run_locally
from pymatgen.core import Lattice, Structure

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.local import CampaignPlan, build_candidates
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.campaign import FunnelPlanner, run_plans
from coatflow.workflows.candidates import Candidate


@job
def trivial(i: int) -> dict:
    return {"i": i, "formula": "LiF", "status": "passed"}


def _config(kind: str, where: Path) -> CampaignConfig:
    store = {"kind": "embedded", "path": str(where / "store")} if kind == "embedded" else \
        {"kind": "mongodb", "uri": os.environ["COATFLOW_TEST_MONGODB_URI"], "database": f"scaling_{uuid.uuid4().hex[:8]}"}
    return CampaignConfig(store=store, run={"stop_after": "database_filter", "workers": 1,
                                            "work_dir": str(where / "runs")}, base_dir=where)


def _drop(config: CampaignConfig) -> None:
    if config.store.kind == "mongodb":
        import pymongo

        pymongo.MongoClient(config.store.uri).drop_database(config.store.database)


def coatflow_path(n: int, kind: str) -> dict[str, float]:
    lif = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5] * 3])
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(kind, Path(tmp))
        stores = CampaignStores(config).connect()
        try:
            cands = [Candidate(f"bench-{i}", "LiF", "benchmark", lif) for i in range(n)]
            planner = FunnelPlanner(config, stores.jobs)
            t0 = time.perf_counter()
            report = run_plans((planner.plan(c) for c in cands), stores.jobs, Path(tmp) / "runs")
            t_run = time.perf_counter() - t0
            assert report.jobs_run == n and not report.errors, report.errors[:3]
            campaign = CampaignPlan(config, FunnelPlanner(config, stores.jobs), cands, [])
            t0 = time.perf_counter()
            assert build_candidates(stores, campaign) == n
            t_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = run_plans((FunnelPlanner(config, stores.jobs).plan(c) for c in cands), stores.jobs,
                              Path(tmp) / "runs")
            assert build_candidates(stores, CampaignPlan(config, FunnelPlanner(config, stores.jobs), cands, [])) == 0
            t_rerun = time.perf_counter() - t0
            assert again.jobs_run == 0
        finally:
            stores.close()
            _drop(config)
    return {"run": t_run / n, "build": t_build / n, "rerun": t_rerun / n}


def bare_path(n: int, kind: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(kind, Path(tmp))
        stores = CampaignStores(config).connect()
        try:
            t0 = time.perf_counter()
            run_locally(Flow([trivial(i) for i in range(n)]), store=stores.jobs, log=False,
                        root_dir=str(Path(tmp) / "runs"))
            return (time.perf_counter() - t0) / n
        finally:
            stores.close()
            _drop(config)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--kind", choices=["embedded", "mongodb"], default="embedded")
    args = ap.parse_args()
    rows = []
    print(f"store: {args.kind}; seconds per candidate (one trivial job each)")
    print(f"{'N':>6} {'plan+run':>9} {'builder':>9} {'coatflow':>9} {'rerun':>8} {'bare':>8} {'ratio':>6}")
    for n in args.n:
        c = coatflow_path(n, args.kind)
        b = bare_path(n, args.kind)
        total = c["run"] + c["build"]
        rows.append((n, total, b))
        print(f"{n:>6} {c['run']:>9.4f} {c['build']:>9.4f} {total:>9.4f} {c['rerun']:>8.4f} {b:>8.4f} "
              f"{total / b:>6.2f}", flush=True)
    (n0, t0, _), (n1, t1, b1) = rows[0], rows[-1]
    print(f"coatflow at N={n1} / at N={n0}: {t1 / t0:.2f}x (goal <= 2); coatflow / bare at N={n1}: "
          f"{t1 / b1:.2f}x (goal <= 3)")


if __name__ == "__main__":
    main()

"""Orchestration cost per candidate: coatflow's planner + builder against bare ``jobflow.run_locally``.

N trivial candidates (one stage whose verdict job returns a small dict) go through ``FunnelPlanner.plan``
-> ``run_plans`` -> ``CandidateBuilder``, into a fresh store; the same N trivial jobs then go through one
bare ``run_locally`` into a fresh store of the same kind. Printed: seconds per candidate for plan+run, for
the builder, for a rerun (0 jobs), and for bare run_locally, and the ratios the issue asks for (coatflow at
the largest N within 2x of the smallest N, and within 3x of bare). ``--stage database_filter`` runs the
real first stage instead (its verdict carries the candidate's structure, so pymatgen serialization adds
to the orchestration).

    python benchmarks/scaling.py                  # N = 100, 1000, 5000 on the embedded store
    python benchmarks/scaling.py --n 100 1000     # quicker
    COATFLOW_TEST_MONGODB_URI=mongodb://... python benchmarks/scaling.py --kind mongodb
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import ClassVar

from jobflow import Flow, job, run_locally
from pymatgen.core import Lattice, Structure

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.local import CampaignPlan, build_candidates
from coatflow.launchers.stores import CampaignStores
from coatflow.workflows.campaign import FunnelPlanner, run_plans
from coatflow.workflows.candidates import Candidate
from coatflow.workflows.stages import Stage


@job
def trivial(i: int) -> dict:
    return {"i": i, "formula": "LiF", "status": "passed"}


@job(name="trivial verdict")
def trivial_verdict(ident: dict) -> dict:
    return {**ident, "stage": "trivial", "status": "passed"}


@dataclasses.dataclass
class TrivialStage(Stage):
    """A stage with one verdict job returning a small dict: orchestration only."""

    stage: ClassVar[str] = "trivial"
    name: str = "trivial"

    def plan(self, planner, plan, upstream, verdict):
        return planner.gate(plan, planner.key(upstream, self.stage), self.stage, None,
                            lambda: trivial_verdict(plan.ident))


def _config(kind: str, where: Path) -> CampaignConfig:
    store = {"kind": "embedded", "path": str(where / "store")} if kind == "embedded" else \
        {"kind": "mongodb", "uri": os.environ["COATFLOW_TEST_MONGODB_URI"], "database": f"scaling_{uuid.uuid4().hex[:8]}"}
    return CampaignConfig(store=store, run={"stop_after": "database_filter", "workers": 1,
                                            "work_dir": str(where / "runs")}, base_dir=where)


def _drop(config: CampaignConfig) -> None:
    if config.store.kind == "mongodb":
        import pymongo

        pymongo.MongoClient(config.store.uri).drop_database(config.store.database)


def _planner(config, stores, stage: str) -> FunnelPlanner:
    planner = FunnelPlanner(config, stores.jobs)
    if stage == "trivial":
        planner.stages = [TrivialStage()]
    return planner


def coatflow_path(n: int, kind: str, stage: str = "trivial") -> dict[str, float]:
    lif = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5] * 3])
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(kind, Path(tmp))
        stores = CampaignStores(config).connect()
        try:
            cands = [Candidate(f"bench-{i}", "LiF", "benchmark", lif) for i in range(n)]
            planner = _planner(config, stores, stage)
            t0 = time.perf_counter()
            report = run_plans((planner.plan(c) for c in cands), stores.jobs, Path(tmp) / "runs")
            t_run = time.perf_counter() - t0
            assert report.jobs_run == n and not report.errors, report.errors[:3]
            campaign = CampaignPlan(config, _planner(config, stores, stage), cands, [])
            t0 = time.perf_counter()
            assert build_candidates(stores, campaign) == n
            t_build = time.perf_counter() - t0
            t0 = time.perf_counter()
            again_planner = _planner(config, stores, stage)
            again = run_plans((again_planner.plan(c) for c in cands), stores.jobs, Path(tmp) / "runs")
            assert build_candidates(stores, CampaignPlan(config, again_planner, cands, [])) == 0
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
    ap.add_argument("--stage", choices=["trivial", "database_filter"], default="trivial")
    args = ap.parse_args()
    rows = []
    print(f"store: {args.kind}; stage: {args.stage}; seconds per candidate (one verdict job each)")
    print(f"{'N':>6} {'plan+run':>9} {'builder':>9} {'coatflow':>9} {'rerun':>8} {'bare':>8} {'ratio':>6}")
    for n in args.n:
        c = coatflow_path(n, args.kind, args.stage)
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

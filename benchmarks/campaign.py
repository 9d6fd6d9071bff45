"""Run the example campaign and print where the time goes.

    python benchmarks/campaign.py [--store DIR]

Run it twice on the same store: the second run must show zero new calculator work.
Calculator time is measured around ASE's ``Calculator.get_property`` (every calculator
coatflow runs locally, CHGNet and GPAW alike, is an ASE calculator).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from ase.calculators.calculator import BaseCalculator

from coatflow.launchers.config import CampaignConfig
from coatflow.launchers.local import run_campaign
from coatflow.launchers.stores import CampaignStores

_calc = {"seconds": 0.0, "calls": 0, "depth": 0}
_original = BaseCalculator.get_property


def _timed_get_property(self, *args, **kwargs):
    _calc["depth"] += 1
    t0 = time.perf_counter()
    try:
        return _original(self, *args, **kwargs)
    finally:
        _calc["depth"] -= 1
        if _calc["depth"] == 0:
            _calc["seconds"] += time.perf_counter() - t0
            _calc["calls"] += 1


def _counts(config) -> dict:
    stores = CampaignStores(config).connect()
    try:
        return {"jobs": stores.jobs.docs_store.count(), "blobs": stores.jobs.additional_stores["data"].count(),
                "candidates": stores.candidates.count()}
    finally:
        stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="store folder (default: a new temporary one)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    base = Path(args.store or tempfile.mkdtemp(prefix="coatflow-bench-")).resolve()
    config = CampaignConfig(store={"path": str(base / "store")}, run={"work_dir": str(base / "runs")})
    before = _counts(config)
    BaseCalculator.get_property = _timed_get_property
    t0 = time.perf_counter()
    report, updated = run_campaign(config)
    wall = time.perf_counter() - t0
    BaseCalculator.get_property = _original
    after = _counts(config)
    overhead = wall - _calc["seconds"]
    print(f"store                    {base / 'store'}")
    print(f"candidates               {report.candidates}")
    print(f"wall time                {wall:8.1f} s")
    print(f"inside calculators       {_calc['seconds']:8.1f} s  ({_calc['calls']} energy/force calls)")
    print(f"orchestration overhead   {overhead:8.1f} s  ({100 * overhead / wall:.1f} % of wall time)")
    per_job = overhead / report.jobs_run if report.jobs_run else 0.0
    print(f"per-job overhead         {per_job:8.2f} s  (includes model loading and job bookkeeping)")
    print(f"jobs run / failed        {report.jobs_run} / {report.jobs_failed}")
    print("documents written        " + ", ".join(f"{k} +{after[k] - before[k]}" for k in after))
    print(f"candidate docs updated   {updated}")


if __name__ == "__main__":
    main()

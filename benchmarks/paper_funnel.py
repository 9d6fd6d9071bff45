"""The paper's anode screen at Materials Project scale, offline: every Li-M-O ternary of the shipped MP snapshot.

    nice -n 10 python benchmarks/paper_funnel.py [--out /tmp/paper_funnel] [--stop-after STAGE] [--workers N]
                                                [--config FILE] [--report-only]

The campaign is ``candidates.source: mp_snapshot`` and ``thermo.entries: mp_snapshot`` (docs/mp_snapshot.md),
written to ``OUT/coatflow.yaml`` on the first run (edit it to change thresholds or models; ``--config`` uses
another file), with its store in ``OUT/store``. So ``coatflow query -c OUT/coatflow.yaml`` shows the same table.

The funnel is run one stage further at a time with ``launchers.local.run_campaign`` (``run.stop_after`` set to
each stage in turn): every candidate goes through the cheap stages, and a stage only plans work for the
candidates the stages before it did not fail, so the expensive ones run on the survivors only. Each call's
wall time is that stage's; it is appended to ``OUT/stage_times.json`` after every candidate, so the time of a
run that was killed is kept. Killed and rerun, the campaign's own keys find every finished job in the store:
nothing done is redone. ``--stop-after`` (or the config's ``run.stop_after``) is the last stage to run, e.g.
``interfacial_reactions`` for the cheap stages on the whole pool. ``--together`` runs once up to that stage
instead, so that each candidate goes on as soon as it is relaxed (a run cut short then has candidates at every
stage; the time is recorded under the last stage). ``--report-only`` prints from the store.

Printed: per stage, how many candidates reached it, passed, were not computed (with the commonest reasons;
"no prototype" at bulk relax ends the funnel for that formula) and failed; the wall time of each stage summed
over runs; and every survivor with its value at each stage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import yaml

from pydantic import ValidationError

from coatflow.launchers.config import CampaignConfig, format_validation_error, load_config
from coatflow.launchers.local import run_campaign
from coatflow.launchers.stores import CampaignStores, require_store
from coatflow.workflows.errors import CoatflowError

CONFIG = {"candidates": {"source": "mp_snapshot"}, "thermo": {"entries": "mp_snapshot"}}


def campaign_config(out: Path, path: str | None, workers: int | None):
    """(config, text of OUT/coatflow.yaml still to write or None): ``path``, else OUT/coatflow.yaml if a run
    wrote it (a rerun keeps the file, and with it the keys of the stored work), else a new one, validated
    before anything is written."""
    if path or (out / "coatflow.yaml").exists():
        return load_config(path or out / "coatflow.yaml"), None
    raw = {**CONFIG, "store": {"kind": "embedded", "path": str(out / "store")},
           "run": {"work_dir": str(out / "work"), **({"workers": workers} if workers is not None else {})}}
    try:
        config = CampaignConfig(**raw, base_dir=out)
    except ValidationError as err:
        raise CoatflowError(format_validation_error(err, "of benchmarks/paper_funnel.py")) from None
    return config, "# benchmarks/paper_funnel.py: the anode screen on the shipped MP snapshot\n" + \
        yaml.safe_dump(raw, sort_keys=False)


class StageClock:
    """Wall time per stage, summed over runs, kept in OUT/stage_times.json (updated as the run goes)."""

    def __init__(self, path: Path):
        self.path = path
        self.runs = json.loads(path.read_text())["runs"] if path.exists() else []

    def start(self, stage: str) -> None:
        self.runs.append({"stage": stage, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "seconds": 0.0, "jobs": 0, "finished": False})
        self._t0 = time.perf_counter()
        self.save()

    def tick(self, jobs: int = 0, finished: bool = False) -> None:
        run = self.runs[-1]
        run["seconds"] = round(time.perf_counter() - self._t0, 1)
        run["jobs"] += jobs
        run["finished"] = finished
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"runs": self.runs}, indent=1))
        tmp.replace(self.path)

    def totals(self) -> dict[str, tuple[float, int, int]]:
        """stage -> (seconds, jobs, runs)."""
        out: dict[str, list] = {}
        for r in self.runs:
            t = out.setdefault(r["stage"], [0.0, 0, 0])
            t[0] += r["seconds"]
            t[1] += r["jobs"]
            t[2] += 1
        return {k: tuple(v) for k, v in out.items()}


def run_stages(config, stages: list[str], clock: StageClock) -> None:
    for stage in stages:
        cfg = config.model_copy(update={"run": config.run.model_copy(update={"stop_after": stage})})
        clock.start(stage)
        print(f"[{time.strftime('%H:%M:%S')}] running up to {stage} ...", flush=True)
        report, _ = run_campaign(cfg, on_candidate=lambda mid, label, n: clock.tick(n))
        clock.tick(finished=True)
        print(f"    {report.jobs_run} jobs in {clock.runs[-1]['seconds']:.0f} s"
              + (f", {report.jobs_failed} failed" if report.jobs_failed else ""), flush=True)
        for err in report.errors[:10]:
            print(f"    job failed: {err}")


def _value(summary: dict) -> str:
    v = summary.get("value")
    text = "-" if v is None else f"{v:.4g}{(' ' + summary['unit']) if summary.get('unit') else ''}"
    return text if summary["status"] == "passed" else f"{text} ({summary['status']})"


def funnel_counts(docs: list[dict], stages: list[str]) -> list[dict]:
    """Per stage: reached, passed, not computed (with reasons), failed."""
    rows = []
    for stage in stages:
        verdicts = [d["stages"][stage] for d in docs if stage in d["stages"]]
        status = Counter(v["status"] for v in verdicts)
        reasons = Counter((v.get("reason") or "").split(":")[0][:70] for v in verdicts if v["status"] == "not_computed")
        rows.append({"stage": stage, "reached": len(verdicts), "passed": status["passed"],
                     "not_computed": status["not_computed"], "failed": status["failed"], "reasons": reasons})
    return rows


def survivors(docs: list[dict], last: str) -> list[dict]:
    """Candidates whose last stage run has a verdict that is not failed (not computed counts, and is shown)."""
    return sorted((d for d in docs if last in d["stages"] and d.get("failed_stage") is None),
                  key=lambda d: d["formula"])


def report(config, stages: list[str], clock: StageClock) -> None:
    stores = CampaignStores(config).connect()
    try:
        docs = list(stores.candidates.query({}, properties={"_id": 0}))
    finally:
        stores.close()
    times = clock.totals()  # a --together run's time sits under its last stage
    print(f"\n{len(docs)} Li-M-O ternaries of the MP snapshot")
    print(f"{'stage':24s} {'reached':>8s} {'passed':>7s} {'not comp.':>9s} {'failed':>7s} {'wall (s)':>9s} "
          f"{'jobs':>6s} {'runs':>5s}")
    for r in funnel_counts(docs, stages):
        s, n, k = times.get(r["stage"], (0.0, 0, 0))
        print(f"{r['stage']:24s} {r['reached']:8d} {r['passed']:7d} {r['not_computed']:9d} {r['failed']:7d} "
              f"{s:9.0f} {n:6d} {k:5d}")
        for why, c in r["reasons"].most_common(4):
            print(f"{'':26s}not computed: {why} ({c})")
    total = sum(t[0] for t in times.values())
    print(f"measured wall time, all stages and runs: {total:.0f} s ({total / 3600:.2f} h)")
    alive = survivors(docs, stages[-1])
    print(f"\n{len(alive)} candidates have a verdict at {stages[-1]} and failed no stage:")
    for d in alive:
        vals = "; ".join(f"{s} {_value(d['stages'][s])}" for s in stages if s in d["stages"] and s != "database_filter")
        print(f"  {d['formula']:12s} {vals}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/paper_funnel", help="folder of the config, store and stage times")
    parser.add_argument("--config", default=None, help="config file (default: OUT/coatflow.yaml, written once)")
    parser.add_argument("--stop-after", default=None, help="last stage to run (default: the config's run.stop_after, "
                                                           "else every stage)")
    parser.add_argument("--workers", type=int, default=None, help="run.workers of a new OUT/coatflow.yaml")
    parser.add_argument("--together", action="store_true",
                        help="one run up to the last stage: each candidate goes on as soon as it is relaxed (partial "
                             "results sooner); its time is recorded under the last stage")
    parser.add_argument("--report-only", action="store_true", help="print from the store; run nothing")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    out = Path(args.out).resolve()
    try:
        config, text = campaign_config(out, args.config, args.workers)
        names = [s.stage for s in config.stages()]
        last = args.stop_after or config.run.stop_after or names[-1]
        if last not in names:
            raise CoatflowError(f"--stop-after {last} is not a stage of the funnel ({', '.join(names)})")
        if args.report_only:
            require_store(config)
    except CoatflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stages = names[:names.index(last) + 1]
    out.mkdir(parents=True, exist_ok=True)
    if text is not None:
        (out / "coatflow.yaml").write_text(text)
    clock = StageClock(out / "stage_times.json")
    if not args.report_only:
        run_stages(config, stages[-1:] if args.together else stages, clock)
    report(config, stages, clock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``coatflow`` command: init | run | build | query."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings

from coatflow.launchers import dendrite
from coatflow.launchers.attempts import print_attempts
from coatflow.launchers.config import DEFAULT_CONFIG_NAME, load_config, write_default_config
from coatflow.launchers.fireworks import resume, status, submit
from coatflow.launchers.local import build_all, run_campaign
from coatflow.launchers.report import write_report
from coatflow.launchers.stores import CampaignStores, require_store
from coatflow.workflows.builders import newest_by_formula, rank_candidates
from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.programmes import ALL_STAGES as STAGES


def _cmd_init(args) -> int:
    path = write_default_config(args.path, args.programme.replace("-", "_"))
    print(f"wrote {path}")
    return 0


def _cmd_run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


    config = load_config(args.config)
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=False)
    state = {}

    def on_start(n_candidates):
        console.print(f"{n_candidates} candidates; stored work is reused, only missing jobs run")
        state["task"] = progress.add_task("funnel", total=n_candidates)

    def on_candidate(material_id, label, n_done):
        progress.update(state["task"], advance=1, description=f"{material_id}: {label}")

    with progress:
        report, updated = run_campaign(config, on_start, on_candidate)
    console.print(f"ran {report.jobs_run} jobs in {report.wall_time:.1f} s; {updated} candidate documents updated")
    for err in report.errors:
        console.print(f"[red]job failed[/red] {err}")
    if report.errors:
        console.print("run `coatflow run` again to resume the failed jobs")
    _print_table(config)
    if config.potential_maps.stacks:
        _print_maps(config)
    print(f"draw the figures: coatflow report{f' -c {args.config}' if args.config else ''} --out coatflow_report")
    return 1 if report.errors else 0


def _cmd_report(args) -> int:
    write_report(load_config(args.config), args.out)
    return 0


def _cmd_build(args) -> int:

    n_candidates, n_maps = build_all(load_config(args.config))
    print(f"{n_candidates} candidate documents updated")
    print(f"{n_maps} potential-map stacks updated")
    return 0


def _query_docs(config) -> list[dict]:

    stores = CampaignStores(config).connect()
    try:
        docs = list(stores.candidates.query({}, properties={"_id": 0}))
    finally:
        stores.close()
    return rank_candidates(docs)


def _print_table(config) -> None:
    from rich.console import Console
    from rich.table import Table

    docs = _query_docs(config)
    present = config.ordered([s for s in STAGES if any(s.stage in d["stages"] for d in docs)])
    table = Table(title="coatflow candidates (ranked)")
    surf = [k for k, col in (("ionization_potential", "IP eV"), ("work_function", "WF eV")) if any(d.get(k) for d in docs)]
    for col in ("#", "material", "formula", *(s.stage for s in present), *[{"ionization_potential": "IP eV", "work_function": "WF eV"}[k]
                                                         for k in surf], "furthest stage"):
        table.add_column(col)
    mark = {"passed": "[green]pass[/green]", "failed": "[red]FAIL[/red]", "not_computed": "[yellow]n/c[/yellow]"}
    for i, d in enumerate(docs, 1):
        cells = []
        for s in present:
            st = d["stages"].get(s.stage)
            if st is None:
                cells.append("")
                continue
            cells.append(f"{s.value_text(st)}{mark[st['status']]}{s.note(st.get('details') or {})}")
        formula = d["formula"] + (" (predicted)" if d.get("predicted") else "")
        cells += ["" if d.get(k) is None else f"{d[k]:.2f}" for k in surf]
        table.add_row(str(i), d["material_id"], formula, *cells, d.get("failed_stage") and
                      f"failed at {d['failed_stage']}" or (d.get("furthest_stage") or ""))
    Console().print(table)


def _map_docs(config) -> list[dict]:

    stores = CampaignStores(config).connect()
    try:
        docs = list(stores.maps.query({}, properties=None))
    finally:
        stores.close()
    for d in docs:
        d.pop("_id", None)
    return sorted(docs, key=lambda d: (d["electrolyte"], d["cathode"], d["state_of_charge"]))


def _print_maps(config) -> None:
    """The interface potential jumps of every stored stack (V; > 0 is a barrier to discharge)."""
    docs = _map_docs(config)
    if not docs:
        print("no potential maps stored (configure potential_maps.stacks and run)")
        return
    print(f"{'electrolyte':<12} {'cathode':<10} {'SOC':>5} {'OCV/V':>6} {'dphi_a/V':>9} {'dphi_c/V':>9}  "
          f"{'grey_a':>6} {'grey_c':>6}  anode / cathode")
    for d in docs:
        print(f"{d['electrolyte']:<12} {d['cathode']:<10} {d['state_of_charge']:>5.2f} {d['ocv']:>6.2f} "
              f"{d['delta_phi_anode']:>+9.2f} {d['delta_phi_cathode']:>+9.2f}  {d['grey_anode']:>6.2f} "
              f"{d['grey_cathode']:>6.2f}  {d['barrier_anode']} / {d['barrier_cathode']}")
        for flag in d.get("flags", []):
            print(f"{'':<12} ! {flag}")


def _cmd_query(args) -> int:
    config = load_config(args.config)
    require_store(config)  # a mistyped store.path is an error, not a new empty store
    if args.maps:
        if args.json:
            print(json.dumps(_map_docs(config), indent=1, default=str))
        else:
            _print_maps(config)
        return 0
    if args.json:
        print(json.dumps(_query_docs(config), indent=1, default=str))
    else:
        _print_table(config)
        _print_fermi_levels(config)
    return 0


def _print_fermi_levels(config) -> None:
    """E_F (eV above the VBM) at both ends of each defect material's stability window."""

    stores = CampaignStores(config).connect()
    try:
        docs = [d["output"] for d in newest_by_formula(stores.jobs.docs_store, "defect_thermo").values()]
    finally:
        stores.close()
    for d in docs:
        w = d["window"]
        print(f"{d['formula']}: E_F = {d['fermi_level_li_rich']:.3f} eV above VBM at {w['reduction_limit']:.2f} V "
              f"(Li-rich), {d['fermi_level_li_poor']:.3f} eV at {w['oxidation_limit']:.2f} V (Li-poor); "
              f"gap {d['band_gap']:.2f} eV, {d['temperature']:g} K")


def _cmd_submit(args) -> int:

    r = submit(load_config(args.config))
    cats = ", ".join(f"{n} {c}" for c, n in sorted(r.categories.items())) or "none"
    print(f"added {r.workflows} workflows, {r.fireworks} fireworks (categories: {cats}); "
          f"{r.stored} candidates already complete in the store, {len(r.in_flight)} already on the LaunchPad")
    return 0


def _cmd_status(args) -> int:

    st = status(load_config(args.config), failed=args.failed)
    states = sorted({s for c in st["counts"].values() for s in c})
    print("\t".join(["stage", *states]))
    for stage, c in sorted(st["counts"].items()):
        print("\t".join([stage, *(str(c.get(s, 0)) for s in states)]))
    for row in st["failed"]:
        print(f"{row['state']} fw {row['fw_id']} {row['name']}: {row['error']}\n    in {row['launch_dir']}")
    print_attempts(load_config(args.config))  # restarted and failed GPAW / force-field jobs (makers/restarts.py)
    return 0


def _cmd_resume(args) -> int:

    rows = resume(load_config(args.config), dry_run=args.dry_run)
    verb = "would rerun" if args.dry_run else "rerun"
    for r in rows:
        print(f"{verb} fw {r['fw_id']} {r['name']} ({r['why']}), {r['restart']}")
    print(f"{len(rows)} jobs {verb}" + ("" if args.dry_run else "; their children run when they complete"))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coatflow", description="Screen coating and interface materials for "
                                "all-solid-state Li batteries.")
    sub = p.add_subparsers(dest="command", required=True)
    dendrite.add_parser(sub)
    init = sub.add_parser("init", help="write a commented default config")
    init.add_argument("path", nargs="?", default=DEFAULT_CONFIG_NAME)
    init.add_argument("--programme", default="anode-coating", choices=["anode-coating", "cathode-coating"],
                      help="the stage list and defaults the config starts from (workflows/programmes.py)")
    init.set_defaults(func=_cmd_init)
    for name, func, helptext in (("run", _cmd_run, "run the campaign locally into the configured store"),
                                 ("build", _cmd_build, "rebuild the candidates collection from job documents"),
                                 ("query", _cmd_query, "print the ranked candidates"),
                                 ("submit", _cmd_submit, "add the campaign to the FireWorks LaunchPad"),
                                 ("status", _cmd_status, "LaunchPad jobs by stage and state"),
                                 ("resume", _cmd_resume, "rerun failed and lost LaunchPad jobs"),
                                 ("report", _cmd_report, "draw the campaign's figures into an HTML page")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("-c", "--config", default=None, help=f"campaign config (default: ./{DEFAULT_CONFIG_NAME} "
                        "if present, else built-in defaults)")
        sp.set_defaults(func=func)
    sub.choices["query"].add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub.choices["query"].add_argument("--maps", action="store_true",
                                      help="print the interface potential jumps of the potential-map stacks")
    sub.choices["status"].add_argument("--failed", action="store_true", help="list failed and lost jobs")
    sub.choices["resume"].add_argument("--dry-run", action="store_true", help="only list what would be rerun")
    sub.choices["report"].add_argument("--out", default="coatflow_report", help="folder for index.html and figures")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.WARNING)
    try:
        return args.func(args)
    except (CoatflowError, AnalysisError) as exc:  # bad input: one line, rc 2
        print(f"coatflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coatflow: interrupted; completed jobs are stored, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

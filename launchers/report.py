"""``coatflow report``: the campaign's figures, drawn from what the store holds, as one page a browser opens.

``write_report(config, out_dir)`` reads the configured store (the ranked ``candidates`` collection, the
verdicts' details, the NEB hops, surface and defect documents, the potential maps and the relaxed energies of
the competing phases) and writes ``out_dir/index.html`` plus every figure as PNG and SVG (matplotlib, Agg).
Nothing is recomputed: each figure plots stored numbers; a phase diagram (pymatgen ``PhaseDiagram`` +
``PDPlotter``) and the reaction-energy curve of a pair (``InterfacialReactivity.get_kinks``) are built from
the stored relaxed energies, on the entries the stages used. In a cathode-coating campaign the reaction map
(figure 11) lays out the stored pair energies of the cathode_compatibility and interfacial_reactions verdicts,
coating against cathode state and electrolyte, with a table of the products beside it. A figure whose data is not
stored is left out, with one line saying why (on the page and on stdout).

Each figure has a ``*_data`` function returning the arrays it plots (tests compare them with the store) and
a ``draw_*`` function drawing exactly those arrays. The page's table is the ranked table of
``coatflow query`` (``rank_candidates`` and each stage's ``value_text``). See docs/report.md.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report never opens a window

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from jobflow import OutputReference  # noqa: E402
from pymatgen.core import Composition  # noqa: E402

from coatflow.launchers.stores import CampaignStores  # noqa: E402
from coatflow.workflows.analysis import AnalysisError, thermo  # noqa: E402
from coatflow.workflows.builders import newest_by_formula, rank_candidates  # noqa: E402
from coatflow.workflows.campaign import FunnelPlanner  # noqa: E402
from coatflow.workflows.candidates import load_candidates  # noqa: E402
from coatflow.workflows.errors import CoatflowError  # noqa: E402
from coatflow.workflows.phase_diagrams import entries_on_scale  # noqa: E402
from coatflow.workflows.reference_data import competing_phases, data_path, snapshot_row  # noqa: E402
from coatflow.workflows.programmes import ALL_STAGES as STAGES  # noqa: E402

COLORS = {"passed": "tab:green", "failed": "tab:red", "not_computed": "tab:orange"}
#: the product classes of ``thermo.conduction_class`` (docs/cathode_coating.md); "conducting": a stored document from
#: before the split (``PairReaction.product_class``), metallic or mixed-conducting
CLASS_COLORS = {"insulating": "tab:green", "metallic": "tab:red", "mixed-conducting": "tab:purple",
                "conducting": "tab:red", "unknown": "tab:gray"}


class Missing(Exception):
    """A figure's data is not in the store; the message says what is missing."""


def _number(text: str | None, pattern: str) -> float | None:
    """The number after ``pattern`` in a stored criterion, e.g. 'G_VRH >= 35 GPa' -> 35."""
    m = re.search(pattern + r"\s*(-?[\d.]+)", text or "")
    return float(m.group(1)) if m else None


def _funnel_rows(rows: list[dict]) -> list[dict]:
    """Candidate rows of the funnel (materials computed only for their surfaces have no stages)."""
    return [r for r in rows if r.get("source") != "ip_materials"]


# --- stored data --------------------------------------------------------------------------------------


class StoredCampaign:
    """Read-only access to what the report draws; everything is read from the configured store."""

    def __init__(self, config):
        self.config = config
        self.stores = CampaignStores(config).connect()
        self.rows = rank_candidates(list(self.stores.candidates.query({}, properties={"_id": 0})))
        self.jobs = self.stores.jobs.docs_store

    def close(self) -> None:
        self.stores.close()

    def hop_docs(self, material_id: str) -> dict[int, dict]:
        """hop label -> newest stored CI-NEB result of the material (migration_barrier stage)."""
        out: dict[int, dict] = {}
        for d in self.jobs.query({"metadata.coatflow.material_id": material_id,
                                  "metadata.coatflow.stage": "migration_barrier"},
                                 properties=["output", "completed_at"]):
            o = d.get("output")
            if isinstance(o, dict) and "energy_profile" in o and "hop_label" in o:
                old = out.get(o["hop_label"])
                if old is None or (d.get("completed_at") or "") > old["_at"]:
                    out[o["hop_label"]] = {**o, "_at": d.get("completed_at") or ""}
        return out

    def outputs(self, task: str) -> dict[str, dict]:
        """formula -> newest stored output of a side-programme task (surface_summary, defect_thermo)."""
        return {f: d["output"] for f, d in newest_by_formula(self.jobs, task).items()}

    def potential(self, calc_uuid: str) -> dict:
        """The stored single point of a slab, with its planar-average potential loaded from the data store."""
        return self.stores.jobs.get_output(calc_uuid, load=True)

    def maps(self) -> list[dict]:
        docs = [{k: v for k, v in d.items() if k != "_id"} for d in self.stores.maps.query({})]
        return sorted(docs, key=lambda d: (d["electrolyte"], d["cathode"], d["state_of_charge"]))

    def thermo_entries(self) -> dict[str, ThermoInputs]:
        """material_id -> the stored relaxed energies the phase-diagram stages of the current config read.

        The planner names the relaxations (nothing runs; candidates are planned up to the interfacial stage,
        or ``run.stop_after`` if earlier); those not stored are listed as missing.
        """
        cfg = self.config
        if cfg.thermo.entries != "local":
            raise Missing(f"thermo.entries is '{cfg.thermo.entries}': the report draws phase diagrams and reaction "
                          "curves of local (stored) relaxed energies only")
        names = [s.stage for s in STAGES]
        last = min(names.index("interfacial_reactions"), names.index(cfg.run.stop_after or names[-1]))
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"stop_after": names[last]})})
        planner = FunnelPlanner(cfg, self.stores.jobs, self.stores.cache)
        wanted = {r["material_id"] for r in self.rows if "phase_stability" in r.get("stages", {})}
        source = {"kind": "local", "backend": cfg.bulk_relax.backend}
        out = {}
        for cand in load_candidates(cfg, self.stores.cache):
            if cand.material_id not in wanted:
                continue
            try:
                memo = planner.plan(cand).__dict__.get("_thermo_memo", {})
            except (CoatflowError, AnalysisError):  # a candidate the config can no longer plan: no thermo figures
                continue
            docs = {k: v[0] for k, v in memo.items()}
            stored = {k: v for k, v in docs.items() if v is not None and not isinstance(v, OutputReference)}
            if "candidate" not in stored:
                continue
            cand_entry, entries = entries_on_scale(stored.pop("candidate"), stored, source)
            missing = {pid: {sp["element"] for site in competing_phases()[pid]["sites"] for sp in site["species"]}
                       for pid in docs if pid != "candidate" and pid not in stored}
            out[cand.material_id] = ThermoInputs(cand_entry, entries, missing)
        return out


@dataclass
class ThermoInputs:
    """A candidate's relaxed-energy entry, its stored competing entries, and the phases not stored (their elements)."""

    candidate: object
    entries: list
    missing: dict[str, set[str]]

    def complete_for(self, elements) -> bool:
        els = {str(e) for e in elements}
        return not any(m <= els for m in self.missing.values())


# --- 1. funnel ----------------------------------------------------------------------------------------


def funnel_data(rows: list[dict], order=STAGES) -> dict:
    """Candidates remaining after each stage (those with a verdict that did not fail), and who fell out where;
    ``order``: the stages in the order the campaign runs them (``CampaignConfig.ordered``)."""
    rows = _funnel_rows(rows)
    stages = [s.stage for s in order if any(s.stage in r["stages"] for r in rows)]
    remaining, failed, pending, criteria = [], {}, {}, []
    for s in stages:
        remaining.append(sum(1 for r in rows if s in r["stages"] and r["stages"][s]["status"] != "failed"))
        failed[s] = [r["material_id"] for r in rows if r.get("failed_stage") == s]
        crit = [r["stages"][s].get("criterion") for r in rows if s in r["stages"] and r["stages"][s].get("criterion")]
        criteria.append(max(set(crit), key=crit.count) if crit else "")
    for r in rows:  # not failed, but no verdict past its furthest stage yet (not run, or stop_after)
        if r.get("failed_stage") is None and r.get("furthest_stage") != (stages[-1] if stages else None):
            pending.setdefault(r.get("furthest_stage") or "none", []).append(r["material_id"])
    return {"labels": ["candidates", *stages], "counts": [len(rows), *remaining], "criteria": ["", *criteria],
            "failed": failed, "pending": pending}


def draw_funnel(d: dict) -> Figure:
    fig = Figure(figsize=(max(8.0, 1.4 * len(d["counts"])), 5.2))
    ax = fig.add_subplot()
    x = np.arange(len(d["counts"]))
    ax.bar(x, d["counts"], color=["tab:blue", *["tab:green"] * (len(x) - 1)])
    for i, (n, s) in enumerate(zip(d["counts"], d["labels"])):
        out = d["failed"].get(s, [])
        ax.text(i, n, f"{n}" + (f"\n−{len(out)}" if out else ""), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [s + ("\n" + textwrap.fill(c, 18, break_long_words=False) if c else "") for s, c in zip(d["labels"], d["criteria"])],
                  fontsize=7)
    ax.set_ylabel("candidates remaining")
    ax.set_ylim(0, max(d["counts"], default=1) * 1.2 + 0.5)
    ax.set_title("Screening funnel: candidates remaining after each stage (−n: failed there)")
    waiting = sum(len(v) for v in d["pending"].values())
    if waiting:
        ax.text(0.99, 0.97, f"{waiting} candidate(s) not failed but without a verdict past their furthest stage "
                "(not run yet or run.stop_after)", transform=ax.transAxes, ha="right", va="top", fontsize=7)
    fig.tight_layout()
    return fig


# --- 2. shear modulus ---------------------------------------------------------------------------------


def _reference_moduli() -> dict[str, float]:
    """Reduced formula -> bundled PBE G_VRH (GPa, Materials Project via matcalc; data/elastic_reference.json.gz)."""

    with gzip.open(data_path("elastic_reference.json.gz").open("rb"), "rt") as f:
        mats = json.load(f)["materials"]
    return {Composition(m["formula"]).reduced_formula: float(m["g_vrh"]) for m in mats}


def shear_data(rows: list[dict], references: list[str] = ()) -> dict:
    """G_VRH of every candidate with a value; ``references`` (Li metal, the interfacial partners): their bundled
    Materials Project values (polymorph range, data/mp_snapshot.json.gz) where the snapshot has one."""
    rows = [r for r in _funnel_rows(rows) if (r["stages"].get("shear_modulus") or {}).get("value") is not None]
    if not rows:
        raise Missing("no candidate row has a shear_modulus value (none reached the stage, or none computed for "
                      "this config)")
    rows = sorted(rows, key=lambda r: r["stages"]["shear_modulus"]["value"])
    ref = _reference_moduli()
    sm = [r["stages"]["shear_modulus"] for r in rows]
    return {"material_ids": [r["material_id"] for r in rows], "formulas": [r["formula"] for r in rows],
            "g_vrh": [s["value"] for s in sm], "status": [s["status"] for s in sm],
            "backend": [s.get("backend") for s in sm],
            "threshold": _number(sm[0].get("criterion"), r"G_VRH >="),
            "dft": [ref.get(Composition(r["formula"]).reduced_formula) for r in rows],
            "references": {f: [min(g), max(g)] for f in references
                           if (g := (snapshot_row(f) or {}).get("g_vrh"))}}


def draw_shear(d: dict) -> Figure:
    refs = d.get("references") or {}
    fig = Figure(figsize=(8, 0.45 * (len(d["g_vrh"]) + len(refs)) + 1.8))
    ax = fig.add_subplot()
    y = np.arange(len(d["g_vrh"]))
    ax.barh(y, d["g_vrh"], color=[COLORS[s] for s in d["status"]], height=0.6, label="this campaign (model)")
    yr = len(y) + np.arange(len(refs))
    for yy, (lo, hi) in zip(yr, refs.values()):
        ax.plot([lo, hi], [yy, yy], color="tab:gray", lw=6, solid_capstyle="butt", marker="|", ms=12)
    if refs:
        ax.plot([], [], color="tab:gray", lw=6, label="references: MP PBE polymorph range (bundled)")
    dft = [(i, g) for i, g in enumerate(d["dft"]) if g is not None]
    if dft:
        ax.scatter([g for _, g in dft], [i for i, _ in dft], marker="D", color="k", zorder=3,
                   label="PBE (Materials Project, bundled)")
    if d["threshold"] is not None:
        ax.axvline(d["threshold"], color="k", ls="--", lw=1, label=f"threshold {d['threshold']:g} GPa")
    ax.set_yticks(np.concatenate([y, yr]), [f"{f} ({m})" for f, m in zip(d["formulas"], d["material_ids"])]
                  + [f"{f} (reference)" for f in refs], fontsize=8)
    ax.set_xlabel("G_VRH (GPa)")
    ax.set_title("Shear modulus G_VRH (green passed, red failed)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.5 / (0.75 * fig.get_figheight())), ncol=2)
    fig.tight_layout()
    return fig


# --- 3. electrochemical windows -----------------------------------------------------------------------


def window_data(rows: list[dict]) -> dict:
    rows = [r for r in _funnel_rows(rows)
            if ((r["stages"].get("stability_window") or {}).get("details") or {}).get("reduction_limit") is not None]
    if not rows:
        raise Missing("no candidate row has stability_window limits (none reached the stage, or none computed "
                      "for this config)")
    sw = [r["stages"]["stability_window"] for r in rows]
    crit = sw[0].get("criterion")
    return {"material_ids": [r["material_id"] for r in rows], "formulas": [r["formula"] for r in rows],
            "reduction": [s["details"]["reduction_limit"] for s in sw],
            "oxidation": [s["details"]["oxidation_limit"] for s in sw], "status": [s["status"] for s in sw],
            "survivor": [r.get("failed_stage") is None for r in rows],
            "reduction_max": _number(crit, r"reduction <"), "oxidation_min": _number(crit, r"oxidation >")}


def draw_windows(d: dict) -> Figure:
    fig = Figure(figsize=(12, 5))
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    ax.scatter(d["reduction"], d["oxidation"], c=[COLORS[s] for s in d["status"]], zorder=3)
    for x, y, f in zip(d["reduction"], d["oxidation"], d["formulas"]):
        ax.annotate(f, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    if d["reduction_max"] is not None:
        ax.axvline(d["reduction_max"], color="k", ls="--", lw=1, label=f"reduction < {d['reduction_max']:g} V")
    if d["oxidation_min"] is not None:
        ax.axhline(d["oxidation_min"], color="k", ls=":", lw=1, label=f"oxidation > {d['oxidation_min']:g} V")
    ax.set_xlabel("reduction limit (V vs Li/Li⁺)")
    ax.set_ylabel("oxidation limit (V vs Li/Li⁺)")
    ax.set_title("Electrochemical windows of every candidate")
    ax.legend(fontsize=8)
    surv = [i for i, s in enumerate(d["survivor"]) if s]
    y = np.arange(len(surv))
    bx.barh(y, [d["oxidation"][i] - d["reduction"][i] for i in surv], left=[d["reduction"][i] for i in surv],
            color="tab:green", height=0.6)
    bx.set_yticks(y, [d["formulas"][i] for i in surv], fontsize=8)
    bx.set_xlabel("potential (V vs Li/Li⁺)")
    bx.set_title("Windows of the candidates no stage failed")
    if not surv:
        bx.text(0.5, 0.5, "no surviving candidate", ha="center", transform=bx.transAxes)
    fig.tight_layout()
    return fig


# --- 4. interfacial reactions -------------------------------------------------------------------------


def interfacial_data(row: dict, inputs: ThermoInputs | None) -> dict:
    """Per computed pair: the stored most exothermic point and products, and the reaction-energy curve
    (InterfacialReactivity kinks on the stored relaxed energies the stage used)."""
    from pymatgen.analysis.interface_reactions import InterfacialReactivity


    st = row["stages"].get("interfacial_reactions")
    if st is None:
        raise Missing("no interfacial_reactions verdict stored")
    det = st.get("details") or {}
    pairs = {k: v for k, v in (det.get("pairs") or {}).items() if v.get("status") == "computed"}
    if not pairs:
        raise Missing(f"no computed pair ({st.get('reason') or 'none stored'})")
    gap_min = _number(st.get("criterion"), r"gap <")
    gaps = {f: g.get("band_gap") for f, g in (det.get("band_gaps") or {}).items()}
    out = {}
    for name, p in pairs.items():
        a, b = (s.strip() for s in name.split("|"))
        curve, els = None, {*Composition(a).elements, *Composition(b).elements}
        if inputs is not None and inputs.complete_for(els):
            pool = thermo.in_chemsys([*inputs.entries, inputs.candidate], els)
            ir = InterfacialReactivity(Composition(a), Composition(b), thermo.phase_diagram(pool), norm=True,
                                       use_hull_energy=True)
            kinks = list(ir.get_kinks())
            curve = {"x": [float(k[1]) for k in kinks], "energy": [float(k[2]) for k in kinks],
                     "products": [sorted({c.reduced_formula for c in k[3].products
                                          if not np.isclose(k[3].get_coeff(c), 0)}) for k in kinks]}
        prods = p.get("products") or []
        pg = {**gaps, **{k: v for k, v in (p.get("product_gaps") or {}).items() if v is not None}}
        out[name] = {"mixing_ratio": p["mixing_ratio"], "reaction_energy": p["reaction_energy"],
                     "reaction": p.get("reaction"), "products": prods,
                     "classes": {f: thermo.conduction_class(f, pg.get(f), gap_min) for f in prods},
                     "stored_class": p.get("product_class") or {}, "curve": curve}
    return {"material_id": row["material_id"], "formula": row["formula"], "pairs": out, "gap_min": gap_min,
            "gaps": gaps}


def draw_interfacial(d: dict) -> Figure:
    n = len(d["pairs"])
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, p) in zip(axes, d["pairs"].items()):
        if p["curve"]:
            c = p["curve"]
            ax.plot(c["x"], c["energy"], "o-", color="navy", ms=4, zorder=1)
            for x, e, prods in zip(c["x"], c["energy"], c["products"]):
                if e < -1e-6:
                    cls = [thermo.conduction_class(f, d["gaps"].get(f), d["gap_min"]) for f in prods]
                    ax.annotate(", ".join(prods), (x, e), xytext=(0, -12), textcoords="offset points", fontsize=6,
                                ha="center", color=CLASS_COLORS[_worst(cls)])
        ax.scatter([p["mixing_ratio"]], [p["reaction_energy"]], marker="*", s=160, color="red", zorder=3)
        label = "; ".join(f"{f}: {c}" for f, c in p["classes"].items()) or "no reaction"
        ax.set_title(f"{name}\nmin {p['reaction_energy']:.3f} eV/atom at x = {p['mixing_ratio']:.2f}", fontsize=8)
        ax.text(0.02, 0.02, label, transform=ax.transAxes, fontsize=6, va="bottom",
                color=CLASS_COLORS[_worst(list(p["classes"].values()))] if p["classes"] else "k")
        a, b = (s.strip() for s in name.split("|"))
        ax.set_xlabel(f"x in x {a} + (1−x) {b}", fontsize=8)
        ax.set_ylabel("reaction energy (eV/atom)", fontsize=8)
        ax.set_xlim(-0.05, 1.05)
        if p["reaction_energy"] > -1e-6 and (not p["curve"] or min(p["curve"]["energy"]) > -1e-6):
            ax.set_ylim(-0.05, 0.05)  # no reaction: round-off of the hull would set the scale otherwise
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"Interfacial reactions of {d['formula']} ({d['material_id']}); ★ stored minimum; products: "
                 "green insulating, purple mixed-conducting, red metallic, grey unknown", fontsize=9)
    fig.tight_layout()
    return fig


def _worst(classes: list[str]) -> str:
    for c in ("metallic", "conducting", "mixed-conducting", "unknown"):
        if c in classes:
            return c
    return "insulating"


# --- 5. Li adsorption ---------------------------------------------------------------------------------


def adsorption_data(row: dict) -> dict:
    st = row["stages"].get("li_adsorption")
    if st is None:
        raise Missing("no li_adsorption verdict stored")
    det = st.get("details") or {}
    sites = det.get("e_ads") or {}
    if not sites:
        raise Missing(f"no relaxed site stored ({st.get('reason') or 'none'})")
    idx = sorted(sites, key=int)
    surf = det.get("surface") or {}
    unrel = surf.get("sites_not_relaxed") or []
    return {"material_id": row["material_id"], "formula": row["formula"], "sites": [int(i) for i in idx],
            "ml": [sites[i].get("ml") for i in idx], "dft": [sites[i].get("dft") for i in idx],
            "flags": [sites[i].get("flags") or [] for i in idx],
            "chosen": (det.get("site") or {}).get("index"), "value": st.get("value"),
            "threshold": _number(st.get("criterion"), r"E_ads\(min\) <="),
            "unrelaxed_sites": [u["index"] for u in unrel], "unrelaxed": [u.get("e_ads_unrelaxed") for u in unrel],
            "facet": surf.get("miller_index"), "termination": surf.get("termination")}


def draw_adsorption(d: dict) -> Figure:
    fig = Figure(figsize=(max(5.0, 0.6 * (len(d["sites"]) + len(d["unrelaxed_sites"])) + 2), 4))
    ax = fig.add_subplot()
    x = np.arange(len(d["sites"]))
    ml = [np.nan if v is None else v for v in d["ml"]]
    ax.bar(x - 0.2, ml, 0.4, color=["tab:gray" if f else "tab:blue" for f in d["flags"]], label="ML (relaxed)")
    if any(v is not None for v in d["dft"]):
        ax.bar(x + 0.2, [np.nan if v is None else v for v in d["dft"]], 0.4, color="tab:orange", label="DFT")
    if d["unrelaxed_sites"]:
        xu = len(x) + np.arange(len(d["unrelaxed_sites"]))
        ax.scatter(xu, [np.nan if v is None else v for v in d["unrelaxed"]], marker="o", facecolors="none",
                   edgecolors="k", label="not relaxed (single point)")
    if d["chosen"] in d["sites"]:
        i = d["sites"].index(d["chosen"])
        ax.scatter([i], [d["value"] if d["value"] is not None else ml[i]], marker="*", s=200, color="red", zorder=3,
                   label=f"chosen site {d['chosen']}")
    if d["threshold"] is not None:
        ax.axhline(d["threshold"], color="k", ls="--", lw=1, label=f"threshold {d['threshold']:g} eV")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(np.arange(len(d["sites"]) + len(d["unrelaxed_sites"])),
                  [str(s) for s in d["sites"] + d["unrelaxed_sites"]])
    ax.set_xlabel("site index (grey: flagged)")
    ax.set_ylabel("E_ads (eV, vs bulk bcc Li)")
    facet = "".join(str(i) for i in d["facet"]) if d["facet"] else "?"
    ax.set_title(f"Li adsorption on {d['formula']} ({d['material_id']}), ({facet}) termination {d['termination']}",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --- 6. migration -------------------------------------------------------------------------------------


def migration_data(row: dict, hops: dict[int, dict]) -> dict:
    st = row["stages"].get("migration_barrier")
    if st is None:
        raise Missing("no migration_barrier verdict stored")
    det = st.get("details") or {}
    labels = [h["hop_label"] for h in det.get("hops") or [] if h["hop_label"] in hops]
    if not labels:
        raise Missing(f"no stored NEB energy profile ({st.get('reason') or 'no computed hop'})")
    return {"material_id": row["material_id"], "formula": row["formula"], "hops": labels,
            "coordinate": [hops[h]["reaction_coordinate"] for h in labels],
            "energy": [hops[h]["energy_profile"] for h in labels],
            "barrier": [hops[h].get("forward_barrier") for h in labels],
            "converged": [bool(hops[h].get("converged")) for h in labels],
            "length": [hops[h].get("length") for h in labels],
            "e_m": st.get("value"), "dimensionality": det.get("dimensionality"),
            "limiting_hop": det.get("limiting_hop"), "threshold": _number(st.get("criterion"), r"E_m <")}


def draw_migration(d: dict) -> Figure:
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    for h, c, e, b, ok, length in zip(d["hops"], d["coordinate"], d["energy"], d["barrier"], d["converged"],
                                      d["length"]):
        line, = ax.plot(c, e, "o-", ms=3, ls="-" if ok else ":",
                        label=f"hop {h} ({length:.2f} Å){'' if ok else ', unconverged'}"
                        + (" — limiting" if h == d["limiting_hop"] else ""))
        if b is not None and e:
            i = int(np.argmax(e))
            ax.annotate(f"{b:.2f} eV", (c[i], e[i]), xytext=(0, 5), textcoords="offset points", ha="center",
                        fontsize=7, color=line.get_color())
    if d["threshold"] is not None:
        ax.axhline(d["threshold"], color="k", ls="--", lw=1, label=f"threshold {d['threshold']:g} eV")
    ax.set_xlabel("reaction coordinate (Å)")
    ax.set_ylabel("energy relative to the start (eV)")
    em = "–" if d["e_m"] is None else f"{d['e_m']:.2f} eV"
    ax.set_title(f"Li-vacancy CI-NEB of {d['formula']} ({d['material_id']}): E_m = {em}, "
                 f"{d['dimensionality'] or '?'} percolation", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --- 7. slabs -----------------------------------------------------------------------------------------


def slab_data(summary: dict, potential: Callable[[str], dict]) -> dict:
    """The chosen (lowest-energy) termination of a surface summary and its stored planar-average potential."""
    best = summary.get("best")
    if not best:
        raise Missing(f"no slab computed ({'; '.join(summary.get('skipped') or []) or 'none stored'})")
    if not best.get("calc_uuid"):
        raise Missing("the slab document names no calculation holding the potential (calc_uuid)")
    calc = potential(best["calc_uuid"])
    pot = calc.get("potential") if isinstance(calc, dict) else None
    if not pot:
        raise Missing("the planar-average potential of the slab is not in the data store")
    vac = best["vacuum_level"]
    ip = best.get("ionization_potential")
    return {"material_id": summary["material_id"], "formula": summary["formula"],
            "z": list(np.linspace(0, calc["height"], len(pot), endpoint=False)), "potential": list(pot),
            "vacuum_levels": best.get("vacuum_levels") or {}, "vacuum_level": vac,
            "fermi_level": best["fermi_level"], "vbm": None if ip is None else vac - ip,
            "ionization_potential": ip, "work_function": best.get("work_function"), "metallic": best["metallic"],
            "facet": best["miller_index"], "termination": best.get("termination")}


def draw_slab(d: dict) -> Figure:
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot()
    ax.plot(d["z"], d["potential"], color="k", lw=1, label="planar-average electrostatic potential")
    for side, v in d["vacuum_levels"].items():
        ax.axhline(v, color="tab:blue", ls="--", lw=1, label=f"vacuum plateau ({side}) {v:.2f} eV")
    ax.axhline(d["fermi_level"], color="tab:red", lw=1, label=f"Fermi level {d['fermi_level']:.2f} eV")
    x = d["z"][len(d["z"]) // 2]
    if d["vbm"] is not None:
        ax.axhline(d["vbm"], color="tab:green", lw=1, label=f"VBM (bulk-aligned) {d['vbm']:.2f} eV")
        ax.annotate("", (x, d["vbm"]), (x, d["vacuum_level"]), arrowprops={"arrowstyle": "<->", "color": "tab:green"})
        ax.text(x, (d["vbm"] + d["vacuum_level"]) / 2, f" IP {d['ionization_potential']:.2f} eV", color="tab:green",
                fontsize=8, backgroundcolor="white")
    if d["work_function"] is not None:
        x2 = d["z"][len(d["z"]) // 3]
        ax.annotate("", (x2, d["fermi_level"]), (x2, d["vacuum_level"]),
                    arrowprops={"arrowstyle": "<->", "color": "tab:red"})
        ax.text(x2, (d["fermi_level"] + d["vacuum_level"]) / 2, f" WF {d['work_function']:.2f} eV",
                color="tab:red", fontsize=8, backgroundcolor="white")
    ax.set_xlabel("z (Å)")
    ax.set_ylabel("energy (eV)")
    facet = "".join(str(i) for i in d["facet"])
    ax.set_title(f"Slab of {d['formula']} ({d['material_id']}), ({facet}) {d['termination'] or ''}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# --- 8. defects ---------------------------------------------------------------------------------------


def defect_data(doc: dict) -> dict:
    """Formation energies against E_F at both ends of the window (stored e0 and chemical potentials), and the
    stored E_F(μ_Li)."""
    states, fermi = doc.get("charge_states") or [], doc.get("fermi") or []
    if not states or not fermi:
        raise Missing("no charge states or no E_F(μ_Li) stored")
    rich, poor = fermi[0]["chempots"], fermi[-1]["chempots"]
    grid = list(np.linspace(0.0, doc["band_gap"], 101))
    lines = {}
    for s in states:
        shift = -sum(n * (poor.get(el, 0.0) - rich.get(el, 0.0)) for el, n in s["dn"].items())
        lines[f"{s['name']} {s['charge']:+d}"] = {
            "name": s["name"], "charge": s["charge"],
            "li_rich": [s["e0_at_li_rich"] + s["charge"] * e for e in grid],
            "li_poor": [s["e0_at_li_rich"] + shift + s["charge"] * e for e in grid]}
    return {"material_id": doc["material_id"], "formula": doc["formula"], "fermi_grid": grid, "lines": lines,
            "band_gap": doc["band_gap"], "voltage": [p["voltage"] for p in fermi],
            "mu_li": [p["mu_li"] for p in fermi], "fermi_level": [p["fermi_level"] for p in fermi],
            "e_f_rich": doc.get("fermi_level_li_rich"), "e_f_poor": doc.get("fermi_level_li_poor"),
            "temperature": doc.get("temperature")}


def draw_defects(d: dict) -> Figure:
    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 3)
    names = sorted({v["name"] for v in d["lines"].values()})
    color = {n: f"C{i}" for i, n in enumerate(names)}
    for ax, end, ef in ((axes[0], "li_rich", d["e_f_rich"]), (axes[1], "li_poor", d["e_f_poor"])):
        for n in names:
            ls = [v[end] for v in d["lines"].values() if v["name"] == n]
            for v in ls:
                ax.plot(d["fermi_grid"], v, color=color[n], lw=0.6, alpha=0.5)
            ax.plot(d["fermi_grid"], np.min(ls, axis=0), color=color[n], lw=2, label=n)
        if ef is not None:
            ax.axvline(ef, color="k", ls="--", lw=1, label=f"E_F = {ef:.2f} eV")
        ax.set_xlim(0, d["band_gap"])
        ax.set_xlabel("E_F − VBM (eV)")
        ax.set_ylabel("formation energy (eV)")
        ax.set_title(f"{d['formula']} ({d['material_id']}), {end.replace('_', '-')}", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(d["voltage"], d["fermi_level"], "o-", ms=3)
    ax.axhline(0, color="tab:blue", lw=1, label="VBM")
    ax.axhline(d["band_gap"], color="tab:red", lw=1, label=f"CBM (gap {d['band_gap']:.2f} eV)")
    ax.legend(fontsize=7)
    ax.set_xlabel("voltage (V vs Li/Li⁺) = −μ_Li/e")
    ax.set_ylabel("E_F − VBM (eV)")
    sec = ax.secondary_xaxis("top", functions=(lambda v: -v, lambda m: -m))
    sec.set_xlabel("μ_Li (eV)")
    ax.set_title(f"E_F at charge neutrality, {d['temperature']:g} K", fontsize=9)
    fig.tight_layout()
    return fig


# --- 9. potential maps --------------------------------------------------------------------------------


def map_data(docs: list[dict]) -> dict:
    """One stack (electrolyte, cathode): the stored profiles and jumps at each state of charge."""
    d0 = docs[0]
    return {"electrolyte": d0["electrolyte"], "cathode": d0["cathode"],
            "states": [{"soc": d["state_of_charge"], "ocv": d["ocv"], "voltage": d["profile"]["voltage"],
                        "region": d["profile"]["region"], "phi": d["profile"]["phi"], "vbm": d["profile"]["vbm"],
                        "cbm": d["profile"]["cbm"], "electron_level": d["profile"]["electron_level"],
                        "phi_li": d["phi"].get("li", 0.0), "phi_cathode": d["phi"].get("cathode"),
                        "delta_phi_anode": d["delta_phi_anode"], "delta_phi_cathode": d["delta_phi_cathode"],
                        "grey_anode": d["grey_anode"], "grey_cathode": d["grey_cathode"]} for d in docs]}


def _nan(v):
    return [np.nan if x is None else x for x in v]


def draw_map(d: dict) -> Figure:
    n = len(d["states"])
    fig = Figure(figsize=(5 * n, 4.4))
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)).ravel()
    for ax, s in zip(axes, d["states"]):
        v = np.array(s["voltage"], dtype=float)
        lo, hi = float(v.min()), float(v.max())
        pad = max(0.15 * (hi - lo), 0.3)
        ax.axvspan(lo - pad, lo, color="lightsteelblue", alpha=0.5)
        ax.axvspan(hi, hi + pad, color="wheat", alpha=0.5)
        ax.text(lo - pad / 2, 0.98, "Li", transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8)
        ax.text(hi + pad / 2, 0.98, d["cathode"], transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8)
        for x, r in zip(v, s["region"]):
            if r != "electrolyte":
                ax.axvspan(x - 0.01, x + 0.01, color="gray", alpha=0.3, lw=0)
        ax.plot(v, _nan(s["phi"]), color="k", lw=2, label="φ (V)")
        ax.plot(v, _nan(s["vbm"]), color="tab:blue", label="VBM (eV)")
        ax.plot(v, _nan(s["cbm"]), color="tab:red", label="CBM (eV)")
        ax.plot(v, s["electron_level"], color="tab:green", ls="--", label="electron level (eV)")
        ax.plot([lo - pad, lo], [s["phi_li"]] * 2, color="k", lw=2)
        if s["phi_cathode"] is not None:
            ax.plot([hi, hi + pad], [s["phi_cathode"]] * 2, color="k", lw=2)
        ax.set_title(f"SOC {s['soc']:.2f}, OCV {s['ocv']:.2f} V\nΔφ anode {s['delta_phi_anode']:+.2f} V, "
                     f"cathode {s['delta_phi_cathode']:+.2f} V; grey {s['grey_anode']:.2f} / {s['grey_cathode']:.2f} eV",
                     fontsize=8)
        ax.set_xlabel("local −μ_Li/e (V): Li | electrolyte | cathode")
        ax.set_ylabel("potential (V) / energy vs Li E_F (eV)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Li | {d['electrolyte']} | {d['cathode']} (grey: outside the electrolyte's window)", fontsize=10)
    fig.tight_layout()
    return fig


# --- 10. phase diagrams -------------------------------------------------------------------------------


def phase_diagram_data(row: dict, inputs: ThermoInputs | None) -> dict:
    if inputs is None:
        raise Missing("the candidate's relaxed energy is not stored for this config")
    cand, others = inputs.candidate, inputs.entries
    els = cand.composition.elements
    if not inputs.complete_for(els):
        raise Missing(f"relaxations of competing phases not stored: {', '.join(sorted(inputs.missing))}")
    if len(els) > 4:
        raise Missing(f"{len(els)} elements: PDPlotter draws up to quaternary systems")
    pool = thermo.in_chemsys([*others, cand], set(els))
    pd = thermo.phase_diagram(pool)
    return {"material_id": row["material_id"], "formula": row["formula"], "phase_diagram": pd,
            "e_above_hull": float(pd.get_e_above_hull(cand, allow_negative=True)),
            "stored_e_hull": (row["stages"]["phase_stability"].get("value")), "entries": len(pool),
            "stable": sorted(e.composition.reduced_formula for e in pd.stable_entries)}


def draw_phase_diagram(d: dict) -> Figure:
    from pymatgen.analysis.phase_diagram import PDPlotter

    plotter = PDPlotter(d["phase_diagram"], show_unstable=0.1, backend="matplotlib")
    ax = plotter.get_plot(label_unstable=False)  # PDPlotter draws on pyplot's current axes: its own figure
    if d["phase_diagram"].dim < 4:
        ax.set_adjustable("box")  # equal aspect with fixed limits: no 'Ignoring fixed y limits' at each draw
    fig = ax.figure
    ax.set_title(f"Phase diagram of {d['formula']} ({d['material_id']}): E_hull {d['stored_e_hull']} meV/atom "
                 "(stored)", fontsize=9)
    return fig


# --- 11. cathode-coating reaction map -----------------------------------------------------------------


def _partner(key: str) -> str:
    """'LiNbO3 | LiCoO2 charged (CoO2)' -> 'LiCoO2 charged (CoO2)'."""
    return key.split(" | ", 1)[1]


def _stored_classes(pair: dict) -> dict[str, str]:
    """product -> its stored class: ``product_conduction`` (insulating | mixed-conducting | metallic | unknown), or,
    in a document stored before that split, ``product_class`` (insulating | conducting | unknown)."""
    return {f: (pair.get("product_conduction") or {}).get(f) or (pair.get("product_class") or {}).get(f) or "unknown"
            for f in pair.get("products") or []}


def cathode_map_data(rows: list[dict], electrolytes: list[str] = ()) -> dict:
    """The stored reaction energies of every coating with a cathode_compatibility verdict: one column per cathode
    state of that verdict's pairs, then one per partner of the interfacial_reactions verdict (the sulfide
    electrolytes; Li | electrolyte pairs are informational and left out) and per configured ``electrolytes``
    (a column even when no coating reached that stage). A cell is the pair's stored most negative reaction
    energy, its products and their stored classes; a pair not computed, or not reached, is NaN with the reason."""
    rows = [r for r in _funnel_rows(rows) if "cathode_compatibility" in r["stages"]]
    if not rows:
        raise Missing("no cathode_compatibility verdict stored (no candidate reached the stage)")
    columns: dict[str, str] = {}  # label -> 'cathode' | 'electrolyte', in stored order
    pairs_of: list[dict[str, dict[str, dict]]] = []
    for r in rows:
        by_stage = {}
        for stage, kind in (("cathode_compatibility", "cathode"), ("interfacial_reactions", "electrolyte")):
            pairs = ((r["stages"].get(stage) or {}).get("details") or {}).get("pairs") or {}
            by_stage[stage] = {_partner(k): v for k, v in pairs.items() if not k.startswith("Li |")}
            for label in by_stage[stage]:
                columns.setdefault(label, kind)
        pairs_of.append(by_stage)
    for e in electrolytes:
        columns.setdefault(e, "electrolyte")
    labels = sorted(columns, key=lambda c: columns[c] != "cathode")  # cathodes first, each group in stored order
    energy, cells = [], []
    for r, by_stage in zip(rows, pairs_of):
        e_row, c_row = [], []
        for label in labels:
            stage = "cathode_compatibility" if columns[label] == "cathode" else "interfacial_reactions"
            verdict, p = r["stages"].get(stage), by_stage[stage].get(label)
            if p is not None and p.get("status") == "computed":
                cell = {"status": "computed", "reaction_energy": p["reaction_energy"],
                        "mixing_ratio": p.get("mixing_ratio"), "reaction": p.get("reaction"),
                        "products": list(p.get("products") or []), "classes": _stored_classes(p),
                        "gaps": p.get("product_gaps") or {}, "reason": p.get("reason")}
            elif p is not None:
                cell = {"status": "not_computed", "reason": p.get("reason") or "not computed"}
            elif verdict is None:
                cell = {"status": "not_computed", "reason": f"no {stage} verdict: " + (
                    f"failed at {r['failed_stage']}" if r.get("failed_stage") else
                    f"not run (furthest stage {r.get('furthest_stage')})")}
            else:
                cell = {"status": "not_computed", "reason": f"no such pair in the {stage} verdict"
                        + (f" ({verdict['reason']})" if verdict.get("reason") and verdict["status"] == "not_computed"
                           else "")}
            cell["marked"] = sorted({c for c in cell.get("classes", {}).values()
                                     if c in ("metallic", "mixed-conducting", "conducting")})
            e_row.append(cell["reaction_energy"] if cell["status"] == "computed" else np.nan)
            c_row.append(cell)
        energy.append(e_row)
        cells.append(c_row)
    crit = rows[0]["stages"]["cathode_compatibility"].get("criterion")
    return {"material_ids": [r["material_id"] for r in rows], "formulas": [r["formula"] for r in rows],
            "columns": labels, "kinds": [columns[c] for c in labels], "energy": energy, "cells": cells,
            "threshold": _number(crit, r">="),
            "status": {s: [(r["stages"].get(s) or {}).get("status") for r in rows]
                       for s in ("cathode_compatibility", "interfacial_reactions")}}


def draw_cathode_map(d: dict) -> Figure:
    e = np.ma.masked_invalid(np.array(d["energy"], dtype=float))
    n, m = e.shape
    fig = Figure(figsize=(max(6.0, 1.05 * m + 3.0), 0.55 * n + 2.6))
    ax = fig.add_subplot()
    # white (no reaction) to dark blue, so that the class boxes stay visible; grey: not computed
    cmap = matplotlib.colormaps["Blues_r"].with_extremes(bad="lightgray")
    low = min(float(e.min()) if e.count() else 0.0, d["threshold"] if d["threshold"] is not None else 0.0)
    low = min(low, -1e-3)
    im = ax.imshow(e, cmap=cmap, vmin=low, vmax=0.0, aspect="auto")
    for i, row in enumerate(d["cells"]):
        for j, c in enumerate(row):
            if c["status"] != "computed":
                ax.text(j, i, "n/c", ha="center", va="center", fontsize=7, color="dimgray")
                continue
            mark = " ".join("metallic" if k == "metallic" else "mixed-c." if k == "mixed-conducting" else "cond."
                            for k in c["marked"])
            ax.text(j, i, f"{c['reaction_energy']:.3f}" + (f"\n{mark}" if mark else ""), ha="center", va="center",
                    fontsize=7, color="white" if c["reaction_energy"] < 0.55 * low else "k")
            if c["marked"]:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, lw=2.2,
                                                          ec=CLASS_COLORS[_worst(c["marked"])]))
    if "electrolyte" in d["kinds"] and "cathode" in d["kinds"]:
        ax.axvline(d["kinds"].index("electrolyte") - 0.5, color="k", lw=1.5)
    ax.set_xticks(np.arange(m), [textwrap.fill(c, 14, break_long_words=False) for c in d["columns"]], fontsize=7,
                  rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(n), [f"{f} ({mid})" for f, mid in zip(d["formulas"], d["material_ids"])], fontsize=8)
    fig.colorbar(im, ax=ax, label="most negative reaction energy (eV/atom)", fraction=0.04)
    thr = "" if d["threshold"] is None else f"; cathode threshold {d['threshold']:g} eV/atom"
    ax.set_title("Reaction energies, coating against cathode (left) and electrolyte (right)\n"
                 f"boxed: a product red metallic, purple mixed-conducting; grey: not computed{thr}", fontsize=9)
    fig.tight_layout()
    return fig


def cathode_map_table(d: dict) -> str:
    """The HTML table beside the map: each cell's stored value, products with their classes, or why it is grey."""
    out = [('<table class="cathode-map"><tr><th>coating</th><th>partner</th><th>eV/atom</th><th>x (coating)</th>'
            "<th>products (stored class)</th><th>note</th></tr>")]
    for f, mid, row in zip(d["formulas"], d["material_ids"], d["cells"]):
        for label, c in zip(d["columns"], row):
            if c["status"] != "computed":
                out.append(f'<tr class="not_computed"><td>{html.escape(f)}</td><td>{html.escape(label)}</td>'
                           f'<td>n/c</td><td></td><td></td><td>{html.escape(c["reason"])}</td></tr>')
                continue
            prods = ", ".join(f'<span class="{html.escape(c["classes"][p])}">{html.escape(p)} ({html.escape(c["classes"][p])}'
                              + (f", {c['gaps'][p]:.2f} eV" if c["gaps"].get(p) is not None else "") + ")</span>"
                              for p in c["products"]) or "no reaction"
            x = "" if c["mixing_ratio"] is None else f"{c['mixing_ratio']:.3f}"
            out.append(f'<tr data-material="{html.escape(mid)}"><td>{html.escape(f)}</td><td>{html.escape(label)}</td>'
                       f'<td>{c["reaction_energy"]:.4f}</td><td>{x}</td><td>{prods}</td>'
                       f'<td>{html.escape(c["reason"] or "")}</td></tr>')
    return "".join(out) + "</table>"


# --- the page -----------------------------------------------------------------------------------------


@dataclass
class Drawn:
    """One figure written: its file stem, title, the arrays it plots, and the candidate it belongs to."""

    name: str
    title: str
    data: dict
    material_id: str | None = None
    figure: Figure | None = field(default=None, repr=False)


@dataclass
class Report:
    out_dir: Path
    figures: list[Drawn] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (figure, why)
    rows: list[dict] = field(default_factory=list)  # the ranked candidates collection
    maps: list[dict] = field(default_factory=list)  # the potential-map documents
    keep_figures: bool = False  # keep the matplotlib figures (tests read their artists)
    stage_order: tuple = STAGES  # the stages in the order the campaign runs them (CampaignConfig.ordered)

    def draw(self, name: str, title: str, data_fn: Callable[[], dict], draw_fn: Callable[[dict], Figure],
             material_id: str | None = None) -> None:
        try:
            data = data_fn()
        except Missing as exc:
            self.skipped.append((title, str(exc)))
            return
        fig = draw_fn(data)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        for ext in ("png", "svg"):
            fig.savefig(self.out_dir / "figures" / f"{stem}.{ext}", dpi=110, bbox_inches="tight")
        self.figures.append(Drawn(stem, title, data, material_id, fig if self.keep_figures else None))
        import matplotlib.pyplot as plt

        plt.close(fig)  # a pymatgen plotter may have made it through pyplot


#: link text in the ranked table, by figure kind
SHORT = {"interfacial": "reactions", "adsorption": "adsorption", "migration": "NEB", "phase_diagram": "hull",
         "slab": "slab", "defects": "defects"}

MEANING = {
    "funnel": "Candidates remaining after each stage (those with a verdict that did not fail), with the stage's "
              "criterion; −n marks how many failed there.",
    "shear_modulus": "G_VRH of every candidate that reached the stage (bars, coloured by verdict), the threshold, "
                     "and the bundled Materials Project PBE value where the formula has one.",
    "windows": "Left: reduction against oxidation limit of every candidate with the thresholds; right: the windows "
               "of the candidates no stage failed.",
    "cathode_map": "The stored most negative reaction energy of each coating with each cathode state "
                   "(cathode_compatibility) and each electrolyte (interfacial_reactions); boxed cells have a "
                   "metallic or mixed-conducting product; grey cells were not computed (the table says why).",
}

#: HTML shown beside a figure, by figure name
TABLES: dict[str, Callable[[dict], str]] = {"cathode_map": cathode_map_table}


def build_report(config, out_dir: str | Path, keep_figures: bool = False) -> Report:
    """Read the store and draw every figure whose data it holds into ``out_dir`` (no page yet)."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    rep = Report(out_dir, keep_figures=keep_figures, stage_order=tuple(config.ordered(STAGES)))
    camp = StoredCampaign(config)
    try:
        rows = camp.rows
        funnel = _funnel_rows(rows)
        if funnel:
            rep.draw("funnel", "1. Screening funnel", lambda: funnel_data(rows, rep.stage_order), draw_funnel)
        else:
            rep.skipped.append(("1. Screening funnel", "the candidates collection is empty (run `coatflow run`)"))
        if funnel:
            if "shear_modulus" in {s.stage for s in config.stages()} or any("shear_modulus" in r["stages"] for r in funnel):
                rep.draw("shear_modulus", "2. Shear modulus",
                         lambda: shear_data(rows, ["Li", *config.interfacial_reactions.electrolytes]), draw_shear)
            rep.draw("windows", "3. Electrochemical windows", lambda: window_data(rows), draw_windows)
        no_thermo = False  # the reason is given once for all candidates
        try:
            entries = camp.thermo_entries() if any("phase_stability" in r["stages"] for r in funnel) else {}
        except Missing as exc:
            entries, no_thermo = {}, True
            rep.skipped.append(("4. reaction-energy curves and 10. phase diagrams", str(exc)))
        for r in funnel:
            mid = r["material_id"]
            st = r["stages"]
            if "interfacial_reactions" in st:
                rep.draw(f"interfacial_{mid}", f"4. Interfacial reactions, {r['formula']} ({mid})",
                         lambda r=r: interfacial_data(r, entries.get(r["material_id"])), draw_interfacial, mid)
                if rep.figures and rep.figures[-1].name == f"interfacial_{mid}":
                    bare = [k for k, p in rep.figures[-1].data["pairs"].items() if p["curve"] is None]
                    if bare and not no_thermo:
                        rep.skipped.append((f"4. reaction-energy curves, {mid}", "the relaxed energies of the "
                                            f"competing phases are not all stored for {', '.join(bare)}; only the "
                                            "stored minimum of those pairs is drawn"))
            if "li_adsorption" in st:
                rep.draw(f"adsorption_{mid}", f"5. Li adsorption, {r['formula']} ({mid})",
                         lambda r=r: adsorption_data(r), draw_adsorption, mid)
            if "migration_barrier" in st:
                rep.draw(f"migration_{mid}", f"6. Li migration, {r['formula']} ({mid})",
                         lambda r=r: migration_data(r, camp.hop_docs(r["material_id"])), draw_migration, mid)
            if "phase_stability" in st and st["phase_stability"]["status"] != "not_computed" and not no_thermo:
                rep.draw(f"phase_diagram_{mid}", f"10. Phase diagram, {r['formula']} ({mid})",
                         lambda r=r: phase_diagram_data(r, entries.get(r["material_id"])), draw_phase_diagram, mid)
        for formula, summ in sorted(camp.outputs("surface_summary").items()):
            rep.draw(f"slab_{summ['material_id']}", f"7. Slab, {formula} ({summ['material_id']})",
                     lambda s=summ: slab_data(s, camp.potential), draw_slab, summ["material_id"])
        for formula, doc in sorted(camp.outputs("defect_thermo").items()):
            rep.draw(f"defects_{doc['material_id']}", f"8. Defects, {formula} ({doc['material_id']})",
                     lambda doc=doc: defect_data(doc), draw_defects, doc["material_id"])
        for section, task, what in (("slab", "surface_summary", "7. Slabs"), ("defects", "defect_thermo", "8. Defects")):
            asked = getattr(config, section).ip_materials if section == "slab" else config.defects.materials
            have = camp.outputs(task)
            if asked and not have:
                rep.skipped.append((what, f"no {task} document stored for {', '.join(asked)} (run `coatflow run`)"))
        if any("cathode_compatibility" in r["stages"] for r in funnel) or config.programme == "cathode_coating":
            rep.draw("cathode_map", "11. Cathode-coating reaction map",
                     lambda: cathode_map_data(rows, config.interfacial_reactions.electrolytes), draw_cathode_map)
        maps = camp.maps()
        stacks: dict[tuple, list] = {}
        for m in maps:
            stacks.setdefault((m["electrolyte"], m["cathode"]), []).append(m)
        for (se, cat), docs in stacks.items():
            rep.draw(f"potential_map_{se}_{cat}", f"9. Potential map, Li | {se} | {cat}", lambda docs=docs: map_data(docs),
                     draw_map)
        if config.potential_maps.stacks and not stacks:
            rep.skipped.append(("9. Potential maps", "no potential-map stack stored (its ingredients are not all "
                                "computed: run `coatflow run`)"))
        rep.rows, rep.maps = rows, maps
    finally:
        camp.close()
    return rep


def _cell(stage, summary: dict | None) -> str:
    if summary is None:
        return "<td></td>"
    mark = {"passed": "pass", "failed": "FAIL", "not_computed": "n/c"}[summary["status"]]
    text = f"{stage.value_text(summary)}{mark}{stage.note(summary.get('details') or {})}"
    tip = summary.get("reason") or summary.get("criterion") or ""
    return f'<td class="{summary["status"]}" title="{html.escape(tip)}">{html.escape(text)}</td>'


def render_html(rep: Report) -> str:
    rows = rep.rows
    stages = [s for s in rep.stage_order if any(s.stage in r.get("stages", {}) for r in rows)]
    by_mid: dict[str | None, list[Drawn]] = {}
    for f in rep.figures:
        by_mid.setdefault(f.material_id, []).append(f)
    head = "".join(f"<th>{html.escape(s.stage)}</th>" for s in stages)
    body = []
    for i, r in enumerate(rows, 1):
        mid = r["material_id"]
        links = " ".join(f'<a href="#{f.name}">{next((v for k, v in SHORT.items() if f.name.startswith(k + "_")), f.name)}</a>'
                         for f in by_mid.get(mid, []))
        cells = "".join(_cell(s, r.get("stages", {}).get(s.stage)) for s in stages)
        fate = f"failed at {r['failed_stage']}" if r.get("failed_stage") else (r.get("furthest_stage") or "")
        formula = html.escape(r["formula"]) + (" (predicted)" if r.get("predicted") else "")
        body.append(f'<tr id="row-{html.escape(mid)}"><td>{i}</td><td>{html.escape(mid)}</td><td>{formula}</td>'
                    f'<td class="links">{links}</td>{cells}<td>{html.escape(fate)}</td></tr>')

    def figure(f: Drawn) -> str:
        meaning = MEANING.get(f.name, "")
        img = f'<img src="figures/{f.name}.png" alt="{html.escape(f.title)}">'
        if f.name in TABLES:
            img = f'<div class="beside">{img}{TABLES[f.name](f.data)}</div>'
        return (f'<figure id="{f.name}"><figcaption>{html.escape(f.title)}'
                f' <a href="figures/{f.name}.svg">SVG</a> <a href="figures/{f.name}.png">PNG</a></figcaption>'
                + img + (f"<p>{html.escape(meaning)}</p>" if meaning else "") + "</figure>")

    skipped = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(w)}</li>" for t, w in rep.skipped)
    maps = ""
    if rep.maps:
        maps = ("<h2>Potential-map table</h2><table><tr><th>electrolyte</th><th>cathode</th><th>SOC</th><th>OCV/V</th>"
                "<th>Δφ anode/V</th><th>Δφ cathode/V</th><th>grey anode/eV</th><th>grey cathode/eV</th>"
                "<th>anode / cathode</th></tr>" + "".join(
                    f"<tr><td>{html.escape(m['electrolyte'])}</td><td>{html.escape(m['cathode'])}</td>"
                    f"<td>{m['state_of_charge']:.2f}</td><td>{m['ocv']:.2f}</td><td>{m['delta_phi_anode']:+.2f}</td>"
                    f"<td>{m['delta_phi_cathode']:+.2f}</td><td>{m['grey_anode']:.2f}</td><td>{m['grey_cathode']:.2f}</td>"
                    f"<td>{html.escape(m['barrier_anode'])} / {html.escape(m['barrier_cathode'])}</td></tr>"
                    for m in rep.maps) + "</table>")
    sections = "".join(figure(f) for f in by_mid.get(None, []))
    for r in rows:
        figs = by_mid.get(r["material_id"], [])
        if figs:
            sections += (f'<h2 id="{html.escape(r["material_id"])}">{html.escape(r["formula"])} '
                         f'({html.escape(r["material_id"])})</h2>' + "".join(figure(f) for f in figs))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>coatflow report</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 1400px; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
td.passed {{ background: #e3f5e3; }} td.failed {{ background: #f8dddd; }} td.not_computed {{ background: #fdf0d5; }}
figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ font-weight: bold; }} td.links {{ font-size: 0.85em; }}
div.beside {{ display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }}
div.beside img {{ max-width: 60%; }} tr.not_computed {{ background: #e6e6e6; }}
span.metallic, span.conducting {{ color: #c00; }} span.mixed-conducting {{ color: #808; }}
</style></head><body>
<h1>coatflow report</h1>
<p>{len(rows)} materials in the store; {len(rep.figures)} figures drawn from stored numbers.</p>
<h2>Ranked candidates</h2>
<table id="ranked"><tr><th>#</th><th>material</th><th>formula</th><th>figures</th>{head}<th>furthest stage</th></tr>
{''.join(body)}</table>
<h2>Left out</h2><ul id="skipped">{skipped or '<li>nothing</li>'}</ul>
{maps}
{sections}
</body></html>
"""


def write_report(config, out_dir: str | Path, echo: Callable[[str], None] = print,
                 keep_figures: bool = False) -> Report:
    """Draw every figure and write ``out_dir/index.html``; prints one line per figure left out."""
    rep = build_report(config, out_dir, keep_figures)
    (Path(out_dir) / "index.html").write_text(render_html(rep))
    for title, why in rep.skipped:
        echo(f"left out: {title}: {why}")
    echo(f"wrote {Path(out_dir) / 'index.html'} ({len(rep.figures)} figures)")
    return rep

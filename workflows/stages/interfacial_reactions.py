"""Stage 5, interfacial reactions: the coating against Li metal and each solid electrolyte.

Each pair gets its own pseudo-binary reaction (workflows/analysis/thermo.py ``interfacial_reaction``, on
the energies of workflows/phase_diagrams.py); every product is classified by its band gap: the shipped
PBE tables of ``shipped_gaps`` in order (Alexandria, then the MP snapshot), MP gaps (``thermo.entries: mp``),
gaps this campaign stored, else one band-gap job per product (``band_gap_backend``), which the reactions job
adds at run time after looking its key up in the store, and which every later candidate finds by key.
Products with an open 4f shell get no computed PBE gap (with f electrons in valence it is unreliable) and
stay unknown, saying why; the MP snapshot's gaps (4f in the core) do classify them.
On ``thermo.entries: mp_snapshot`` every product's gap is the snapshot's (MP's PBE gaps, 4f in the core, so
Tb2O3 and Dy2O3 are classified; ``reference_data.polymorph_gap`` for several polymorphs), looked up when the
reactions job runs; a product the snapshot has no gap for stays unknown, saying so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Annotated, ClassVar, Literal

from jobflow import Flow, JobConfig, Response, job
from pydantic import AfterValidator, Field
from pymatgen.core import Composition, Element, Structure

from coatflow.makers.restarts import stored_output
from coatflow.workflows import reference_data
from coatflow.workflows.analysis import AnalysisError, thermo
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import (
    entries_on_scale, entries_state, phase_inputs, phase_key, phases_for, stage_key)
from coatflow.workflows.schemas.thermo import (
    InterfacialReactions, InterfacialReactionsResult, PairReaction, ProductGap, RelaxedEnergy)
from coatflow.workflows.stages.base import Stage, respond


def _formulas(formulas: list[str]) -> list[str]:
    for f in formulas:
        try:
            ok = all(isinstance(el, Element) for el in Composition(f).elements)
        except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
            ok = False
        if not ok:  # pymatgen reads unknown symbols such as 'Xq' as dummy species
            raise ValueError(f"'{f}' is not a chemical formula")
    return formulas


def _pair(a: str, b: str, pool, gaps: dict[str, ProductGap], gap_min: float, use_hull_energy: bool = True
          ) -> PairReaction:
    """The reaction of ``a`` and ``b`` on the entries of their chemical system: one small phase diagram per pair
    (``use_hull_energy``: ``thermo.interfacial_reaction``)."""
    entries = thermo.in_chemsys(pool, {*Composition(a).elements, *Composition(b).elements})
    numbers = {f: g.band_gap for f, g in gaps.items()}
    try:
        return PairReaction.from_reaction(thermo.interfacial_reaction(a, b, entries, numbers, gap_min,
                                                                      use_hull_energy), gaps)
    except AnalysisError as exc:
        return PairReaction.not_computed(str(exc))


def _pairs(cand, pool, partners, gaps: dict[str, ProductGap], gap_min: float,
           li_metal: bool = True) -> dict[str, PairReaction]:
    """The candidate against Li and each partner, and Li against each partner (what the coating prevents);
    without ``li_metal`` (a cathode coating never meets Li metal) the candidate against each partner only."""
    formula = cand.composition.reduced_formula
    have = {e.composition.reduced_formula for e in pool}
    pairs = {}
    for a, others in ((formula, ("Li", *partners)), ("Li", partners)) if li_metal else ((formula, partners),):
        for other in others:
            f = Composition(other).reduced_formula
            pairs[f"{a} | {other}"] = (_pair(a, other, pool, gaps, gap_min) if f in have else
                                       PairReaction.not_computed(f"no {f} entry on the {thermo.scale_of(cand)} scale"))
    return pairs


def _unknown_products(pairs: dict[str, PairReaction]) -> set[str]:
    """Compound products of the coating's pairs that have no band gap yet."""
    return {p for k, v in pairs.items() if v.status == "computed" and not k.startswith("Li |")
            for p, c in v.product_class.items() if c == "unknown"}


# no output_schema: it may replace itself by band-gap jobs and a rerun; the store finds gaps stored since planning
@job(name="interfacial reactions", config=JobConfig(expose_store=True))
def interfacial_reactions(cand_doc, phase_docs, partners, gap_min, known_gaps, gap_jobs=None, source=None,
                          _after=None, li_metal=True):
    """Reaction of the candidate with Li and each partner, and the band gap of every product.

    ``_after`` (the previous verdict's structure) makes this job a child of that verdict, so a candidate
    that failed the window never pays for band-gap jobs.

    ``known_gaps`` maps formulas to ProductGaps or band_gap job outputs (shipped data, or gaps this campaign
    stored). ``gap_jobs`` is (maker, {phase id: job key}, labels): a product still without a gap takes the one
    stored under its key since this job was planned (another candidate's job), else gets one job; then this job
    runs again with their outputs and without ``gap_jobs``.
    """
    gaps = {f: ProductGap.from_calc(g) for f, g in known_gaps.items()}
    try:
        cand, entries = entries_on_scale(cand_doc, phase_docs, source)
    except (CoatflowError, AnalysisError) as exc:
        return InterfacialReactions(error=str(exc))
    pool = [*entries, cand]
    if source and source["kind"] == "mp_snapshot":
        gaps = {**_snapshot_gaps(pool, gap_min), **gaps}
    pairs = _pairs(cand, pool, partners, gaps, gap_min, li_metal)
    unknown = _unknown_products(pairs) - set(gaps)
    if unknown and gap_jobs:
        maker, keys, labels = gap_jobs
        best = thermo.ground_states(pool)
        jobs, new, before = [], {}, len(gaps)
        for f in sorted(unknown):
            pid = best[f].entry_id
            if pid not in keys:  # the candidate itself: its gap comes from the database filter
                continue
            found, stored = stored_output(keys[pid])
            if found:
                gaps[f] = ProductGap.from_calc(stored)
                continue
            j = maker.make(RelaxedEnergy.from_task_doc(phase_docs[pid]).structure)
            j.name = f"{j.name} {f}"
            j.update_metadata({"coatflow": {**labels, "task": "band_gap", "key": keys[pid]}})
            jobs.append(j)
            new[f] = j.output
        if jobs:
            again = interfacial_reactions(cand_doc, phase_docs, partners, gap_min, {**gaps, **new}, source=source,
                                          li_metal=li_metal)
            return Response(replace=Flow([*jobs, again], output=again.output))
        if len(gaps) > before:  # every missing gap was stored meanwhile
            pairs = _pairs(cand, pool, partners, gaps, gap_min, li_metal)
    used = {p for v in pairs.values() if v.status == "computed" for p in v.products}
    return InterfacialReactions(pairs=pairs, band_gaps={f: g for f, g in gaps.items() if f in used})


@job(name="interfacial reactions verdict", output_schema=InterfacialReactionsResult)
def interfacial_verdict(ident, reactions, structure, gap_min):
    result = InterfacialReactionsResult.from_reactions(ident, InterfacialReactions.model_validate(reactions), gap_min,
                                                       structure=structure)
    return respond(result)


def _snapshot_gap(formula: str, gap_min: float) -> ProductGap:
    """The snapshot's PBE gap of ``formula``, or why there is none (``reference_data.polymorph_gap``)."""
    gap, why = reference_data.polymorph_gap((reference_data.snapshot_row(formula) or {}).get("band_gaps"), gap_min)
    return ProductGap(band_gap=gap, source=None if gap is None else reference_data.SNAPSHOT_NAME, reason=why)


def _snapshot_gaps(pool, gap_min: float) -> dict[str, ProductGap]:
    """The snapshot's PBE gap of every phase of ``pool`` (the reaction's entries), or why there is none
    (elemental metals are conductors whatever their row says: ``thermo.classify_gap``)."""
    return {f: _snapshot_gap(f, gap_min) for f in {e.composition.reduced_formula for e in pool}}


#: the shipped PBE gap tables a product's gap may come from, before any band-gap job
SHIPPED_GAPS = ("alexandria", "mp_snapshot")


def _shipped_gaps(tables, formulas, gap_min: float) -> dict[str, ProductGap]:
    """The first shipped table (in ``tables`` order) that has a gap for each formula: Alexandria's PBE gap of
    the lowest-energy polymorph, or the MP snapshot's when every MP polymorph lies on one side of ``gap_min``."""
    alexandria = reference_data.alexandria_band_gaps() if "alexandria" in tables else {}
    known = {}
    for f in formulas:
        for table in tables:
            if table == "alexandria" and f in alexandria:
                known[f] = ProductGap(band_gap=alexandria[f], source="Alexandria PBE (shipped)")
            elif table == "mp_snapshot" and (gap := _snapshot_gap(f, gap_min)).band_gap is not None:
                known[f] = gap
            if f in known:
                break
    return known


def _known_gaps(planner, source, elements, keys, tables, gap_min) -> dict[str, ProductGap]:
    """Band gaps known before the stage runs: the shipped ``tables``, MP (mp kind), gaps stored by key.
    None on the snapshot scale: its own gaps are looked up by the reactions job (``_snapshot_gaps``).

    Phases with an open 4f shell get no computed gap (``thermo.OPEN_4F``): without a shipped one their gap
    stays unknown, with why.
    """
    if source["kind"] == "mp_snapshot":
        return {}
    formulas = {pid: Structure.from_dict(phases_for(elements)[pid]).composition.reduced_formula for pid in keys}
    known = _shipped_gaps(tables, set(formulas.values()), gap_min)
    if source["kind"] == "mp" and "entries" in source:
        best = thermo.ground_states(reference_data.decode_entries(source["entries"]))
        ids = {e.data.get("material_id"): f for f, e in best.items() if e.data.get("material_id")}
        for mid, gap in reference_data.mp_band_gaps(ids, planner.cache).items():
            known[ids[mid]] = ProductGap(band_gap=gap, source=f"Materials Project ({mid})")
    for pid, key in keys.items():
        formula = formulas[pid]
        if formula in known:
            continue
        if thermo.has_open_4f(formula):
            known[formula] = ProductGap(reason=thermo.OPEN_4F_NOTE)
        elif (stored := planner.stored(key)) is not None:
            known[formula] = ProductGap.from_calc(stored[0])
    return known


@dataclasses.dataclass
class InterfacialReactionsStage(Stage):
    """interfacial reactions: no metallic or mixed-conducting product with Li or any listed electrolyte."""

    stage: ClassVar[str] = "interfacial_reactions"
    phase_diagram: ClassVar[bool] = True
    name: str = "interfacial reactions"
    electrolytes: Annotated[list[str], Field(description="partners besides Li metal"), AfterValidator(_formulas)] = \
        dataclasses.field(default_factory=lambda: ["Li10GeP2S12", "Li6PS5Cl", "Li7La3Zr2O12", "LiTi2(PO4)3", "LiNbO3"])
    insulator_gap_min: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False,
                                              description="eV, products below this count as electronic conductors")] = 0.5
    band_gap_backend: Annotated[Literal["gpaw", "vasp"], Field(
        description="band gaps of products without a shipped one (gpaw | vasp)")] = "gpaw"
    shipped_gaps: Annotated[list[Literal["alexandria", "mp_snapshot"]], Field(
        description="shipped PBE gap tables used before any band-gap job, first match wins "
                    "(alexandria | mp_snapshot); [] computes every product's gap")] = \
        dataclasses.field(default_factory=lambda: list(SHIPPED_GAPS))
    with_li_metal: Annotated[bool, Field(description="also the coating | Li pair (false: cathode coatings)")] = True

    @classmethod
    def note(cls, details: dict) -> str:
        """How many coating pairs were computed (Li | electrolyte pairs are informational), and how many of
        their products are metallic or mixed-conducting (``thermo.conduction_class``)."""
        coating = [v for k, v in (details.get("pairs") or {}).items() if not k.startswith("Li |")]
        kinds = {p: c for v in coating for p, c in (v.get("product_conduction") or {}).items()}
        bad = [f"{n} {c}" for c in ("metallic", "mixed-conducting") if (n := list(kinds.values()).count(c))]
        return (f" {sum(v['status'] == 'computed' for v in coating)}/{len(coating)} pairs"
                + (f"; {', '.join(bad)}" if bad else "")) if coating else ""

    def calculators(self) -> list[tuple[str, str]]:
        return [("band_gap", self.band_gap_backend)]

    def plan(self, planner, plan, upstream: str, verdict):
        """Reactions with Li and the configured electrolytes, on the union of their chemical systems."""
        partners = self.electrolytes
        elements = {*Composition(plan.candidate.formula).elements, Element("Li"),
                    *(el for f in partners for el in Composition(f).elements)}
        cand, phases, _, source = phase_inputs(planner, plan, upstream, verdict, elements)
        relax_backend, gap_backend = planner.config.bulk_relax.backend, self.band_gap_backend
        relax_maker, gap_maker = planner.maker("relax", relax_backend), planner.maker("band_gap", gap_backend)
        keys = {}
        for pid in phases:
            m = replace(relax_maker, relax_cell=False) if phases_for(elements)[pid].get("molecule") else relax_maker
            keys[pid] = planner.calc_key(phase_key(planner, pid, relax_backend, m), "band_gap", gap_backend, gap_maker)
        gap_min = self.insulator_gap_min
        known = _known_gaps(planner, source, elements, keys, self.shipped_gaps, gap_min)
        labels = {"material_id": plan.candidate.material_id, "stage": self.stage, "backend": gap_backend}
        shipped = (None if source["kind"] == "mp_snapshot" else  # the snapshot scale uses the snapshot's own gaps
                   [*self.shipped_gaps, *([reference_data.snapshot_version()] if "mp_snapshot" in self.shipped_gaps
                                          else [])])
        base = stage_key(planner, upstream, self.stage, partners, gap_backend, sorted(phases), entries_state(source),
                         sorted(thermo.OPEN_4F), *([] if self.with_li_metal else ["no Li metal"]),
                         *([] if shipped in (None, ["alexandria"]) else [{"shipped gaps": shipped}]))
        reactions, _ = planner.add(
            plan, planner.key(base, "reactions", gap_min), self.stage, "reactions", source["backend"],
            lambda: interfacial_reactions(cand, phases, partners, gap_min, known, (gap_maker, keys, labels),
                                          source=source, _after=verdict.structure, li_metal=self.with_li_metal))
        return planner.gate(plan, planner.key(base, "verdict", gap_min), self.stage, source["backend"],
                            lambda: interfacial_verdict(plan.ident, reactions, verdict.structure, gap_min))

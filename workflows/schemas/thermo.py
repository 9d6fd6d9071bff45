"""Thermodynamic stage documents: phase stability (E_hull), the Li stability window, interfacial reactions,
and the relaxed energies they are computed from."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

from coatflow.workflows.analysis.thermo import InterfacialReaction, StabilityWindow
from coatflow.workflows.schemas.stage import StageResult

Computed = Literal["computed", "not_computed"]


class RelaxedEnergy(BaseModel):
    """Total energy and final structure of one relaxation (an atomate2 relax task document)."""

    energy: float = Field(description="eV, total energy of the cell")
    structure: Structure

    model_config = {"arbitrary_types_allowed": True}

    @classmethod
    def from_task_doc(cls, doc) -> RelaxedEnergy:
        """From a relax task document, fresh (object) or stored (dict)."""
        if isinstance(doc, dict):
            out, st = doc["output"], doc.get("structure") or doc["output"]["structure"]
            return cls(energy=float(out["energy"]), structure=st if isinstance(st, Structure) else Structure.from_dict(st))
        return cls(energy=float(doc.output.energy), structure=doc.structure or doc.output.structure)


# --- phase_stability ----------------------------------------------------------------------------------


class PrecursorFormation(BaseModel):
    meV_per_atom: float = Field(description="reaction energy per atom of the target")
    o2_per_target_atom: float = Field(description="O2 taken up (> 0) or released (< 0), O atoms per target atom")


class FormationFromPrecursors(BaseModel):
    """Li2O + M_xO_y (+/- O2) -> target, for each M-O binary on the M-O hull."""

    status: Computed
    reason: str | None = None
    precursors: dict[str, PrecursorFormation] = Field(default_factory=dict)


class PhaseStabilityDetails(BaseModel):
    energy_scale: str | None = None
    decomposition: dict[str, float] = Field(default_factory=dict, description="formula: fraction")
    competing_phases: list[str] | int = Field(default_factory=list,
                                              description="bundled phase ids (local), or the number of MP entries")
    formation_from_precursors: FormationFromPrecursors | None = None


class PhaseStabilityResult(StageResult):
    """The phase_stability verdict: E_hull <= e_hull_max on the campaign's energy scale."""

    stage: str = "phase_stability"
    details: PhaseStabilityDetails = Field(default_factory=PhaseStabilityDetails)

    @classmethod
    def from_hull(cls, ident: dict, e_above_hull: float, e_max: float, details: PhaseStabilityDetails, *,
                  structure: Structure | None = None, backend: str | None = None,
                  task_uuids: Sequence[str | None] = ()) -> PhaseStabilityResult:
        """The verdict from E_hull (eV/atom) and the threshold (eV/atom)."""
        ok = e_above_hull <= e_max
        return cls(**ident, status="passed" if ok else "failed", value=round(1000 * e_above_hull, 1),
                   unit="meV/atom", criterion=f"E_hull <= {1000 * e_max:.0f} meV/atom", backend=backend,
                   reason=None if ok else f"E_hull = {1000 * e_above_hull:.0f} meV/atom",
                   task_uuids=[u for u in task_uuids if u], structure=structure, details=details)


# --- stability_window -----------------------------------------------------------------------------------


class StabilityWindowDetails(BaseModel):
    reduction_limit: float | None = Field(None, description="V vs Li/Li+")
    oxidation_limit: float | None = Field(None, description="V vs Li/Li+")
    reduction_products: list[str] = Field(default_factory=list, description="just below the reduction limit")
    oxidation_products: list[str] = Field(default_factory=list, description="just above the oxidation limit")
    e_above_hull: float | None = Field(None, description="eV/atom")
    shifted_to_hull: bool | None = Field(None, description="a metastable candidate is moved onto the hull first")
    energy_scale: str | None = None

    @classmethod
    def from_window(cls, w: StabilityWindow, energy_scale: str | None = None) -> StabilityWindowDetails:
        return cls(**dataclasses.asdict(w), energy_scale=energy_scale)


class StabilityWindowResult(StageResult):
    """The stability_window verdict: reduction limit below, oxidation limit above the thresholds."""

    stage: str = "stability_window"
    details: StabilityWindowDetails = Field(default_factory=StabilityWindowDetails)

    @classmethod
    def from_window(cls, ident: dict, w: StabilityWindow, red_max: float, ox_min: float, *,
                    energy_scale: str | None = None, structure: Structure | None = None,
                    backend: str | None = None) -> StabilityWindowResult:
        ok = w.reduction_limit < red_max and w.oxidation_limit > ox_min
        return cls(**ident, status="passed" if ok else "failed", value=w.oxidation_limit - w.reduction_limit,
                   unit="V", criterion=f"reduction < {red_max} V and oxidation > {ox_min} V",
                   reason=None if ok else f"window {w.reduction_limit:.2f}-{w.oxidation_limit:.2f} V",
                   details=StabilityWindowDetails.from_window(w, energy_scale), structure=structure, backend=backend)


# --- interfacial_reactions ------------------------------------------------------------------------------


class ProductGap(BaseModel):
    """The band gap of one reaction product and where it came from, or why there is none."""

    band_gap: float | None = Field(None, description="eV")
    source: str | None = Field(None, description="e.g. 'GPAW PBE', 'Alexandria PBE (shipped)'")
    reason: str | None = Field(None, description="why no gap was computed")

    @classmethod
    def from_calc(cls, output: Any) -> ProductGap:
        """From a band_gap job's output, fresh or stored: BandGapDoc (gpaw) or atomate2 TaskDoc (vasp)."""
        if isinstance(output, ProductGap):
            return output
        d = output if isinstance(output, dict) else output.model_dump()
        if "band_gap" in d:
            return cls.model_validate(d)
        return cls(band_gap=(d.get("output") or {}).get("bandgap"), source="VASP static")


class PairReaction(BaseModel):
    """The most exothermic reaction of the candidate (or Li) with one partner."""

    status: Computed
    reason: str | None = None
    pair: str | None = None
    reaction_energy: float | None = Field(None, description="eV/atom of the mixture")
    mixing_ratio: float | None = Field(None, description="fraction of the first phase")
    reaction: str | None = None
    products: list[str] = Field(default_factory=list)
    product_class: dict[str, Literal["insulating", "conducting", "unknown"]] = Field(default_factory=dict)
    product_gaps: dict[str, float | None] = Field(default_factory=dict, description="eV")
    product_gap_source: dict[str, str | None] = Field(default_factory=dict)
    product_conduction: dict[str, Literal["insulating", "mixed-conducting", "metallic", "unknown"]] = Field(
        default_factory=dict, description="product_class's 'conducting' split (analysis/thermo.py conduction_class)")

    @classmethod
    def from_reaction(cls, r: InterfacialReaction, gaps: dict[str, ProductGap] | None = None) -> PairReaction:
        gaps = gaps or {}
        return cls(status="computed", pair=r.pair, reaction_energy=r.reaction_energy, mixing_ratio=r.mixing_ratio,
                   reaction=r.reaction, products=r.products, product_class=r.product_class,
                   product_gaps=r.product_gaps, product_conduction=r.product_conduction,
                   product_gap_source={p: gaps[p].source if p in gaps else None for p in r.products})

    @classmethod
    def not_computed(cls, reason: str) -> PairReaction:
        return cls(status="not_computed", reason=reason)


class InterfacialReactions(BaseModel):
    """Output of the interfacial-reactions job: every pair, and the gaps of their products."""

    pairs: dict[str, PairReaction] = Field(default_factory=dict)
    band_gaps: dict[str, ProductGap] = Field(default_factory=dict)
    error: str | None = Field(None, description="why no pair could be computed (no energies on the scale)")


class PairsDetails(BaseModel):
    """The details of a verdict on pair reactions (interfacial_reactions, cathode_compatibility)."""

    pairs: dict[str, PairReaction] = Field(default_factory=dict, description="'A | B': reaction")
    pairs_not_computed: list[str] = Field(default_factory=list)


class InterfacialReactionsDetails(PairsDetails):
    band_gaps: dict[str, ProductGap] = Field(default_factory=dict, description="product formula: gap")


class InterfacialReactionsResult(StageResult):
    """The interfacial_reactions verdict: no conducting product of the coating with Li or any electrolyte."""

    stage: str = "interfacial_reactions"
    details: InterfacialReactionsDetails = Field(default_factory=InterfacialReactionsDetails)

    @classmethod
    def from_reactions(cls, ident: dict, reactions: InterfacialReactions, gap_min: float, *,
                       structure: Structure | None = None) -> InterfacialReactionsResult:
        """Failed when a coating pair forms a conductor; not computed when a product's gap or a pair is
        missing; Li | electrolyte pairs are informational."""
        common = {**ident, "structure": structure, "unit": "eV/atom", "criterion": f"no product with gap < {gap_min} eV"}
        if reactions.error:
            return cls(**{**common, "unit": None, "criterion": None}, status="not_computed", reason=reactions.error)
        pairs = reactions.pairs
        coating = {k: v for k, v in pairs.items() if not k.startswith("Li |")}
        done = {k: v for k, v in coating.items() if v.status == "computed"}
        skipped = sorted(k for k, v in coating.items() if v.status != "computed")
        classes = {p: c for v in done.values() for p, c in v.product_class.items()}
        kinds = {p: c for v in done.values() for p, c in v.product_conduction.items()}
        bad = sorted(p for p, c in classes.items() if c == "conducting")
        unknown = sorted(p for p, c in classes.items() if c == "unknown")
        details = InterfacialReactionsDetails(pairs=pairs, band_gaps=reactions.band_gaps, pairs_not_computed=skipped)
        why = "; ".join(sorted({pairs[k].reason for k in skipped}))
        if not done:
            status, reason = "not_computed", why
        elif bad:
            status, reason = "failed", "conducting products: " + ", ".join(
                f"{p} ({kinds[p]})" if p in kinds else p for p in bad)
        elif unknown:
            notes = {p: f" ({reactions.band_gaps[p].reason})" if p in reactions.band_gaps and
                     reactions.band_gaps[p].reason else "" for p in unknown}
            status, reason = "not_computed", f"band gap unknown for {', '.join(p + notes[p] for p in unknown)}"
        elif skipped:
            status, reason = "not_computed", why
        else:
            status, reason = "passed", None
        worst = min((v.reaction_energy for v in done.values()), default=None)
        return cls(**common, status=status, value=worst, reason=reason, details=details)

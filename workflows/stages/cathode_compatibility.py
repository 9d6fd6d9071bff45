"""Cathode-coating stage: chemical compatibility of the coating with each cathode, discharged and charged.

The most negative pseudo-binary reaction energy of the coating with each cathode in its lithiated
(discharged) and delithiated (charged, top of charge) state, against ``reaction_energy_min``; the products
are listed. The pair machinery is the interfacial_reactions stage's (``_pair``: pymatgen's
``InterfacialReactivity`` through workflows/analysis/thermo.py ``interfacial_reaction``), on the energies of
workflows/phase_diagrams.py. Cathodes and their states: data/cathode_coating_set.yaml.

Reactant energies are the convex-hull energies at the reactant's composition (``use_hull_energy``, as in the
interfacial_reactions stage): a cathode composition without an entry of its own on the scale (the ordered
NMC811 model, LiNi0.5Mn1.5O4 if the snapshot lacks it) enters at the hull energy of its composition, i.e.
at most the zero-mixing-energy sum of its end members; a charged state above the hull enters at the energy of
its decomposition products, so its driving force is a lower bound (docs/cathode_coating.md). Only the
database scales (``thermo.entries: mp_snapshot`` or ``mp``) have cathode phases: on ``local`` the stage is
not computed, saying so.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Annotated, ClassVar

import yaml
from jobflow import job
from pydantic import AfterValidator, Field
from pymatgen.core import Composition, Element

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import backend_of, entries_on_scale, entries_state, phase_inputs, stage_key
from coatflow.workflows.schemas.cathode_coating import CathodeCompatibilityResult
from coatflow.workflows.schemas.thermo import PairReaction
from coatflow.workflows.stages.base import Stage, not_computed, respond
from coatflow.workflows.stages.interfacial_reactions import _pair

SET_FILE = Path(__file__).resolve().parents[1] / "data" / "cathode_coating_set.yaml"
LOCAL_NOTE = "not computed: no local cathode phases; use thermo.entries: mp_snapshot"


@cache
def cathode_coating_set() -> dict:
    """The programme's coatings, cathodes ({name: {discharged, charged}}) and electrolytes."""
    return yaml.safe_load(SET_FILE.read_text())


def _cathode_names(names: list[str]) -> list[str]:
    known = cathode_coating_set()["cathodes"]
    for n in names:
        if n not in known:
            raise ValueError(f"unknown cathode '{n}' (known: {', '.join(known)}; data/cathode_coating_set.yaml)")
    return names


def cathode_pairs(coating: str, cathodes: dict[str, dict[str, str]], pool) -> dict[str, PairReaction]:
    """'coating | cathode (state)' -> the pair's most exothermic reaction on the entries ``pool``."""
    have = {e.composition.reduced_formula for e in pool}
    out = {}
    for name, states in cathodes.items():
        for state, formula in states.items():
            pair = _pair(coating, formula, pool, {}, 0.0)
            f = Composition(formula).reduced_formula
            if pair.status == "computed" and f not in have:
                pair.reason = f"no {formula} entry: its convex-hull energy is used (docs/cathode_coating.md)"
            out[f"{coating} | {name} {state} ({formula})"] = pair
    return out


@job(name="cathode compatibility verdict", output_schema=CathodeCompatibilityResult)
def cathode_compatibility_verdict(ident, cand_doc, phase_docs, structure, cathodes, threshold, source=None):
    if (source or {}).get("kind", "local") == "local":
        return not_computed(CathodeCompatibilityResult, ident, structure, LOCAL_NOTE)
    try:
        cand, entries = entries_on_scale(cand_doc, phase_docs, source)
    except (CoatflowError, AnalysisError) as exc:
        return not_computed(CathodeCompatibilityResult, ident, structure, str(exc))
    pairs = cathode_pairs(cand.composition.reduced_formula, cathodes, [*entries, cand])
    return respond(CathodeCompatibilityResult.from_pairs(ident, pairs, threshold, structure=structure,
                                                         backend=backend_of(source)))


@dataclasses.dataclass
class CathodeCompatibilityStage(Stage):
    """cathode compatibility: no coating | cathode reaction (discharged or charged) below the threshold."""

    stage: ClassVar[str] = "cathode_compatibility"
    name: str = "cathode compatibility"
    cathodes: Annotated[list[str], Field(description="names in data/cathode_coating_set.yaml, each in both states"),
                        AfterValidator(_cathode_names)] = dataclasses.field(
        default_factory=lambda: list(cathode_coating_set()["cathodes"]))
    reaction_energy_min: Annotated[float, Field(le=0, ge=-5, allow_inf_nan=False, description=(
        "eV/atom of the mixture; a more negative reaction fails (docs/cathode_coating.md)"))] = -0.1

    @classmethod
    def note(cls, details: dict) -> str:
        pairs = details.get("pairs") or {}
        return f" {sum(v['status'] == 'computed' for v in pairs.values())}/{len(pairs)} pairs" if pairs else ""

    def plan(self, planner, plan, upstream: str, verdict):
        cathodes = {n: cathode_coating_set()["cathodes"][n] for n in self.cathodes}
        if planner.config.thermo.entries == "local":  # no cathode phases bundled: nothing to relax
            cand, phases, source = None, {}, {"kind": "local"}
        else:
            elements = {*Composition(plan.candidate.formula).elements, Element("Li"),
                        *(el for s in cathodes.values() for f in s.values() for el in Composition(f).elements)}
            cand, phases, _, source = phase_inputs(planner, plan, upstream, verdict, elements)
        key = stage_key(planner, upstream, self.stage, sorted(phases), entries_state(source), self.key_settings(),
                        cathodes)
        return planner.gate(plan, key, self.stage, source.get("backend", "mlip"), lambda: cathode_compatibility_verdict(
            plan.ident, cand, phases, verdict.structure, cathodes, self.reaction_energy_min, source))

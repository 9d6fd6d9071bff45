"""Cathode-coating stage: chemical compatibility of the coating with each cathode, discharged and charged.

The most negative pseudo-binary reaction energy of the coating with each cathode in its lithiated
(discharged) and delithiated (charged, top of charge) state, against ``reaction_energy_min``; the products
are listed. The pair machinery is the interfacial_reactions stage's (``_pair``: pymatgen's
``InterfacialReactivity`` through workflows/analysis/thermo.py ``interfacial_reaction``), on the energies of
workflows/phase_diagrams.py. Cathodes and their states: data/cathode_coating_set.yaml.

``reactant_energy: hull`` (default, as the interfacial_reactions stage): each reactant enters at the convex-hull
energy of its composition, so the value is the mutual reaction alone; ``own``: at its own lowest entry
(``use_hull_energy=False``, mixtures of both only), so a metastable charged cathode's own decomposition adds
to the driving force (the pair's ``reason`` always gives the other value). On ``own``, a cathode composition without an entry of its own (the ordered NMC811 model
and its charged state; LiNi0.5Mn1.5O4 where the snapshot lacks it) enters at the convex-hull energy of its
composition, i.e. at most the zero-mixing-energy sum of its end members, unless data/cathode_coating_set.yaml
gives its end members: then it enters at that sum (docs/cathode_coating.md, "Approximations").
On ``thermo.entries: local`` the cathodes (both states, the ordered NMC811 and LiNi0.5Mn1.5O4 models) and their
competing Co/Ni/Mn phases are the bundled structures of workflows/cathode_phases.py, relaxed with the other
bundled phases of the chemical system on the relax backend.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from jobflow import job
from pydantic import AfterValidator, Field
from pymatgen.core import Composition, Element
from pymatgen.entries.computed_entries import ComputedEntry

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.cathode_phases import cathode_phases_for
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import backend_of, entries_on_scale, entries_state, phase_inputs, stage_key
from coatflow.workflows.schemas.cathode_coating import CathodeCompatibilityResult
from coatflow.workflows.schemas.thermo import PairReaction
from coatflow.workflows.stages.base import Stage, not_computed, respond
from coatflow.workflows.stages.interfacial_reactions import _pair

SET_FILE = Path(__file__).resolve().parents[1] / "data" / "cathode_coating_set.yaml"


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


def end_member_entry(formula: str, end_members: dict[str, float], pool) -> ComputedEntry | None:
    """An entry of ``formula`` whose energy is the formula-unit-weighted sum of its end members' lowest entries
    in ``pool`` (zero mixing energy, on their scale); None when an end member has no entry."""
    best = {}
    for e in pool:
        f = e.composition.reduced_formula
        if f in end_members and (f not in best or e.energy_per_atom < best[f].energy_per_atom):
            best[f] = e
    if set(best) != set(end_members):
        return None
    comp = sum((Composition(f) * x for f, x in end_members.items()), Composition())
    if not comp.almost_equals(Composition(formula)):
        raise CoatflowError(f"end members {end_members} do not add up to {formula} (data/cathode_coating_set.yaml)")
    energy = sum(best[f].energy_per_atom * Composition(f).num_atoms * x for f, x in end_members.items())
    scale = best[next(iter(best))].data["energy_scale"]
    return ComputedEntry(Composition(formula), energy, entry_id=f"end members: {formula}",
                         data={"energy_scale": scale, "end_members": end_members})


def cathode_pairs(coating: str, cathodes: dict[str, dict[str, str]], pool,
                  end_members: dict[str, dict[str, float]] | None = None, energy: str = "hull"
                  ) -> dict[str, PairReaction]:
    """'coating | cathode state (formula)' -> the pair's most exothermic reaction on the entries ``pool``.

    ``energy``: 'hull' (reactants at the hull energy of their composition: the mutual reaction alone) or 'own'
    (at their own lowest entry: a metastable charged cathode's own decomposition adds to the driving force);
    the pair's ``reason`` gives the other value. A cathode formula without an entry gets one from
    ``end_members`` (``end_member_entry``), else enters at the hull energy of its composition; ``reason``
    says which."""
    have = {e.composition.reduced_formula for e in pool}
    out = {}
    for name, states in cathodes.items():
        for state, formula in states.items():
            note, extra = None, []
            if Composition(formula).get_integer_formula_and_factor()[0] not in have:  # LiNi0.5Mn1.5O4: Li2Mn3NiO8
                model = end_member_entry(formula, (end_members or {}).get(formula, {}), pool) \
                    if formula in (end_members or {}) else None
                if model is not None:
                    extra = [model]
                    note = ("no entry: zero-mixing-energy sum of " +
                            " + ".join(f"{x:g} {f}" for f, x in end_members[formula].items()))
                else:
                    note = "no entry: the convex-hull energy of its composition is used"
            pair = _pair(coating, formula, [*pool, *extra], {}, 0.0, use_hull_energy=energy == "hull")
            if pair.status == "computed":
                other = _pair(coating, formula, [*pool, *extra], {}, 0.0, use_hull_energy=energy != "hull")
                pair.reason = "; ".join(x for x in (
                    f"{'own' if energy == 'hull' else 'hull'} energies: {other.reaction_energy:.3f} eV/atom", note) if x)
            out[f"{coating} | {name} {state} ({formula})"] = pair
    return out


@job(name="cathode compatibility verdict", output_schema=CathodeCompatibilityResult)
def cathode_compatibility_verdict(ident, cand_doc, phase_docs, structure, cathodes, threshold, source=None,
                                  energy="hull"):
    try:
        cand, entries = entries_on_scale(cand_doc, phase_docs, source)
    except (CoatflowError, AnalysisError) as exc:
        return not_computed(CathodeCompatibilityResult, ident, structure, str(exc))
    pairs = cathode_pairs(cand.composition.reduced_formula, cathodes, [*entries, cand],
                          cathode_coating_set().get("end_members"), energy)
    return respond(CathodeCompatibilityResult.from_pairs(ident, pairs, threshold, structure=structure,
                                                         backend=backend_of(source)))


@dataclasses.dataclass
class CathodeCompatibilityStage(Stage):
    """cathode compatibility: no coating | cathode reaction (discharged or charged) below the threshold."""

    stage: ClassVar[str] = "cathode_compatibility"
    phase_diagram: ClassVar[bool] = True
    name: str = "cathode compatibility"
    cathodes: Annotated[list[str], Field(description="names in data/cathode_coating_set.yaml, each in both states"),
                        AfterValidator(_cathode_names)] = dataclasses.field(
        default_factory=lambda: list(cathode_coating_set()["cathodes"]))
    reaction_energy_min: Annotated[float, Field(le=0, ge=-5, allow_inf_nan=False, description=(
        "eV/atom of the mixture; a more negative reaction fails (docs/cathode_coating.md)"))] = -0.1
    reactant_energy: Annotated[Literal["hull", "own"], Field(description=(
        "hull: reactants at their hull energy (the mutual reaction) | own: at their own entry (a metastable "
        "charged cathode's decomposition counts too)"))] = "hull"

    @classmethod
    def note(cls, details: dict) -> str:
        pairs = details.get("pairs") or {}
        return f" {sum(v['status'] == 'computed' for v in pairs.values())}/{len(pairs)} pairs" if pairs else ""

    def partner_elements(self) -> set[Element]:
        """The elements of the configured cathodes, both states: with the coating's and Li, the chemical system
        whose entries the stage reads (also the MP pre-flight's, launchers/local.py)."""
        return {el for n in self.cathodes for f in cathode_coating_set()["cathodes"][n].values()
                for el in Composition(f).elements}

    def plan(self, planner, plan, upstream: str, verdict):
        cathodes = {n: cathode_coating_set()["cathodes"][n] for n in self.cathodes}
        elements = {*Composition(plan.candidate.formula).elements, Element("Li"), *self.partner_elements()}
        cand, phases, _, source = phase_inputs(planner, plan, upstream, verdict, elements,
                                               extra=cathode_phases_for(elements))
        key = stage_key(planner, upstream, self.stage, sorted(phases), entries_state(source), self.key_settings(),
                        cathodes)
        return planner.gate(plan, key, self.stage, source.get("backend", "mlip"), lambda: cathode_compatibility_verdict(
            plan.ident, cand, phases, verdict.structure, cathodes, self.reaction_energy_min, source,
            self.reactant_energy))

"""The cathode_compatibility verdict: the coating's most exothermic reaction with each cathode, both states."""

from __future__ import annotations

from pydantic import Field
from pymatgen.core import Structure

from coatflow.workflows.schemas.stage import StageResult
from coatflow.workflows.schemas.thermo import PairReaction, PairsDetails


class CathodeCompatibilityDetails(PairsDetails):
    """Pairs keyed 'coating | cathode state (formula)'."""


class CathodeCompatibilityResult(StageResult):
    """Passed when no coating | cathode reaction is more exothermic than the threshold (eV/atom of the mixture)."""

    stage: str = "cathode_compatibility"
    details: CathodeCompatibilityDetails = Field(default_factory=CathodeCompatibilityDetails)

    @classmethod
    def from_pairs(cls, ident: dict, pairs: dict[str, PairReaction], threshold: float, *,
                   structure: Structure | None = None, backend: str | None = None) -> CathodeCompatibilityResult:
        """Failed when a computed pair reacts below ``threshold``; not computed when no pair is, or when one
        is missing and none failed."""
        done = {k: v for k, v in pairs.items() if v.status == "computed"}
        skipped = sorted(k for k in pairs if k not in done)
        worst = min(done, key=lambda k: done[k].reaction_energy, default=None)
        why = "; ".join(sorted({pairs[k].reason or "" for k in skipped}))
        if not done:
            status, reason = "not_computed", why
        elif done[worst].reaction_energy < threshold:
            bad = sorted(k for k, v in done.items() if v.reaction_energy < threshold)
            status, reason = "failed", "; ".join(f"{k}: {done[k].reaction_energy:.3f} eV/atom -> "
                                                 f"{', '.join(done[k].products)}" for k in bad)
        elif skipped:
            status, reason = "not_computed", why
        else:
            status, reason = "passed", None
        return cls(**ident, status=status, value=None if worst is None else done[worst].reaction_energy,
                   unit="eV/atom", criterion=f">= {threshold} eV/atom", reason=reason, structure=structure,
                   backend=backend, details=CathodeCompatibilityDetails(pairs=pairs, pairs_not_computed=skipped))

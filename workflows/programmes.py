"""The programmes that run on the one funnel engine: each an ordered stage list and its default overrides.

``anode_coating`` is ``workflows.stages.STAGES`` with the stages' own defaults (the existing behaviour).
``cathode_coating`` (issue #18, docs/cathode_coating.md) screens coatings between a high-voltage cathode and
a sulfide electrolyte: database filter, bulk relaxation, phase stability, the electrochemical window with its
oxidation limit at the cathode's top of charge, compatibility with the cathodes (a stage module of its own),
with the sulfide electrolytes (the interfacial_reactions stage, without Li metal) and the Li migration barrier.
Its shared stages are the same classes; only their defaults differ (``DEFAULTS``), applied to the config
sections a user did not set (launchers/config.py).

Everything that orders stages by name (the table, the builder, the report) reads ``ALL_STAGES``, the union of
the programmes' lists in funnel order; the planner and the config read ``stages_of(programme)``.
"""

from __future__ import annotations

from coatflow.workflows.stages import STAGES, Stage
from coatflow.workflows.stages.bulk_relax import BulkRelaxStage
from coatflow.workflows.stages.cathode_compatibility import CathodeCompatibilityStage, cathode_coating_set
from coatflow.workflows.stages.database_filter import DatabaseFilterStage
from coatflow.workflows.stages.interfacial_reactions import InterfacialReactionsStage
from coatflow.workflows.stages.migration_barrier import MigrationBarrierStage
from coatflow.workflows.stages.phase_stability import PhaseStabilityStage
from coatflow.workflows.stages.stability_window import StabilityWindowStage

DEFAULT_PROGRAMME = "anode_coating"

PROGRAMMES: dict[str, tuple[type[Stage], ...]] = {
    "anode_coating": STAGES,
    "cathode_coating": (DatabaseFilterStage, BulkRelaxStage, PhaseStabilityStage, StabilityWindowStage,
                        CathodeCompatibilityStage, InterfacialReactionsStage, MigrationBarrierStage),
}

#: top-of-charge voltage of the default cathodes (NMC811, LiCoO2 cycled to 4.3 V vs Li/Li+)
TOP_OF_CHARGE = 4.3

#: lowest potential the coating meets at the cathode: the discharge cut-off of NMC811/LiCoO2 (3.0 V vs Li/Li+)
DISCHARGE_CUTOFF = 3.0

#: programme -> {config section: {key: default}}, for the sections and keys the config file does not set
DEFAULTS: dict[str, dict[str, dict]] = {
    "anode_coating": {},
    "cathode_coating": {
        # every known coating: those no prototype fits are judged by the formula-level stages (mp_snapshot)
        "candidates": {"source": "formulas", "formulas": list(cathode_coating_set()["coatings"])},
        "thermo": {"entries": "mp_snapshot"},  # MP's phases by formula; local: CHGNet on workflows/cathode_phases.py
        "stability_window": {"oxidation_limit_min": TOP_OF_CHARGE, "reduction_limit_max": DISCHARGE_CUTOFF},
        "interfacial_reactions": {"electrolytes": list(cathode_coating_set()["electrolytes"]), "with_li_metal": False},
    },
}


def _union() -> tuple[type[Stage], ...]:
    out = list(STAGES)
    for stages in PROGRAMMES.values():
        for i, s in enumerate(stages):
            if s not in out:  # after its predecessor in its own programme
                out.insert(out.index(stages[i - 1]) + 1 if i else 0, s)
    return tuple(out)


#: every stage of every programme, in funnel order
ALL_STAGES: tuple[type[Stage], ...] = _union()
ALL_STAGE_NAMES: tuple[str, ...] = tuple(s.stage for s in ALL_STAGES)


def stages_of(programme: str = DEFAULT_PROGRAMME) -> tuple[type[Stage], ...]:
    """The ordered stage list of ``programme``."""
    return PROGRAMMES[programme]

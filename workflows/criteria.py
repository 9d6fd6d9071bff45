"""Stage order of the anode-coating funnel; the element exclusion lists live in workflows/analysis/criteria.py
(re-exported here for the modules that still import them from this one)."""

from __future__ import annotations

from coatflow.workflows.analysis.criteria import (  # noqa: F401 - re-exported
    EXCLUSION_LISTS, PRECIOUS_ELEMENTS, RADIOACTIVE_ELEMENTS, TOXIC_ELEMENTS, excluded_elements)

#: Funnel stages, cheapest first. A candidate that fails one never reaches the next. The two phase-diagram
#: stages (window, interfacial reactions) reuse the phase_stability relaxations, so they run before the
#: elastic tensor; the survivors are the same in any order, only the cost differs.
STAGES: tuple[str, ...] = (
    "database_filter",
    "bulk_relax",
    "phase_stability",  # E_hull: the database filter's hull criterion, on the campaign's own energies
    "stability_window",
    "interfacial_reactions",
    "shear_modulus",
    "li_adsorption",
    "migration_barrier",
)

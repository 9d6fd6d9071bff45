"""The funnel: one module per stage, and the one ordered list from which everything else derives.

Config sections, the commented YAML of ``coatflow init``, the table's columns, the planner's order and the
builder all read ``STAGES``. Adding a stage is one new module (a ``Stage`` subclass) plus one line here.
Cheapest first: a candidate that fails one never reaches the next; the phase-diagram stages reuse the
phase-stability relaxations, so they run before the elastic tensor.
"""

from __future__ import annotations

from coatflow.workflows.stages.base import Stage
from coatflow.workflows.stages.bulk_relax import BulkRelaxStage
from coatflow.workflows.stages.database_filter import DatabaseFilterStage
from coatflow.workflows.stages.dendrite_suppression import DendriteSuppressionStage
from coatflow.workflows.stages.interfacial_reactions import InterfacialReactionsStage
from coatflow.workflows.stages.li_adsorption import LiAdsorptionStage
from coatflow.workflows.stages.migration_barrier import MigrationBarrierStage
from coatflow.workflows.stages.phase_stability import PhaseStabilityStage
from coatflow.workflows.stages.shear_modulus import ShearModulusStage
from coatflow.workflows.stages.stability_window import StabilityWindowStage

STAGES: tuple[type[Stage], ...] = (
    DatabaseFilterStage,
    BulkRelaxStage,
    PhaseStabilityStage,
    StabilityWindowStage,
    InterfacialReactionsStage,
    ShearModulusStage,
    DendriteSuppressionStage,  # off by default (enabled: false): hands the shear verdict on
    LiAdsorptionStage,
    MigrationBarrierStage,
)

STAGE_NAMES: tuple[str, ...] = tuple(s.stage for s in STAGES)

__all__ = ["STAGES", "STAGE_NAMES", "Stage"]

"""Typed documents of the campaign, one module per kind (see docs/architecture.md).

One verdict document per funnel stage (a ``StageResult`` with typed ``details``): ``funnel`` (database
filter, bulk relaxation), ``thermo`` (phase stability, window, interfacial reactions), ``elastic``,
``adsorption``, ``migration``; calculator documents in ``calcs``; the side programmes' documents in
``surfaces``, ``defects`` and ``potential_maps``.
"""

from coatflow.workflows.schemas.adsorption import AdsorptionSite, LiAdsorptionDetails, LiAdsorptionDoc, LiAdsorptionResult
from coatflow.workflows.schemas.calcs import BandGapDoc, DefectCalcDoc, DielectricDoc, MigrationHopResult, PotentialDoc
from coatflow.workflows.schemas.defects import DefectChargeState, DefectThermoDoc, FermiPoint
from coatflow.workflows.schemas.dendrite import DendriteSuppressionDetails as DendriteSuppressionDetails, DendriteSuppressionResult as DendriteSuppressionResult  # noqa: E501
from coatflow.workflows.schemas.elastic import ShearModulusDetails, ShearModulusResult
from coatflow.workflows.schemas.funnel import BulkRelaxDetails, BulkRelaxResult, DatabaseFilterDetails, DatabaseFilterResult
from coatflow.workflows.schemas.migration import MigrationBarrierResult, MigrationDetails
from coatflow.workflows.schemas.potential_maps import CathodeVoltageDoc, PotentialMapDoc
from coatflow.workflows.schemas.stage import CandidateDoc, StageResult, StageSummary, Status
from coatflow.workflows.schemas.surfaces import SlabSurfaceDoc, SurfaceSummaryDoc
from coatflow.workflows.schemas.thermo import (
    InterfacialReactionsDetails, InterfacialReactionsResult, PhaseStabilityDetails, PhaseStabilityResult,
    StabilityWindowDetails, StabilityWindowResult)

__all__ = [
    "AdsorptionSite", "BandGapDoc", "BulkRelaxDetails", "BulkRelaxResult", "CandidateDoc", "CathodeVoltageDoc",
    "DatabaseFilterDetails", "DatabaseFilterResult", "DefectCalcDoc", "DefectChargeState", "DefectThermoDoc",
    "DielectricDoc", "FermiPoint", "InterfacialReactionsDetails", "InterfacialReactionsResult",
    "LiAdsorptionDetails", "LiAdsorptionDoc", "LiAdsorptionResult", "MigrationBarrierResult", "MigrationDetails",
    "MigrationHopResult", "PhaseStabilityDetails", "PhaseStabilityResult", "PotentialDoc", "PotentialMapDoc",
    "ShearModulusDetails", "ShearModulusResult", "SlabSurfaceDoc", "StabilityWindowDetails", "StabilityWindowResult",
    "StageResult", "StageSummary", "Status", "SurfaceSummaryDoc",
]

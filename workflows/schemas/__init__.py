"""Typed documents of the campaign, one module per kind (see docs/architecture.md)."""

from coatflow.workflows.schemas.stage import StageResult, StageSummary, CandidateDoc
from coatflow.workflows.schemas.calcs import PotentialDoc, BandGapDoc, DefectCalcDoc, DielectricDoc, MigrationHopResult
from coatflow.workflows.schemas.surfaces import SlabSurfaceDoc, SurfaceSummaryDoc
from coatflow.workflows.schemas.adsorption import AdsorptionSite, LiAdsorptionDoc
from coatflow.workflows.schemas.defects import DefectChargeState, FermiPoint, DefectThermoDoc
from coatflow.workflows.schemas.potential_maps import CathodeVoltageDoc, PotentialMapDoc
from coatflow.workflows.schemas.stage import Status

__all__ = ["AdsorptionSite", "BandGapDoc", "CandidateDoc", "CathodeVoltageDoc", "DefectCalcDoc", "DefectChargeState", "DefectThermoDoc", "DielectricDoc", "FermiPoint", "LiAdsorptionDoc", "MigrationHopResult", "PotentialDoc", "PotentialMapDoc", "SlabSurfaceDoc", "StageResult", "StageSummary", "Status", "SurfaceSummaryDoc"]

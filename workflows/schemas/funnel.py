"""Verdict documents of the first two funnel stages: the database filter and the bulk relaxation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from coatflow.workflows.schemas.stage import StageResult, Status


class FilterCheck(BaseModel):
    """One criterion of the database filter."""

    status: Status
    value: float | None = None
    limit: float | None = None
    reason: str | None = None
    excluded_groups: list[str] | None = None


class DatabaseFilterDetails(BaseModel):
    checks: dict[str, FilterCheck] = Field(default_factory=dict, description="elements, band_gap, e_hull")


class DatabaseFilterResult(StageResult):
    """Element exclusions, and the database band gap and E_hull where the source gave them."""

    stage: Literal["database_filter"] = "database_filter"
    details: DatabaseFilterDetails = Field(default_factory=DatabaseFilterDetails)


class BulkRelaxDetails(BaseModel):
    volume: float | None = Field(None, description="Å^3, relaxed cell")
    nsites: int | None = None
    prototype: str | None = Field(None, description="predicted candidates: the prototype that won")
    prototype_energies: dict[str, float | None] = Field(default_factory=dict, description="eV/atom per prototype")


class BulkRelaxResult(StageResult):
    """The relaxed structure handed to every later stage, and its energy per atom."""

    stage: Literal["bulk_relax"] = "bulk_relax"
    details: BulkRelaxDetails = Field(default_factory=BulkRelaxDetails)

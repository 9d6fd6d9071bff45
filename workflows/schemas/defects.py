"""Charged point defects: formation energies per charge state and E_F(mu_Li)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class DefectChargeState(BaseModel):
    """Formation energy of one defect in one charge state: E_f = e0 + q E_F - sum_i dn_i dmu_i (E_F from the VBM)."""

    name: str = Field(description="pymatgen-analysis-defects name, e.g. v_Li, Li_i, F_Li")
    charge: int
    dn: dict[str, int] = Field(description="atoms added (+) or removed (-) per element")
    multiplicity: float = Field(description="equivalent sites per primitive cell")
    sites_per_cm3: float
    energy_defect: float
    energy_bulk: float
    correction: float = Field(description="eV, finite-size correction (Freysoldt), added to E_f")
    correction_metadata: dict[str, Any] = Field(default_factory=dict)
    e0_at_li_rich: float = Field(description="eV, E_f at E_F = VBM and the Li-rich (reduction) limit")
    max_displacement: float | None = None
    calc_uuid: str | None = None


class FermiPoint(BaseModel):
    """Charge neutrality at one mu_Li."""

    mu_li: float = Field(description="eV, mu_Li - mu_Li(bcc Li)")
    voltage: float = Field(description="V vs Li/Li+, = -mu_li/e")
    chempots: dict[str, float] = Field(description="eV, absolute chemical potentials used")
    fermi_level: float = Field(description="eV above the VBM")
    electrons: float = Field(description="cm^-3")
    holes: float = Field(description="cm^-3")
    concentrations: dict[str, float] = Field(description="cm^-3 per 'name q'")
    dominant: list[str] = Field(default_factory=list, description="largest positive and negative species")


class DefectThermoDoc(BaseModel):
    """Formation energies, corrections and E_F(mu_Li) for one material."""

    material_id: str
    formula: str
    backend: str = "gpaw"
    temperature: float
    supercell_matrix: list[list[int]]
    n_supercell_sites: int
    dielectric: list[list[float]] = Field(description="static (electronic + ionic) dielectric tensor")
    dielectric_source: str
    vbm: float = Field(description="eV, bulk primitive-cell VBM (absolute, the E_F = 0 reference)")
    band_gap: float = Field(description="eV, bulk (PBE) gap")
    window: dict[str, Any] = Field(default_factory=dict, description="stability window (V vs Li/Li+) and source")
    mu_reference: dict[str, Any] = Field(default_factory=dict, description="how absolute mu_i were anchored")
    charge_states: list[DefectChargeState] = Field(default_factory=list)
    fermi: list[FermiPoint] = Field(default_factory=list, description="E_F on the mu_Li grid, Li-rich first")
    fermi_level_li_rich: float | None = Field(None, description="eV above VBM at the reduction limit")
    fermi_level_li_poor: float | None = Field(None, description="eV above VBM at the oxidation limit")
    slope_regimes: list[dict[str, float]] = Field(
        default_factory=list, description="ranges of constant dE_F/dmu_Li (= -dE_F/dV)")
    freysoldt_note: str = ""
    warnings: list[str] = Field(default_factory=list, description="e.g. negative formation energies (dilute limit broken)")
    timings: dict[str, float] = Field(default_factory=dict, description="s, calculator wall time per job")
    settings: dict[str, Any] = Field(default_factory=dict)

"""Interface potential maps: cathode voltages and the Li | electrolyte | cathode stack."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CathodeVoltageDoc(BaseModel):
    """Lithiation energies and open-circuit voltages of one cathode (workflows/cathode.py, analysis/cathode.py)."""

    material_id: str
    formula: str
    kind: str = Field(description="layered | spinel | other (sets the default states of charge)")
    backend: str
    host: str = Field(description="Li-free host formula unit, e.g. CoO2")
    x_max: float = Field(description="Li per host formula unit when fully lithiated")
    mu_li: float = Field(description="eV/atom, bcc Li on the same calculator")
    points: list[dict[str, Any]] = Field(default_factory=list, description="every relaxed Li content")
    steps: list[dict[str, float]] = Field(default_factory=list, description="convex-hull voltage steps (V)")
    states: list[dict[str, float]] = Field(default_factory=list, description="state_of_charge, x, ocv (V)")
    average_voltage: float | None = Field(None, description="V, x_max -> 0")
    task_uuids: list[str] = Field(default_factory=list)


class PotentialMapDoc(BaseModel):
    """One Li | electrolyte | cathode stack at one state of charge (workflows/analysis/interface_potential.py)."""

    electrolyte: str
    cathode: str
    state_of_charge: float = Field(description="fraction of the cathode's Li removed")
    ocv: float = Field(description="V vs Li/Li+")
    delta_phi_anode: float = Field(description="V, phi(SE at Li) - phi(Li); > 0 is a barrier to discharge")
    delta_phi_cathode: float = Field(description="V, phi(cathode) - phi(SE at cathode); > 0 a barrier to discharge")
    barrier_anode: str
    barrier_cathode: str
    grey_anode: float = Field(description="eV, mu_Li drop at the anode interface (outside the SE window)")
    grey_cathode: float = Field(description="eV, mu_Li drop at the cathode interface")
    mu_li_electrolyte: list[float] = Field(description="eV, SE mu_Li at its anode and cathode sides")
    phi: dict[str, float] = Field(default_factory=dict, description="V: li, electrolyte_anode, electrolyte_cathode, cathode")
    band_edges: dict[str, dict[str, float]] = Field(default_factory=dict, description="eV vs the Li Fermi level")
    vacuum_level_li: float = Field(description="eV above the Li Fermi level (Li work function)")
    flags: list[str] = Field(default_factory=list)
    profile: dict[str, list] = Field(default_factory=dict, description="mu_li, voltage, region, phi, vbm, cbm")
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict, description="value, backend, job of each input")
    settings: dict[str, Any] = Field(default_factory=dict)
    completed_at: str | None = None

"""Calculator documents: what one calculation (GPAW single point, band gap, defect cell, dielectric, NEB hop) returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure


class PotentialDoc(BaseModel):
    """One GPAW single point with what an IP needs; ``potential`` (planar average, eV) goes to the data store."""

    structure: Structure
    energy: float = Field(description="eV, total")
    n_sites: int
    fermi_level: float = Field(description="eV")
    vbm: float | None = Field(None, description="eV, highest state below the Fermi level")
    cbm: float | None = Field(None, description="eV, lowest state above the Fermi level")
    metallic: bool = Field(False, description="partly filled bands: band counts below E_F differ between k-points")
    mean_potential: float = Field(description="eV, cell average of the electrostatic potential")
    potential: list[float] = Field(default_factory=list, description="eV, planar average along c")
    height: float = Field(description="Å, cell height along the surface normal (c)")
    is_slab: bool = False
    calculator: dict[str, Any] = Field(default_factory=dict)
    elapsed_time: float | None = None

    model_config = {"arbitrary_types_allowed": True}


class BandGapDoc(BaseModel):
    """Band gap of one bulk phase (interfacial reaction products)."""

    formula: str
    band_gap: float = Field(description="eV; 0 when bands cross the Fermi level")
    vbm: float | None = Field(None, description="eV")
    cbm: float | None = Field(None, description="eV")
    n_kpoints: int | None = None
    source: str = Field(description="e.g. 'GPAW PBE'")
    calculator: dict[str, Any] = Field(default_factory=dict)
    elapsed_time: float | None = None


class DefectCalcDoc(BaseModel):
    """One GPAW supercell in one charge state; ``planar_potential`` and ``eigenvalues`` go to the data store."""

    structure: Structure = Field(description="final (relaxed at fixed cell) structure")
    input_structure: Structure | None = None
    charge: int = 0
    energy: float = Field(description="eV, total")
    n_electrons: float | None = None
    fermi_level: float | None = None
    vbm: float | None = Field(None, description="eV, highest (mostly) occupied state")
    cbm: float | None = Field(None, description="eV, lowest (mostly) empty state")
    planar_potential: dict[str, list[float]] = Field(
        default_factory=dict, description="eV, electrostatic potential averaged over planes normal to axis 0/1/2")
    mean_potential: float | None = None
    eigenvalues: list = Field(default_factory=list, description="eV, [spin][k][band]")
    k_weights: list[float] = Field(default_factory=list)
    nspins: int = 1
    max_force: float | None = Field(None, description="eV/Å after the last step")
    ionic_steps: int = 0
    max_displacement: float | None = Field(None, description="Å, largest ionic displacement from the input")
    calculator: dict[str, Any] = Field(default_factory=dict)
    elapsed_time: float | None = None

    model_config = {"arbitrary_types_allowed": True}


class DielectricDoc(BaseModel):
    """Static dielectric tensor of a bulk cell: eps_total = eps_electronic + eps_ionic (makers/dielectric.py)."""

    structure: Structure = Field(description="the (primitive) cell computed")
    formula: str
    eps_electronic: list[list[float]] = Field(description="eps_inf, RPA with local fields, q -> 0, omega = 0")
    eps_electronic_no_local_fields: list[list[float]] = Field(default_factory=list)
    eps_ionic: list[list[float]] = Field(description="4 pi e^2/Omega sum over optical modes Zm Zm / omega^2")
    eps_total: list[list[float]] = Field(description="static (electronic + ionic) tensor, for Freysoldt")
    eps_total_average: float = Field(description="trace / 3")
    born_charges: list[list[list[float]]] = Field(
        description="e, per atom [a][b] = Omega dP_a/du_b, acoustic sum rule imposed")
    born_charges_raw: list[list[list[float]]] = Field(default_factory=list, description="e, before the ASR fix")
    born_asr_violation: float = Field(description="e, max |sum over atoms of Z| before the fix")
    force_constants: list[list[float]] = Field(default_factory=list, description="eV/Å^2, 3N x 3N, raw")
    phonon_frequencies: list[float] = Field(description="cm^-1 at Gamma, all 3N modes (negative = imaginary)")
    acoustic_modes: list[int] = Field(description="indices of the three acoustic modes (excluded from eps_ionic)")
    mode_effective_charges: list[list[float]] = Field(default_factory=list, description="e/sqrt(amu), [mode][a]")
    displacement_runs: int = 0
    method: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict, description="s")
    elapsed_time: float | None = Field(None, description="s, wall time of the whole job")

    model_config = {"arbitrary_types_allowed": True}


class MigrationHopResult(BaseModel):
    """One Li-vacancy hop's CI-NEB (makers/neb.py); ``images`` go to the ``data`` store."""

    hop_label: int
    length: float = Field(description="Å")
    iindex: int
    eindex: int
    backend: str
    n_atoms: int
    n_images: int = Field(description="intermediate images")
    climbing: bool = True
    forward_barrier: float | None = Field(None, description="eV, E_max - E_start")
    reverse_barrier: float | None = Field(None, description="eV, E_max - E_end")
    energy_profile: list[float] = Field(default_factory=list, description="eV, relative to the start")
    reaction_coordinate: list[float] = Field(default_factory=list, description="Å, cumulative")
    climbing_image: int | None = None
    max_force: float | None = Field(None, description="eV/Å, largest NEB force at the end")
    fmax: float | None = None
    neb_steps: int | None = None
    endpoints: list[dict[str, Any]] = Field(default_factory=list, description="fixed-cell endpoint relaxations")
    converged: bool = False
    status: Literal["converged", "unconverged", "inputs_written"] = "unconverged"
    inputs_dir: str | None = None
    wall_time: float | None = Field(None, description="s")
    images: list[Structure] = Field(default_factory=list)

    model_config = {"arbitrary_types_allowed": True}

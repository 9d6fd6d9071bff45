"""Documents the campaign writes: one StageResult per (material, stage), and the candidate summary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

Status = Literal["passed", "failed", "not_computed"]


class StageResult(BaseModel):
    """The verdict of one funnel stage for one material (a job output in the JobStore)."""

    material_id: str
    formula: str
    stage: str
    status: Status
    source: str | None = Field(None, description="where the candidate came from, e.g. 'example', 'mp', a file")
    value: float | None = None
    unit: str | None = None
    criterion: str | None = Field(None, description="e.g. '>= 35 GPa'")
    reason: str | None = Field(None, description="why the stage failed or was not computed")
    backend: str | None = None
    task_uuids: list[str] = Field(default_factory=list, description="jobs the value came from")
    predicted: bool = Field(False, description="structure predicted by prototype substitution")
    details: dict[str, Any] = Field(default_factory=dict)
    structure: Structure | None = Field(None, description="structure handed to the next stage")
    structures: dict[str, Structure] = Field(
        default_factory=dict, description="alternative structures handed on, e.g. prototype polymorphs"
    )

    model_config = {"arbitrary_types_allowed": True}

    @property
    def passed(self) -> bool:
        """Whether later stages should run (a stage that could not be computed does not block)."""
        return self.status != "failed"


class StageSummary(BaseModel):
    status: Status
    value: float | None = None
    unit: str | None = None
    criterion: str | None = None
    reason: str | None = None
    backend: str | None = None
    task_uuids: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class CandidateDoc(BaseModel):
    """One document per material in the ``candidates`` collection, written by CandidateBuilder."""

    material_id: str
    formula: str
    source: str | None = None
    predicted: bool = False
    stages: dict[str, StageSummary] = Field(default_factory=dict)
    furthest_stage: str | None = None
    failed_stage: str | None = None
    stages_passed: int = 0
    last_job_completed_at: str | None = None


# -- surfaces (workflows/surfaces.py, makers/slab.py) ------------------------------------------


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


class SlabSurfaceDoc(BaseModel):
    """One (material, facet, termination): surface energy, vacuum level and band edges."""

    material_id: str
    formula: str
    miller_index: tuple[int, int, int]
    shift: float
    termination: str
    n_sites: int
    symmetric: bool
    polar: bool
    stoichiometric: bool
    vacuum: float = Field(description="Å, requested vacuum thickness")
    slab_thickness: float = Field(description="Å, outermost atom planes")
    surface_energy: float | None = Field(None, description="J/m^2")
    surface_energy_note: str | None = None
    vacuum_level: float = Field(description="eV, mean of the plateau(s)")
    vacuum_levels: dict[str, float] = Field(default_factory=dict, description="eV, 'bottom' and 'top' plateaus")
    plateau_spread: float = Field(description="eV, largest peak-to-peak variation on a plateau")
    plateau_flat: bool
    fermi_level: float
    work_function: float | None = Field(None, description="eV, metals: vacuum - Fermi level")
    ionization_potential: float | None = Field(None, description="eV, vacuum - bulk-aligned VBM")
    ionization_potential_slab: float | None = Field(None, description="eV, vacuum - slab VBM (no alignment)")
    electron_affinity: float | None = Field(None, description="eV, vacuum - bulk-aligned CBM (PBE gap)")
    alignment_shift: float | None = Field(None, description="eV, slab-middle minus bulk average potential")
    metallic: bool
    backend: str = "gpaw"
    calc_uuid: str | None = Field(None, description="job whose data blob holds the potential profile")


class SurfaceSummaryDoc(BaseModel):
    """One per material: the lowest-energy termination and its IP / EA / work function."""

    material_id: str
    formula: str
    metallic: bool
    best: SlabSurfaceDoc | None = None
    ionization_potential: float | None = None
    electron_affinity: float | None = None
    work_function: float | None = None
    surface_energy: float | None = Field(None, description="J/m^2, of the chosen termination")
    bulk_gap: float | None = Field(None, description="eV, PBE")
    surfaces: list[SlabSurfaceDoc] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="slabs not computed, with the reason")
    vacuum_convergence: dict[str, float] | None = Field(None, description="IP or WF at two vacuum thicknesses")
    backend: str = "gpaw"
    settings: dict[str, Any] = Field(default_factory=dict)


# --- Li adsorption (li_adsorption stage) ------------------------------------------------------


class AdsorptionSite(BaseModel):
    """One symmetry-distinct Li site on the chosen surface, after relaxation."""

    index: int
    site_type: str = Field(..., description="ontop | bridge | hollow, from the nearest top-layer atoms")
    site_atoms: list[str] = Field(default_factory=list, description="top-layer atoms defining the site")
    coordination: int | None = Field(None, description="slab atoms within 2.8 A of the relaxed Li")
    neighbours: list[str] = Field(default_factory=list)
    e_ads_ml: float | None = Field(None, description="eV, vs bulk bcc Li, ML backend")
    e_ads_dft: float | None = Field(None, description="eV, vs bulk bcc Li, DFT backend (confirmed sites only)")
    flags: list[str] = Field(default_factory=list, description="desorbed | subsurface | reconstructed | not_converged")
    li_height: float | None = Field(None, description="A above the top slab atom, after relaxation")
    max_slab_displacement: float | None = Field(None, description="A, vs the relaxed clean slab")
    relaxed_to: int | None = Field(None, description="site the Li ended on (index), None if between sites")
    structure: Structure | None = Field(None, description="relaxed slab + Li")

    model_config = {"arbitrary_types_allowed": True}


class LiAdsorptionDoc(BaseModel):
    """Li adsorption on the most stable surface: E_ads = E(slab+Li) - E(slab) - mu_Li."""

    reference: str = "bulk bcc Li (energy per atom of the relaxed bcc cell, same calculator)"
    mu_li: dict[str, float] = Field(default_factory=dict, description="eV/atom per backend")
    isolated_atom_energy: dict[str, float] = Field(
        default_factory=dict, description="eV, isolated Li atom per backend: a labelled extra, not the reference")
    surface: dict[str, Any] = Field(default_factory=dict, description="chosen facet/termination and how")
    surfaces: list[dict[str, Any]] = Field(default_factory=list, description="surface energies compared")
    slab: Structure | None = Field(None, description="relaxed clean slab (bottom layers fixed)")
    slab_energy: dict[str, float] = Field(default_factory=dict, description="eV per backend")
    sites: list[AdsorptionSite] = Field(default_factory=list)
    e_ads_min: float | None = Field(None, description="eV, lowest physical site")
    min_site: int | None = None
    min_backend: str | None = Field(None, description="backend that produced e_ads_min")
    ml_backend: str = "mlip"
    dft: dict[str, Any] = Field(default_factory=dict, description="DFT confirmation: status, backend, reason, metric")
    reason: str | None = Field(None, description="why no E_ads could be given")

    model_config = {"arbitrary_types_allowed": True}


# --- charged point defects and E_F(mu_Li) (workflows/defects.py, issue 5) ---------------------


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


class CathodeVoltageDoc(BaseModel):
    """Lithiation energies and open-circuit voltages of one cathode (workflows/cathode.py)."""

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
    """One Li | electrolyte | cathode stack at one state of charge (workflows/interface_potential.py)."""

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

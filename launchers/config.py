"""The campaign configuration: one YAML file, validated by pydantic.

Secrets never live here: the MongoDB password comes from ``COATFLOW_MONGODB_PASSWORD``
and the Materials Project key from ``MP_API_KEY``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coatflow.workflows.errors import CoatflowError

DEFAULT_CONFIG_NAME = "coatflow.yaml"
Backend = Literal["mlip", "vasp", "gpaw"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MPQuery(_Strict):
    elements: list[str] = ["Li", "O"]
    num_elements: int = Field(3, ge=1, le=8)
    max_results: int = Field(200, ge=1)


class CandidateConfig(_Strict):
    source: Literal["example", "files", "materials_project", "formulas"] = "example"
    paths: list[str] = []
    formulas: list[str] = []
    mp: MPQuery = MPQuery()

    @model_validator(mode="after")
    def _source_has_inputs(self):
        if self.source == "files" and not self.paths:
            raise ValueError("candidates.paths must list files or folders when source is 'files'")
        if self.source == "formulas" and not self.formulas:
            raise ValueError("candidates.formulas must list formulas when source is 'formulas'")
        return self


class BackendConfig(_Strict):
    relax: Backend = "mlip"
    elastic: Backend = "mlip"
    slab: Backend = "gpaw"
    defects: Backend = "gpaw"
    adsorption: Backend = "mlip"
    neb: Backend = "mlip"
    band_gap: Backend = "gpaw"


class Thresholds(_Strict):
    """Stage criteria of the anode-coating funnel."""

    band_gap_min: float = Field(0.5, ge=0, description="eV")
    e_hull_max: float = Field(0.005, ge=0, description="eV/atom")
    exclude: list[Literal["toxic", "radioactive", "precious"]] = ["toxic", "radioactive", "precious"]
    g_vrh_min: float = Field(35.0, ge=0, description="GPa")
    reduction_limit_max: float = Field(0.5, description="V vs Li/Li+")
    oxidation_limit_min: float = Field(2.0, description="V vs Li/Li+")
    e_ads_max: float = Field(0.0, description="eV")
    insulator_gap_min: float = Field(0.5, ge=0, description="eV, interfacial products")
    migration_barrier_max: float = Field(0.7, gt=0, description="eV")


class AdsorptionConfig(_Strict):
    """Li adsorption stage (makers/adsorption.py)."""

    top_k: int = Field(3, ge=1, description="lowest ML sites confirmed with DFT")
    dft_backend: Literal["vasp", "gpaw"] | None = None
    layers: int = Field(2, ge=1, description="slab thickness in d_hkl planes")
    vacuum: float = Field(12.0, gt=0, description="A")
    min_lw: float = Field(6.0, gt=0, description="A, minimum in-plane cell length")
    max_index: int = Field(1, ge=1)
    max_atoms: int = Field(60, ge=2, description="larger slabs are skipped")
    max_surfaces: int = Field(2, ge=1, description="terminations relaxed (lowest single-point surface energy)")
    max_sites: int = Field(6, ge=1, description="sites relaxed (lowest single-point energy)")
    fmax: float = Field(0.1, gt=0, description="eV/A, slab and site relaxations")
    steps: int = Field(150, ge=1, description="optimizer steps cap per relaxation")


class ThermoConfig(_Strict):
    """Phase diagrams of phase_stability, stability_window and interfacial_reactions (workflows/thermo_stages.py)."""

    entries: Literal["local", "mp"] = "local"


class InterfacialConfig(_Strict):
    """Interfacial reactions stage (workflows/thermo_stages.py): partners besides Li metal."""

    electrolytes: list[str] = ["Li10GeP2S12", "Li6PS5Cl", "Li7La3Zr2O12", "LiTi2(PO4)3", "LiNbO3"]

    @field_validator("electrolytes")
    @classmethod
    def _formulas(cls, formulas):
        from pymatgen.core import Composition, Element

        for f in formulas:
            try:
                ok = all(isinstance(el, Element) for el in Composition(f).elements)
            except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
                ok = False
            if not ok:  # pymatgen reads unknown symbols such as 'Xq' as dummy species
                raise ValueError(f"'{f}' is not a chemical formula")
        return formulas


class DielectricCalcConfig(_Strict):
    """GPAW static dielectric tensor (makers/dielectric.py), for materials without a defects.dielectric entry."""

    ecut: float = Field(550.0, gt=0, description="eV, Born-charge and force-constant runs")
    kpt_density: float = Field(1.5, gt=0, description="k-points per Å^-1, displacement runs (symmetry off)")
    displacement: float = Field(0.01, gt=0, le=0.1, description="Å, +- finite displacements")
    eps_kpt_density: float = Field(3.0, gt=0, description="k-points per Å^-1, RPA eps_inf ground state")
    nbands: int = Field(60, ge=1, description="bands in the RPA eps_inf")
    response_ecut: float = Field(50.0, gt=0, description="eV, local-field plane waves of eps_inf")
    eta: float = Field(0.001, gt=0, description="eV, broadening of eps_inf")


class DefectsConfig(_Strict):
    """Charged point defects and E_F(mu_Li) (workflows/defects.py); runs on backends.defects (gpaw)."""

    materials: list[str] = []
    include: list[str] | None = Field(None, description="only these defects, e.g. [v_Li, Li_i]")
    substitutions: dict[str, list[str]] = Field(default_factory=dict, description="{host: [dopants]}, e.g. {O: [N]}")
    charges: dict[str, list[int]] = Field(default_factory=dict, description="charge states per defect name")
    charge_padding: int = Field(0, ge=0, description="extra charge states beyond 0..nominal")
    min_length: float = Field(8.0, gt=0, description="Å, minimum distance between periodic images")
    max_atoms: int = Field(64, ge=2)
    temperature: float = Field(300.0, gt=0, description="K")
    n_mu: int = Field(21, ge=2, description="mu_Li grid points across the window")
    dielectric: dict[str, float | list[float] | list[list[float]]] = Field(
        default_factory=dict, description="static dielectric constant per formula; missing: computed (gpaw)")
    dielectric_calc: DielectricCalcConfig = DielectricCalcConfig()
    relax_bulk: bool = True
    relax_steps: int = Field(0, ge=0, description="BFGS steps at fixed cell; 0 or 1 = single point")
    fmax: float = Field(0.05, gt=0, description="eV/Å")
    ecut: float = Field(400.0, gt=0, description="eV, plane waves")
    kpt_density: float = Field(2.0, gt=0, description="k-points per Å^-1, supercells")
    dos_kpt_density: float = Field(5.0, gt=0, description="k-points per Å^-1, primitive bulk (carrier DOS)")


class StoreConfig(_Strict):
    kind: Literal["embedded", "mongodb"] = "embedded"
    path: str = "coatflow_store"
    uri: str | None = None
    database: str = "coatflow"

    @field_validator("uri")
    @classmethod
    def _no_password_in_uri(cls, uri):
        if uri is not None:
            parts = urlsplit(uri)
            if parts.scheme not in ("mongodb", "mongodb+srv"):
                raise ValueError("must start with mongodb:// or mongodb+srv://")
            if parts.password:
                raise ValueError("must not contain a password; set COATFLOW_MONGODB_PASSWORD instead")
        return uri

    @model_validator(mode="after")
    def _mongodb_needs_uri(self):
        if self.kind == "mongodb" and not self.uri:
            raise ValueError("store.uri is required when store.kind is 'mongodb'")
        return self


class SlabConfig(_Strict):
    """Surfaces and ionization potentials (workflows/surfaces.py); GPAW settings are in makers/gpaw.py."""

    ip_materials: list[str] = []
    relax_bulk: bool = Field(True, description="relax the bulk cell (gpaw, 600 eV) before cutting slabs")
    ecut: float = Field(400.0, gt=0, description="eV, plane waves of the bulk reference and slab single points")
    kpt_density: float = Field(3.5, gt=0, description="k-points per Å^-1 (one along the slab normal)")
    max_index: int = Field(1, ge=1, le=3)
    facets: list[tuple[int, int, int]] | None = None
    slab_thickness: float = Field(8.0, gt=0, description="Å, minimum")
    vacuum: float = Field(12.0, gt=0, description="Å")
    vacuum_check: bool = False
    vacuum_step: float = Field(4.0, gt=0, description="Å")
    only_preferred: bool = True
    max_atoms: int = Field(40, ge=1)
    plateau_tol: float = Field(0.03, gt=0, description="eV")
    plateau_distance: float = Field(3.5, gt=0, description="Å")


class RunConfig(_Strict):
    work_dir: str = "coatflow_runs"
    stop_after: str | None = Field(None, description="last funnel stage to run; None runs them all")
    workers: int | None = Field(None, ge=1, description="candidates run in parallel processes; None: the cores available")

    @field_validator("stop_after")
    @classmethod
    def _known_stage(cls, stage):
        from coatflow.workflows.criteria import STAGES

        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage '{stage}' (stages: {', '.join(STAGES)})")
        return stage


class HpcConfig(_Strict):
    """FireWorks LaunchPad and queues for ``coatflow submit / status / resume`` (docs/hpc.md)."""

    launchpad_uri: str | None = None
    launchpad_database: str = "coatflow_fireworks"
    mongomock_file: str | None = None
    fw_dir: str = "fw_config"
    small_category: str = "small"
    large_category: str = "large"
    large_walltime: int = Field(86400, gt=0, description="s, the large queue's time limit")
    lost_run_expiry: int = Field(900, gt=0, description="s without a ping before a RUNNING job counts as lost")
    ping_interval: int = Field(300, gt=0, description="s between a running job's pings")

    @field_validator("launchpad_uri")
    @classmethod
    def _no_password_in_lp_uri(cls, uri):
        return StoreConfig._no_password_in_uri(uri)

    @model_validator(mode="after")
    def _one_launchpad(self):
        if self.launchpad_uri and self.mongomock_file:
            raise ValueError("set hpc.launchpad_uri or hpc.mongomock_file, not both")
        if self.ping_interval >= self.lost_run_expiry:
            raise ValueError("hpc.ping_interval must be shorter than hpc.lost_run_expiry")
        return self


class MigrationConfig(_Strict):
    """Li-vacancy migration stage (makers/neb.py, workflows/migration.py)."""

    hop_cutoff: float = Field(4.0, gt=0, description="Å, longest Li-Li hop considered")
    rel_cutoff: float | None = Field(1.3, ge=1, description="skip hops longer than this x the shortest hop")
    min_size: float = Field(7.0, gt=0, description="Å, minimum perpendicular width of the vacancy supercell")
    max_atoms: int = Field(160, ge=2, description="hops needing larger supercells are skipped")
    max_hops: int = Field(4, ge=1, description="shortest symmetry-distinct hops computed")
    n_images: int = Field(3, ge=1, description="intermediate NEB images")
    fmax: float = Field(0.1, gt=0, description="eV/Å, CI-NEB and endpoint force criterion")
    steps: int = Field(150, ge=1, description="CI-NEB optimiser step cap (then reported unconverged)")
    dft_margin: float = Field(0.1, ge=0, description="eV, hops this close to the threshold are flagged for DFT")


class StackSpec(_Strict):
    electrolyte: str
    cathode: str


class PotentialMapsConfig(_Strict):
    """Li | electrolyte | cathode interface potential maps (workflows/potential_maps.py)."""

    stacks: list[StackSpec] = []
    states_of_charge: list[float] | None = Field(
        None, description="fractions of Li removed; default: layered 0, 0.5; spinel 0, 0.5, 1")
    voltage_backend: Backend = "mlip"
    cathode_fermi_above_vbm: float = Field(0.0, description="eV; cathode work function = IP - this")
    barrier_low: float = Field(0.1, gt=0, description="V, below: barrier-less")
    barrier_high: float = Field(0.4, gt=0, description="V, above: high barrier")
    n_points: int = Field(41, ge=2, description="mu_Li points in each profile")

    @field_validator("states_of_charge")
    @classmethod
    def _fractions(cls, v):
        if v is not None and any(not 0 <= x <= 1 for x in v):
            raise ValueError("states of charge are fractions of Li removed, between 0 and 1")
        return v

    @model_validator(mode="after")
    def _ordered(self):
        if self.barrier_low >= self.barrier_high:
            raise ValueError("barrier_low must be below barrier_high")
        return self


class CampaignConfig(_Strict):
    candidates: CandidateConfig = CandidateConfig()
    backends: BackendConfig = BackendConfig()
    thresholds: Thresholds = Thresholds()
    adsorption: AdsorptionConfig = AdsorptionConfig()
    thermo: ThermoConfig = ThermoConfig()
    interfacial: InterfacialConfig = InterfacialConfig()
    store: StoreConfig = StoreConfig()
    run: RunConfig = RunConfig()
    slab: SlabConfig = SlabConfig()
    migration: MigrationConfig = MigrationConfig()
    hpc: HpcConfig = HpcConfig()
    defects: DefectsConfig = DefectsConfig()
    potential_maps: PotentialMapsConfig = PotentialMapsConfig()
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    def resolve(self, path: str) -> Path:
        """Absolute path for a path given relative to the config file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()


def format_validation_error(err: ValidationError, source: str) -> str:
    problems = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if x != "__root__") or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        problems.append(f"{loc}: {msg}")
    return f"invalid config {source}: " + "; ".join(problems)


def load_config(path: str | Path | None = None) -> CampaignConfig:
    """Read and validate a campaign config; without a path, the defaults (or ./coatflow.yaml)."""
    if path is None:
        path = Path(DEFAULT_CONFIG_NAME)
        if not path.exists():
            return CampaignConfig()
    path = Path(path)
    if not path.is_file():
        raise CoatflowError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CoatflowError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise CoatflowError(f"config {path} must be a mapping of sections")
    try:
        return CampaignConfig(**raw, base_dir=path.resolve().parent)
    except ValidationError as err:
        raise CoatflowError(format_validation_error(err, str(path))) from None


DEFAULT_CONFIG_TEXT = """\
# coatflow campaign configuration. Every key is optional; these are the defaults.
# Secrets never go in this file: set MP_API_KEY and COATFLOW_MONGODB_PASSWORD in the environment.

candidates:
  source: example          # example | files | materials_project | formulas
  paths: []                # source 'files': CIF, POSCAR or pymatgen JSON files, or folders of them
  formulas: []             # source 'formulas': e.g. [LiTbO2]; structures predicted by prototype substitution
  mp:                      # source 'materials_project' (needs MP_API_KEY); database filters go into the query
    elements: [Li, O]
    num_elements: 3
    max_results: 200

backends:                  # calculator per task: mlip (CHGNet, offline) | vasp (custodian) | gpaw (local DFT)
  relax: mlip
  elastic: mlip
  slab: gpaw
  defects: gpaw
  adsorption: mlip
  neb: mlip
  band_gap: gpaw           # interfacial products without a shipped gap (gpaw | vasp)

thresholds:                # anode-coating funnel criteria
  band_gap_min: 0.5        # eV
  e_hull_max: 0.005        # eV/atom
  exclude: [toxic, radioactive, precious]
  g_vrh_min: 35.0          # GPa, Voigt-Reuss-Hill shear modulus
  reduction_limit_max: 0.5 # V vs Li/Li+
  oxidation_limit_min: 2.0 # V vs Li/Li+
  e_ads_max: 0.0           # eV, Li adsorption energy vs bulk Li
  insulator_gap_min: 0.5   # eV, interfacial products below this count as electronic conductors
  migration_barrier_max: 0.7  # eV, Li-vacancy CI-NEB barrier

adsorption:                # Li adsorption stage
  top_k: 3                 # lowest ML sites confirmed with DFT
  dft_backend: null        # vasp | gpaw | null (no DFT confirmation)
  layers: 2                # slab thickness, d_hkl planes
  vacuum: 12.0             # A
  min_lw: 6.0              # A, minimum in-plane cell length
  max_index: 1             # facets compared: Miller indices up to this
  max_atoms: 60            # larger slabs are skipped
  max_surfaces: 2          # terminations relaxed: lowest single-point surface energy first
  max_sites: 6             # sites relaxed: lowest single-point energy first
  fmax: 0.1                # eV/A, slab and site relaxations
  steps: 150               # optimizer steps cap per relaxation (not converged -> flagged)

thermo:                    # phase diagrams of E_hull, the window and interfacial reactions
  entries: local           # local: backends.relax on the bundled competing phases | mp: MP2020 entries (MP_API_KEY,
                           # cached); the candidate is MP's own entry, or its VASP relaxation (backends.relax: vasp)

interfacial:               # interfacial reactions: the coating against Li metal and each of these
  electrolytes: [Li10GeP2S12, Li6PS5Cl, Li7La3Zr2O12, LiTi2(PO4)3, LiNbO3]

store:
  kind: embedded           # embedded (on-disk, no server) | mongodb
  path: coatflow_store     # embedded store folder, relative to this file
  uri: null                # mongodb://user@host:27017/  (password from COATFLOW_MONGODB_PASSWORD)
  database: coatflow

run:
  work_dir: coatflow_runs  # job folders, relative to this file
  stop_after: null         # last funnel stage to run, e.g. bulk_relax; null runs every stage
  workers: null            # candidates run in parallel processes; null: the cores available

slab:                      # surfaces, ionization potentials and work functions (backends.slab, gpaw)
  ip_materials: []         # e.g. [Li, LiF, Li2O]: IP/EA (insulators) or work function (metals)
  relax_bulk: true         # relax the bulk cell (gpaw, 600 eV) first; false: the bundled structure as is
  ecut: 400.0              # eV, bulk reference and slab single points
  kpt_density: 3.5         # k-points per Å^-1 in plane (one along the normal)
  max_index: 1             # facets up to this Miller index ...
  facets: null             # ... or an explicit list, e.g. [[1, 0, 0]]
  slab_thickness: 8.0      # Å, minimum
  vacuum: 12.0             # Å
  vacuum_check: false      # also run the first slab with vacuum + vacuum_step and report the change
  vacuum_step: 4.0         # Å
  only_preferred: true     # compute only symmetric, non-polar, stoichiometric terminations (others listed)
  max_atoms: 40
  plateau_tol: 0.03        # eV, peak-to-peak on a vacuum plateau
  plateau_distance: 3.5    # Å, plateau starts this far from the outermost atoms

migration:                 # Li-vacancy CI-NEB (backends.neb): every symmetry-distinct hop up to the cutoff
  hop_cutoff: 4.0          # Å, longest Li-Li hop
  rel_cutoff: 1.3          # ... and no longer than 1.3 x the shortest Li-Li hop (null: no limit)
  min_size: 7.0            # Å, minimum perpendicular width of the vacancy supercell
  max_atoms: 160           # hops needing larger supercells are skipped (listed in the result)
  max_hops: 4              # shortest symmetry-distinct hops computed (others listed as skipped)
  n_images: 3              # intermediate images (IDPP interpolation)
  fmax: 0.1                # eV/Å, CI-NEB and fixed-cell endpoint relaxations
  steps: 150               # CI-NEB step cap; a run that hits it is reported unconverged
  dft_margin: 0.1          # eV, hops within this of the threshold are listed for DFT confirmation

hpc:                       # coatflow submit / status / resume through FireWorks (docs/hpc.md)
  launchpad_uri: null      # mongodb://user@host:27017/  (password from COATFLOW_MONGODB_PASSWORD)
  launchpad_database: coatflow_fireworks
  mongomock_file: null     # tests only: a JSON LaunchPad file (one process at a time)
  fw_dir: fw_config        # where submit writes launchpad.yaml, jobflow.yaml, FW_config.yaml
  small_category: small    # FireWorks category of MLIP and analysis jobs
  large_category: large    # ... and of DFT (vasp, gpaw) jobs
  large_walltime: 86400    # s, the large queue's limit; VASP stops cleanly before it (custodian)
  lost_run_expiry: 900     # s without a ping before a RUNNING job counts as lost
  ping_interval: 300       # s between a running job's pings (FireWorks PING_TIME_SECS)

defects:                   # charged point defects and E_F(mu_Li) (backends.defects, gpaw)
  materials: []            # e.g. [LiF] or [Li2O]; Li3PO4 belongs on a cluster
  include: null            # only these defects, e.g. [v_Li, Li_i]; null = the full native set
  substitutions: {}        # {host: [dopants]}, e.g. {O: [N]}
  charges: {}              # charge states per defect name, e.g. {v_Li: [-1, 0]}; default 0..nominal
  charge_padding: 0        # extra charge states beyond 0..nominal
  min_length: 8.0          # Å, minimum distance between periodic images of a defect
  max_atoms: 64
  temperature: 300.0       # K
  n_mu: 21                 # mu_Li grid points across the stability window
  dielectric: {}           # static dielectric constant per formula, e.g. {LiF: 9.0}; missing: computed below
  dielectric_calc:         # gpaw eps_inf + eps_ion for materials without a dielectric entry
    ecut: 550.0            # eV, Born-charge and force-constant runs (symmetry off)
    kpt_density: 1.5       # k-points per Å^-1, displacement runs (LiF: 5x5x5)
    displacement: 0.01     # Å, +- finite displacements
    eps_kpt_density: 3.0   # k-points per Å^-1, RPA eps_inf ground state (LiF: 9x9x9)
    nbands: 60             # bands in the RPA eps_inf
    response_ecut: 50.0    # eV, local-field plane waves of eps_inf
    eta: 0.001             # eV, broadening of eps_inf
  relax_bulk: true         # relax the primitive cell (gpaw) first
  relax_steps: 0           # BFGS steps at fixed cell for defects; 0 = single point
  fmax: 0.05               # eV/Å
  ecut: 400.0              # eV
  kpt_density: 2.0         # k-points per Å^-1, supercells
  dos_kpt_density: 5.0     # k-points per Å^-1, primitive bulk (carrier DOS)

potential_maps:            # Li | electrolyte | cathode interface potentials (docs/potential_maps.md)
  stacks: []               # e.g. [{electrolyte: LiF, cathode: LiCoO2}]; adds the slab, defect and voltage runs
  states_of_charge: null   # fractions of Li removed; null: layered [0, 0.5], spinel [0, 0.5, 1]
  voltage_backend: mlip    # calculator of the cathode lithiation energies (mlip | gpaw | vasp)
  cathode_fermi_above_vbm: 0.0  # eV; the cathode's work function is its IP minus this
  barrier_low: 0.1         # V, |dphi| below this is barrier-less
  barrier_high: 0.4        # V, above this a high barrier
  n_points: 41             # mu_Li points in each profile
"""


def write_default_config(path: str | Path) -> Path:
    path = Path(path)
    if path.exists():
        raise CoatflowError(f"{path} already exists; not overwriting it")
    path.write_text(DEFAULT_CONFIG_TEXT)
    return path

"""The campaign configuration: one YAML file, validated by pydantic.

One section per funnel stage, generated from the stage's Maker fields (``workflows/stages/``), so a
stage's settings exist once; the other sections are the candidate source, the side programmes, the
store, the run and the queue. ``coatflow init`` writes the commented YAML from the models' field
descriptions. Secrets never live here: the MongoDB password comes from ``COATFLOW_MONGODB_PASSWORD``
and the Materials Project key from ``MP_API_KEY``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from pymatgen.core import Composition, Element

from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import formula_level
from coatflow.workflows.programmes import ALL_STAGE_NAMES as STAGE_NAMES
from coatflow.workflows.programmes import ALL_STAGES as STAGES
from coatflow.workflows.programmes import DEFAULT_PROGRAMME, DEFAULTS, PROGRAMMES, stages_of
from coatflow.workflows.stages import Stage
from coatflow.workflows.stages.base import Backend
from coatflow.workflows.stages.config_fields import config_fields

DEFAULT_CONFIG_NAME = "coatflow.yaml"
PASSWORD_ENV = "COATFLOW_MONGODB_PASSWORD"
#: pymongo auth mechanisms that take no password (a certificate, a cloud identity, Kerberos).
_NO_PASSWORD_AUTH = ("MONGODB-X509", "MONGODB-AWS", "MONGODB-OIDC", "GSSAPI")


def require_password(uri: str | None, key: str) -> None:
    """A MongoDB URI naming a user needs ``COATFLOW_MONGODB_PASSWORD`` (unless its auth mechanism takes none):
    a one-line error naming the variable, instead of pymongo's "A password is required" traceback."""
    if not uri or os.environ.get(PASSWORD_ENV):
        return
    parts = urlsplit(uri)
    mechanism = (parse_qs(parts.query).get("authMechanism") or [""])[0].upper()
    if parts.username and mechanism not in _NO_PASSWORD_AUTH:
        raise CoatflowError(f"{key} names the user '{unquote(parts.username)}' but {PASSWORD_ENV} is not set; "
                            f"export {PASSWORD_ENV}=<password> (the password never goes in the config)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # .nan, .inf, 1e400: no


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's SafeLoader, but a key given twice in one mapping is an error (yaml keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one mapping (line {key_node.start_mark.line + 1}); "
                    "merge the two blocks into one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _chemical_formulas(formulas: list[str]) -> list[str]:
    """Each formula parses and names only real elements (pymatgen reads 'Xq' as a dummy species)."""
    for f in formulas:
        try:
            unknown = [str(el).rstrip("0+-") for el in Composition(f).elements if not isinstance(el, Element)]
        except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
            raise ValueError(f"'{f}' is not a chemical formula; write it with element symbols, e.g. LiAlO2") from None
        if unknown:
            raise ValueError(f"'{f}' is not a chemical formula: {', '.join(unknown)} is not an element symbol")
    return formulas


class MPQuery(_Strict):
    """source 'materials_project' (needs MP_API_KEY); the database filter's criteria go into the query"""

    elements: list[str] = Field(["Li", "O"], description="elements every candidate contains")
    num_elements: int = Field(3, ge=1, le=8, description="number of elements")
    max_results: int = Field(200, ge=1, description="at most this many materials")


class CandidateConfig(_Strict):
    """where the candidates come from"""

    source: Literal["example", "files", "materials_project", "formulas", "mp_snapshot"] = Field(
        "example", description="example | files | materials_project | formulas | mp_snapshot (every Li-M-O "
        "ternary of the shipped MP snapshot, docs/mp_snapshot.md)")
    paths: list[str] = Field([], description="source 'files': CIF, POSCAR or pymatgen JSON files, or folders of them")
    formulas: list[str] = Field([], description="source 'formulas': e.g. [LiTbO2]; structures by prototype substitution")
    mp: MPQuery = MPQuery()

    _valid_formulas = field_validator("formulas")(_chemical_formulas)

    @model_validator(mode="after")
    def _source_has_inputs(self):
        if self.source == "files" and not self.paths:
            raise ValueError("candidates.paths must list files or folders when source is 'files'")
        if self.source == "formulas" and not self.formulas:
            raise ValueError("candidates.formulas must list formulas when source is 'formulas'")
        for key, source in (("paths", "files"), ("formulas", "formulas"), ("mp", "materials_project")):
            if self.source != source and getattr(self, key) != type(self).model_fields[key].default:  # else ignored
                raise ValueError(f"candidates.{key} is set but candidates.source is '{self.source}'; "
                                 f"add 'source: {source}' to candidates (or remove {key})")
        return self


class ThermoConfig(_Strict):
    """phase diagrams of phase_stability, stability_window and interfacial_reactions"""

    entries: Literal["local", "mp", "mp_snapshot"] = Field("local", description=(
        "local: bulk_relax.backend on the bundled competing phases | mp: MP2020 entries (MP_API_KEY, cached); "
        "the candidate is then MP's own entry, or its VASP relaxation (bulk_relax.backend: vasp) | "
        "mp_snapshot: the shipped MP formation energies by formula, offline (docs/mp_snapshot.md)"))


class DielectricCalcConfig(_Strict):
    """gpaw eps_inf + eps_ion for materials without a defects.dielectric entry (makers/dielectric.py)"""

    ecut: float = Field(550.0, gt=0, description="eV, Born-charge and force-constant runs")
    kpt_density: float = Field(1.5, gt=0, description="k-points per Å^-1, displacement runs (symmetry off)")
    displacement: float = Field(0.01, gt=0, le=0.1, description="Å, +- finite displacements")
    eps_kpt_density: float = Field(3.0, gt=0, description="k-points per Å^-1, RPA eps_inf ground state")
    nbands: int = Field(60, ge=1, description="bands in the RPA eps_inf")
    response_ecut: float = Field(50.0, gt=0, description="eV, local-field plane waves of eps_inf")
    eta: float = Field(0.001, gt=0, description="eV, broadening of eps_inf")


class DefectsConfig(_Strict):
    """charged point defects and E_F(mu_Li) (workflows/defects.py, docs/defects.md)"""

    backend: Literal["gpaw", "vasp"] = Field("gpaw", description="calculator (the planner runs gpaw)")
    materials: list[str] = Field([], description="e.g. [LiF] or [Li2O]; Li3PO4 belongs on a cluster")
    include: list[str] | None = Field(None, description="only these defects, e.g. [v_Li, Li_i]")
    substitutions: dict[str, list[str]] = Field(default_factory=dict, description="{host: [dopants]}, e.g. {O: [N]}")
    charges: dict[str, list[int]] = Field(default_factory=dict, description="charge states per defect name")
    charge_padding: int = Field(0, ge=0, description="extra charge states beyond 0..nominal")
    min_length: float = Field(8.0, gt=0, description="Å, minimum distance between periodic images")
    max_atoms: int = Field(64, ge=2, description="larger supercells are not built")
    temperature: float = Field(300.0, gt=0, description="K")
    n_mu: int = Field(21, ge=2, description="mu_Li grid points across the window")
    dielectric: dict[str, float | list[float] | list[list[float]]] = Field(
        default_factory=dict, description="static dielectric constant per formula; missing: computed (gpaw)")
    dielectric_calc: DielectricCalcConfig = DielectricCalcConfig()
    relax_bulk: bool = Field(True, description="relax the primitive cell (gpaw) first")
    relax_steps: int = Field(0, ge=0, description="BFGS steps at fixed cell; 0 or 1 = single point")
    fmax: float = Field(0.05, gt=0, description="eV/Å")
    ecut: float = Field(400.0, gt=0, description="eV, plane waves")
    kpt_density: float = Field(2.0, gt=0, description="k-points per Å^-1, supercells")
    dos_kpt_density: float = Field(5.0, gt=0, description="k-points per Å^-1, primitive bulk (carrier DOS)")


class StoreConfig(_Strict):
    """where documents go"""

    kind: Literal["embedded", "mongodb"] = Field("embedded", description="embedded (on-disk, no server) | mongodb")
    path: str = Field("coatflow_store", description="embedded store folder, relative to this file")
    uri: str | None = Field(None, description="mongodb://user@host:27017/ (password from COATFLOW_MONGODB_PASSWORD)")
    database: str = Field("coatflow", description="database name")

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

    def require_password(self) -> None:
        """A one-line error if ``uri`` names a user and ``COATFLOW_MONGODB_PASSWORD`` is not set."""
        if self.kind == "mongodb":
            require_password(self.uri, "store.uri")


class SlabConfig(_Strict):
    """surfaces, ionization potentials and work functions (workflows/surfaces.py, docs/slab.md)"""

    backend: Literal["gpaw"] = Field("gpaw", description="calculator (gpaw)")
    ip_materials: list[str] = Field([], description="e.g. [Li, LiF, Li2O]: IP/EA (insulators) or work function (metals)")
    relax_bulk: bool = Field(True, description="relax the bulk cell (gpaw, 600 eV) before cutting slabs")
    ecut: float = Field(400.0, gt=0, description="eV, plane waves of the bulk reference and slab single points")
    kpt_density: float = Field(3.5, gt=0, description="k-points per Å^-1 (one along the slab normal)")
    max_index: int = Field(1, ge=1, le=3, description="facets up to this Miller index ...")
    facets: list[tuple[int, int, int]] | None = Field(None, description="... or an explicit list, e.g. [[1, 0, 0]]")
    slab_thickness: float = Field(8.0, gt=0, description="Å, minimum")
    vacuum: float = Field(12.0, gt=0, description="Å")
    vacuum_check: bool = Field(False, description="also run the first slab with vacuum + vacuum_step, report the change")
    vacuum_step: float = Field(4.0, gt=0, description="Å")
    only_preferred: bool = Field(True, description="only symmetric, non-polar, stoichiometric terminations")
    max_atoms: int = Field(40, ge=1, description="larger slabs are skipped")
    plateau_tol: float = Field(0.03, gt=0, description="eV")
    plateau_distance: float = Field(3.5, gt=0, description="Å")


class RunConfig(_Strict):
    """how coatflow run works"""

    work_dir: str = Field("coatflow_runs", description="job folders, relative to this file")
    stop_after: str | None = Field(None, description="last funnel stage to run, e.g. bulk_relax; null runs every stage")
    workers: int | None = Field(None, ge=1, description="candidates run in parallel processes; null: the cores available")

    @field_validator("stop_after")
    @classmethod
    def _known_stage(cls, stage):
        if stage is not None and stage not in STAGE_NAMES:
            raise ValueError(f"unknown stage '{stage}' (stages: {', '.join(STAGE_NAMES)})")
        return stage


class HpcConfig(_Strict):
    """coatflow submit / status / resume through FireWorks (docs/hpc.md)"""

    launchpad_uri: str | None = Field(None, description="mongodb://user@host:27017/ (password from "
                                      "COATFLOW_MONGODB_PASSWORD)")
    launchpad_database: str = Field("coatflow_fireworks", description="LaunchPad database")
    mongomock_file: str | None = Field(None, description="tests only: a JSON LaunchPad file (one process at a time)")
    fw_dir: str = Field("fw_config", description="where submit writes launchpad.yaml, jobflow.yaml, FW_config.yaml")
    small_category: str = Field("small", description="FireWorks category of MLIP and analysis jobs")
    large_category: str = Field("large", description="... and of DFT (vasp, gpaw) jobs")
    large_walltime: int = Field(86400, gt=0, description="s, the large queue's time limit")
    lost_run_expiry: int = Field(900, gt=0, description="s without a ping before a RUNNING job counts as lost")
    ping_interval: int = Field(300, gt=0, description="s between a running job's pings")

    @field_validator("launchpad_uri")
    @classmethod
    def _no_password_in_lp_uri(cls, uri):
        return StoreConfig._no_password_in_uri(uri)

    def require_password(self) -> None:
        """A one-line error if ``launchpad_uri`` names a user and ``COATFLOW_MONGODB_PASSWORD`` is not set."""
        require_password(self.launchpad_uri, "hpc.launchpad_uri")

    @model_validator(mode="after")
    def _one_launchpad(self):
        if self.launchpad_uri and self.mongomock_file:
            raise ValueError("set hpc.launchpad_uri or hpc.mongomock_file, not both")
        if self.ping_interval >= self.lost_run_expiry:
            raise ValueError("hpc.ping_interval must be shorter than hpc.lost_run_expiry")
        return self


class StackSpec(_Strict):
    electrolyte: str
    cathode: str


class PotentialMapsConfig(_Strict):
    """Li | electrolyte | cathode interface potentials (docs/potential_maps.md)"""

    stacks: list[StackSpec] = Field([], description="e.g. [{electrolyte: LiF, cathode: LiCoO2}]; adds the slab, "
                                    "defect and voltage runs")
    states_of_charge: list[float] | None = Field(
        None, description="fractions of Li removed; default: layered 0, 0.5; spinel 0, 0.5, 1")
    voltage_backend: Backend = Field("mlip", description="calculator of the cathode lithiation energies")
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


def section_model(stage: type[Stage]) -> type[BaseModel]:
    """The config section of a stage: a pydantic model of exactly its ``Field``-annotated Maker fields."""
    doc = (stage.__doc__ or stage.stage).strip().splitlines()[0]
    fields = {name: (hint, default) for name, (hint, default) in config_fields(stage).items()}
    return create_model(f"{stage.__name__}Section", __config__=ConfigDict(extra="forbid", validate_assignment=True,
                                                                           allow_inf_nan=False),
                        __doc__=doc, __module__=__name__, **fields)


SECTIONS: dict[str, type[BaseModel]] = {s.stage: section_model(s) for s in STAGES}
globals().update({m.__name__: m for m in SECTIONS.values()})  # importable by name, so a config pickles

#: Where the keys of the sections before the recut went (an old config gets one line naming the new place).
MOVED = {
    "thresholds": {"band_gap_min": "database_filter.band_gap_min", "e_hull_max": "phase_stability.e_hull_max "
                   "(and database_filter.e_hull_max)", "exclude": "database_filter.exclude",
                   "g_vrh_min": "shear_modulus.g_vrh_min", "reduction_limit_max": "stability_window.reduction_limit_max",
                   "oxidation_limit_min": "stability_window.oxidation_limit_min", "e_ads_max": "li_adsorption.e_ads_max",
                   "insulator_gap_min": "interfacial_reactions.insulator_gap_min",
                   "migration_barrier_max": "migration_barrier.migration_barrier_max"},
    "backends": {"relax": "bulk_relax.backend", "elastic": "shear_modulus.backend", "slab": "slab.backend",
                 "defects": "defects.backend", "adsorption": "li_adsorption.backend", "neb": "migration_barrier.backend",
                 "band_gap": "interfacial_reactions.band_gap_backend"},
    "adsorption": "li_adsorption", "migration": "migration_barrier", "interfacial": "interfacial_reactions",
}


class _CampaignBase(_Strict):
    programme: Literal[tuple(PROGRAMMES)] = Field(DEFAULT_PROGRAMME, description=(
        "anode_coating | cathode_coating (stage list and defaults: workflows/programmes.py)"))
    candidates: CandidateConfig = CandidateConfig()
    thermo: ThermoConfig = ThermoConfig()
    store: StoreConfig = StoreConfig()
    run: RunConfig = RunConfig()
    slab: SlabConfig = SlabConfig()
    hpc: HpcConfig = HpcConfig()
    defects: DefectsConfig = DefectsConfig()
    potential_maps: PotentialMapsConfig = PotentialMapsConfig()
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, raw):
        if isinstance(raw, dict):
            for old, new in MOVED.items():
                if old not in raw:
                    continue
                if isinstance(new, str):
                    raise ValueError(f"section '{old}' is now '{new}' (same keys)")
                keys = raw[old] if isinstance(raw[old], dict) else {}
                where = "; ".join(f"{old}.{k} is now {new.get(k, 'gone')}" for k in keys) or f"{old} is gone"
                raise ValueError(f"section '{old}' was split into the stage sections: {where}")
        return raw

    @model_validator(mode="before")
    @classmethod
    def _programme_defaults(cls, raw):
        """The programme's defaults fill the keys the file does not set (candidates: only a missing section)."""
        if isinstance(raw, dict) and raw.get("programme") in DEFAULTS:
            raw = dict(raw)
            for section, values in DEFAULTS[raw["programme"]].items():
                given = raw.get(section)
                if section == "candidates" and given is not None:
                    continue
                raw[section] = {**values, **given} if isinstance(given, dict) else (values if given is None else given)
        return raw

    def resolve(self, path: str) -> Path:
        """Absolute path for a path given relative to the config file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def stage(self, name: str) -> Stage:
        """The configured Stage Maker: the stage's section applied in one step."""
        cls = STAGES[STAGE_NAMES.index(name)]
        return cls(**dict(getattr(self, name)))

    def stages(self) -> list[Stage]:
        """Every configured stage of the programme, in the order the planner runs them: the programme's, except
        that on a database scale (``thermo.entries: mp_snapshot``, or ``mp`` without VASP) the phase-diagram
        stages right after the bulk relaxation need only the formula, so they run before it, and a candidate
        they fail is never relaxed."""
        stages = [self.stage(s.stage) for s in stages_of(self.programme)]
        names = [s.stage for s in stages]
        if formula_level(self) and "bulk_relax" in names:
            i = j = names.index("bulk_relax")
            while j + 1 < len(stages) and not stages[j + 1].needs_structure(self):
                j += 1
            stages.insert(j, stages.pop(i))
        return stages

    def ordered(self, stages) -> list:
        """``stages`` (Stage classes) in the order this config runs them; other programmes' stages after."""
        names = [s.stage for s in self.stages()]
        return sorted(stages, key=lambda s: (names.index(s.stage) if s.stage in names else len(names), STAGES.index(s)))


CampaignConfig = create_model(
    "CampaignConfig", __base__=_CampaignBase, __module__=__name__,
    __doc__="A whole campaign: candidate source, one section per funnel stage, side programmes, store, run, queue.",
    **{name: (model, Field(default_factory=model)) for name, model in SECTIONS.items()})

#: Order of the sections in the file ``coatflow init`` writes.
SECTION_ORDER = ("candidates", *STAGE_NAMES, "thermo", "store", "run", "slab", "defects", "potential_maps", "hpc")


def format_validation_error(err: ValidationError, source: str) -> str:
    problems = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if x != "__root__") or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
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
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise CoatflowError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise CoatflowError(f"config {path} must be a mapping of sections")
    try:
        return CampaignConfig(**raw, base_dir=path.resolve().parent)
    except ValidationError as err:
        raise CoatflowError(format_validation_error(err, str(path))) from None


def _yaml_value(value) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _commented(model: type[BaseModel], values: BaseModel, indent: int) -> list[str]:
    lines = []
    pad = "  " * indent
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        value = getattr(values, name)
        sub = info.annotation if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel) else None
        if sub is not None:
            lines.append(f"{pad}{name}:".ljust(27) + f"# {(sub.__doc__ or '').strip().splitlines()[0]}")
            lines += _commented(sub, value, indent + 1)
            continue
        text = f"{pad}{name}: {_yaml_value(value)}"
        lines.append(text.ljust(26) + f" # {info.description}" if info.description else text)
    return lines


def default_config_text(programme: str = DEFAULT_PROGRAMME) -> str:
    """The commented YAML of every default of ``programme``, generated from the models' field descriptions."""
    defaults = CampaignConfig(programme=programme)
    own = {s.stage for s in stages_of(programme)}
    lines = ["# coatflow campaign configuration. Every key is optional; these are the defaults.",
             "# Secrets never go in this file: set MP_API_KEY and COATFLOW_MONGODB_PASSWORD in the environment.",
             "# One section per funnel stage, in funnel order (cheapest first).", "",
             f"programme: {programme}".ljust(26) + f" # {CampaignConfig.model_fields['programme'].description}"]
    for name in SECTION_ORDER:
        model = CampaignConfig.model_fields[name].annotation
        if not isinstance(model, type):
            model = type(getattr(defaults, name))
        unused = "" if name not in STAGE_NAMES or name in own else " (not a stage of this programme)"
        lines += ["", f"{name}:".ljust(27) + f"# {(model.__doc__ or '').strip().splitlines()[0]}{unused}"]
        lines += _commented(model, getattr(defaults, name), 1)
    return "\n".join(lines) + "\n"


def write_default_config(path: str | Path, programme: str = DEFAULT_PROGRAMME) -> Path:
    path = Path(path)
    if path.exists():
        raise CoatflowError(f"{path} already exists; not overwriting it")
    path.write_text(default_config_text(programme))
    return path

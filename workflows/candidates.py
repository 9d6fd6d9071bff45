"""Candidate sources: the bundled example set, structure files, the Materials Project, bare formulas, and
the shipped MP snapshot.

A formula without a structure becomes a *predicted* candidate: its element is substituted into
every matching prototype of the example set, the calculator relaxes each, and the lowest wins.
``mp_snapshot`` lists every Li-M-O ternary of the snapshot (docs/mp_snapshot.md) as a formula; those the
database filter does not fail get the structure types of ``workflows/analysis/prototypes.py`` that fit
them (none: no structure, and the structural stages are "not computed: no prototype").
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.transformations.standard_transformations import SubstitutionTransformation

from coatflow.workflows.analysis.criteria import EXCLUSION_LISTS
from coatflow.workflows.errors import CoatflowError
from coatflow.workflows.phase_diagrams import formula_level

#: Formulas of the example set predicted by prototype substitution. Empty: the published picks LiTbO2 and
#: LiDyO2 are now entries of data/example_set.yaml (ex-LiTbO2, ex-LiDyO2), so they are not screened twice.
EXAMPLE_PREDICTED_FORMULAS: tuple[str, ...] = ()
STRUCTURE_PATTERNS = ("*.cif", "*.vasp", "POSCAR*", "CONTCAR*", "*.json", "*.json.gz")
MP_API_KEY_ENV = "MP_API_KEY"


@dataclass
class Candidate:
    material_id: str
    formula: str
    source: str
    structure: Structure | None = None
    #: (prototype id, substituted structure) pairs, for predicted candidates
    prototypes: list[tuple[str, Structure]] = field(default_factory=list)
    #: properties from the Materials Project, when it is the source
    mp_properties: dict = field(default_factory=dict)

    @property
    def predicted(self) -> bool:
        return self.structure is None

    @property
    def structure_dict(self) -> dict | None:
        """``structure.as_dict()``, made once (jobs take it as an argument; a dict is cheap for jobflow to scan)."""
        if "_sd" not in self.__dict__:
            self.__dict__["_sd"] = self.structure.as_dict() if self.structure is not None else None
        return self.__dict__["_sd"]

    @property
    def key(self) -> str:
        """Hash of the material id and its input structure(s): the root of every job key of the candidate."""
        if "_key" not in self.__dict__:
            h = hashlib.sha1(self.material_id.encode())
            for pid, s in [("", self.structure)] if self.structure is not None else self.prototypes:
                h.update(pid.encode())
                _hash_structure(h, s)
            self.__dict__["_key"] = h.hexdigest()
        return self.__dict__["_key"]


def _hash_structure(h, s: Structure) -> None:
    """Feed a structure's lattice, species (with oxidation states) and positions to the hash ``h``."""
    h.update(np.round(s.lattice.matrix, 8).tobytes())
    h.update(np.round(s.frac_coords % 1.0, 8).tobytes())
    h.update(json.dumps([str(sp) for sp in s.species_and_occu], default=str).encode())
    h.update(json.dumps(s.site_properties, sort_keys=True, default=str).encode())


def _require_li(structure_or_formula, where: str) -> None:
    comp = Composition(structure_or_formula.composition if hasattr(structure_or_formula, "composition") else structure_or_formula)
    if Element("Li") not in comp:
        raise CoatflowError(f"{where}: {comp.reduced_formula} contains no Li; coatflow screens Li compounds")


# --- the bundled example set -------------------------------------------------------------------


def _example_entries() -> list[dict]:
    text = files("coatflow.workflows").joinpath("data/example_set.yaml").read_text()
    return yaml.safe_load(text)["compounds"]


def structure_from_wyckoff(entry: dict) -> Structure:
    """Build a structure from space group, lattice parameters and Wyckoff positions."""
    lattice = Lattice.from_parameters(**entry["lattice"])
    return Structure.from_spacegroup(entry["spacegroup"], lattice, entry["species"], entry["coords"])


def example_structures() -> dict[str, Structure]:
    return {e["id"]: structure_from_wyckoff(e) for e in _example_entries()}


def example_candidates() -> list[Candidate]:
    prototypes = example_structures()
    cands = [
        Candidate(material_id=mid, formula=s.composition.reduced_formula, source="example", structure=s)
        for mid, s in prototypes.items()
    ]
    cands += [predicted_candidate(f, prototypes, source="example") for f in EXAMPLE_PREDICTED_FORMULAS]
    return cands


# --- prototype substitution --------------------------------------------------------------------


def _substitution_map(target: Composition, proto: Composition) -> dict[str, str] | None:
    """{old: new} when ``proto`` turns into ``target`` by swapping exactly one element."""
    t_els, p_els = set(target.elements), set(proto.elements)
    if len(t_els) != len(p_els) or len(t_els - p_els) != 1:
        return None
    (new,), (old,) = t_els - p_els, p_els - t_els
    swapped = Composition({(new if el == old else el): amt for el, amt in proto.items()})
    if swapped.reduced_composition != target.reduced_composition:
        return None
    return {old.symbol: new.symbol}


def substitute_into_prototype(proto: Structure, mapping: dict[str, str]) -> Structure:
    """Swap one element, rescaling the cell by the change in ionic radius."""
    (old, new), = mapping.items()
    s = SubstitutionTransformation(mapping).apply_transformation(proto)
    anion_r = 1.26  # typical O2-/F- radius, Angstrom
    r_old, r_new = Element(old).average_ionic_radius, Element(new).average_ionic_radius
    if r_old > 0 and r_new > 0:
        s.scale_lattice(s.volume * ((r_new + anion_r) / (r_old + anion_r)) ** 3)
    return s


def predicted_candidate(formula: str, prototypes: dict[str, Structure], source: str = "formula",
                        structureless_ok: bool = False) -> Candidate:
    """The formula substituted into every prototype it matches by one element. No match is bad input, unless
    ``structureless_ok`` (the phase-diagram stages need only the formula): then a candidate with no
    prototypes, which bulk relax reports as "not computed: no prototype"."""
    try:
        target = Composition(formula)
    except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
        raise CoatflowError(f"'{formula}' is not a chemical formula") from None
    _require_li(target, f"formula {formula}")
    subs = []
    for pid, proto in prototypes.items():
        mapping = _substitution_map(target, proto.composition)
        if mapping:
            subs.append((pid, substitute_into_prototype(proto, mapping)))
    if not subs and not structureless_ok:
        raise CoatflowError(f"no prototype in the example set matches {formula} by a single-element substitution")
    reduced = target.reduced_formula
    return Candidate(material_id=f"pred-{reduced}", formula=reduced, source=source, prototypes=subs)


# --- structure files ---------------------------------------------------------------------------


def read_structure_file(path: Path) -> Structure:
    try:
        structure = Structure.from_file(path)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for bad files
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CoatflowError(f"cannot read structure file {path}: {first}") from None
    _require_li(structure, str(path))
    return structure


def file_candidates(paths: list[str], base_dir: Path) -> list[Candidate]:
    found: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if path.is_dir():
            found += sorted({f for pat in STRUCTURE_PATTERNS for f in path.glob(pat)})
        elif path.is_file():
            found.append(path)
        else:
            raise CoatflowError(f"structure path not found: {path}")
    if not found:
        raise CoatflowError(f"no structure files (CIF, POSCAR, JSON) in {', '.join(paths)}")
    cands, seen = [], set()
    for path in found:
        s = read_structure_file(path)
        mid = f"file-{path.name.split('.')[0]}"
        if mid in seen:
            mid = f"{mid}-{hashlib.sha1(str(path).encode()).hexdigest()[:6]}"
        seen.add(mid)
        cands.append(Candidate(material_id=mid, formula=s.composition.reduced_formula, source=str(path), structure=s))
    return cands


# --- the Materials Project ---------------------------------------------------------------------


def mp_query(config) -> dict:
    """The summary-search arguments, with the database filters pushed into the query."""
    q, t = config.candidates.mp, config.database_filter
    excluded = sorted(set().union(*(EXCLUSION_LISTS[g] for g in t.exclude))) if t.exclude else []
    return {
        "elements": q.elements,
        "num_elements": (q.num_elements, q.num_elements),
        "band_gap": (t.band_gap_min, None),
        "energy_above_hull": (0.0, t.e_hull_max),
        "exclude_elements": excluded,
    }


def mp_candidates(config, cache_store) -> list[Candidate]:
    """Candidates from mp-api, cached in the store so that a rerun works offline."""
    query = mp_query(config)
    cache_key = "mp-summary-" + hashlib.sha1(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache_store.query_one({"cache_key": cache_key})
    if cached is None:
        api_key = os.environ.get(MP_API_KEY_ENV)
        if not api_key:
            raise CoatflowError(f"{MP_API_KEY_ENV} is not set; the materials_project source needs it in the environment")
        from mp_api.client import MPRester

        fields = ["material_id", "formula_pretty", "structure", "band_gap", "energy_above_hull"]
        try:
            with MPRester(api_key=api_key) as mpr:
                docs = mpr.materials.summary.search(**query, fields=fields)
        except Exception as exc:  # noqa: BLE001
            raise CoatflowError(f"Materials Project query failed: {type(exc).__name__}") from None
        rows = [
            {
                "material_id": str(d.material_id),
                "structure": d.structure.as_dict(),
                "band_gap": d.band_gap,
                "energy_above_hull": d.energy_above_hull,
            }
            for d in docs[: config.candidates.mp.max_results]
        ]
        cached = {"cache_key": cache_key, "query": query, "results": rows}
        cache_store.update([cached], key="cache_key")
    cands = []
    for row in cached["results"]:
        s = Structure.from_dict(row["structure"])
        props = {"band_gap": row["band_gap"], "energy_above_hull": row["energy_above_hull"]}
        cands.append(
            Candidate(row["material_id"], s.composition.reduced_formula, "materials_project", s, mp_properties=props)
        )
    return cands


# --- the shipped Materials Project snapshot ------------------------------------------------------


def snapshot_candidates(config) -> list[Candidate]:
    """Every Li-M-O ternary of the MP snapshot, by formula. Structures: the prototype substitutions of each
    formula the database filter will not fail (a failed one never needs a structure)."""
    from coatflow.workflows import reference_data
    from coatflow.workflows.analysis.prototypes import prototypes_for
    from coatflow.workflows.stages.database_filter import database_properties, filter_checks

    t = config.database_filter
    cands = []
    for f in reference_data.snapshot_ternaries():
        checks = filter_checks(f, database_properties(f), t.band_gap_min, t.e_hull_max, t.exclude)
        protos = [] if any(c.status == "failed" for c in checks.values()) else prototypes_for(f)
        cands.append(Candidate(material_id=f"mps-{f}", formula=f, source="mp_snapshot", prototypes=protos))
    return cands


def load_candidates(config, cache_store=None) -> list[Candidate]:
    """The candidates named by ``config.candidates``; bad input raises CoatflowError."""
    c = config.candidates
    if c.source == "example":
        cands = example_candidates()
    elif c.source == "files":
        cands = file_candidates(c.paths, config.base_dir)
    elif c.source == "formulas":
        protos = example_structures()
        cands = [predicted_candidate(f, protos, structureless_ok=formula_level(config)) for f in c.formulas]
    elif c.source == "mp_snapshot":
        cands = snapshot_candidates(config)
    else:
        cands = mp_candidates(config, cache_store)
    return cands

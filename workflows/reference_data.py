"""Reference energies and band gaps the thermodynamic stages compare against: shipped data files and
Materials Project entries (mp-api, cached in the campaign's ``cache`` store).

Every entry is tagged with its energy scale (``workflows/analysis/thermo.py``): ``MP2020`` for MP entries,
``Alexandria-PBE`` for the shipped Alexandria formation energies, ``MP-snapshot`` for the shipped Materials
Project formation energies by formula (``mp_snapshot.json.gz``, docs/mp_snapshot.md).
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files

from monty.json import MontyDecoder
from pymatgen.core import Composition, Element
from pymatgen.entries.computed_entries import ComputedEntry

from coatflow.workflows.analysis.thermo import ALEXANDRIA_SCALE, MP_SCALE, ground_states
from coatflow.workflows.errors import CoatflowError

MP_API_KEY_ENV = "MP_API_KEY"


def data_path(name: str):
    """A file shipped in ``workflows/data/``."""
    return files("coatflow.workflows").joinpath(f"data/{name}")


# --- bundled competing phases (structures relaxed by the local backend) ----------------------------


@cache
def competing_phases() -> dict[str, dict]:
    """{phase id: structure dict} of the bundled competing phases (data/competing_phases.json.gz)."""
    with gzip.open(data_path("competing_phases.json.gz").open("rb"), "rt") as f:
        return json.load(f)["phases"]


def phases_for(elements) -> dict[str, dict]:
    """The bundled competing phases whose elements all lie in ``elements``."""
    els = {str(e) for e in elements}
    return {pid: d for pid, d in competing_phases().items()
            if {sp["element"] for s in d["sites"] for sp in s["species"]} <= els}


# --- Materials Project entries, cached ------------------------------------------------------------


def cache_get(cache_store, key: str):
    """The cached value under ``key``, or None (also when there is no cache store)."""
    if cache_store is None:
        return None
    doc = cache_store.query_one({"key": key})
    return None if doc is None else doc["value"]


def cache_put(cache_store, key: str, value) -> None:
    if cache_store is not None:
        cache_store.update([{"key": key, "value": value, "stored_at": datetime.now(timezone.utc).isoformat()}],
                           key="key")


def decode_entries(dicts) -> list[ComputedEntry]:
    """MP entries from their stored dicts, tagged ``MP2020``."""
    entries = [MontyDecoder().process_decoded(d) for d in dicts]
    for e in entries:
        e.data["energy_scale"] = MP_SCALE
    return entries


def mp_entries(elements, cache_store=None, api_key: str | None = None) -> list[ComputedEntry]:
    """MP entries of the chemical system (MP2020-corrected by mp-api), from the cache or MP."""
    chemsys = "-".join(sorted({Element(x).symbol for x in elements}))
    key = f"mp-entries:{chemsys}"
    cached = cache_get(cache_store, key)
    if cached is None:
        api_key = api_key or os.environ.get(MP_API_KEY_ENV)
        if not api_key:
            raise CoatflowError(f"no cached MP entries for {chemsys} and {MP_API_KEY_ENV} is not set")
        from mp_api.client import MPRester

        try:
            with MPRester(api_key) as mpr:
                raw = mpr.get_entries_in_chemsys(chemsys.split("-"), compatible_only=True)
        except Exception as exc:  # noqa: BLE001 - network or auth failure
            raise CoatflowError(f"Materials Project query for {chemsys} failed ({type(exc).__name__})") from None
        cached = [ComputedEntry(e.composition, e.uncorrected_energy, correction=e.correction, entry_id=e.entry_id,
                                data={"material_id": str(e.data.get("material_id", e.entry_id))}).as_dict()
                  for e in raw]
        cache_put(cache_store, key, cached)
    return decode_entries(cached)


def mp_band_gaps(material_ids, cache_store=None, api_key: str | None = None) -> dict[str, float]:
    """MP band gaps (eV) by material id, from the cache or MP; empty when neither is available."""
    ids = sorted(set(material_ids))
    gaps, missing = {}, []
    for mid in ids:
        v = cache_get(cache_store, f"mp-gap:{mid}")
        (missing.append(mid) if v is None else gaps.__setitem__(mid, v))
    api_key = api_key or os.environ.get(MP_API_KEY_ENV)
    if missing and api_key:
        from mp_api.client import MPRester

        with MPRester(api_key) as mpr:
            for doc in mpr.materials.summary.search(material_ids=missing, fields=["material_id", "band_gap"]):
                gaps[str(doc.material_id)] = doc.band_gap
                cache_put(cache_store, f"mp-gap:{doc.material_id}", doc.band_gap)
    return gaps


# --- shipped data ------------------------------------------------------------------------------------


def matterviz_entries() -> list[ComputedEntry]:
    """MP's Li-Co-Ni-O entries as shipped by janosh/matterviz (MIT), with MP's own E_hull in ``data``."""
    with gzip.open(data_path("mp_Li-Co-Ni-O.json.gz").open("rb"), "rt") as f:
        rows = json.load(f)["entries"]
    return [ComputedEntry(r["composition"], r["energy"], correction=r["correction"],
                          entry_id=r["entry_id"],
                          data={"energy_scale": MP_SCALE, "material_id": r["material_id"],
                                "mp_e_above_hull": r["e_above_hull"], "mp_e_form_per_atom": r["e_form_per_atom"]})
            for r in rows]


@cache
def _alexandria() -> dict:
    with gzip.open(data_path("alexandria_ternaries.json.gz").open("rb"), "rt") as f:
        return json.load(f)["systems"]


def alexandria_entries(system: str) -> list[ComputedEntry]:
    """Alexandria PBE entries of a shipped ternary system ("Li-P-S", "Li-Ti-O"), elements at 0 eV.

    Energies are formation energies, so they form their own scale: never mixed with MP or CHGNet.
    """
    systems = _alexandria()
    key = next((k for k in systems if set(k.split("-")) == set(system.split("-"))), None)
    if key is None:
        raise CoatflowError(f"no shipped Alexandria data for {system} (have: {', '.join(sorted(systems))})")
    rows = systems[key]
    entries = [ComputedEntry(r["composition"], r["energy"], entry_id=r["entry_id"],
                             data={"energy_scale": ALEXANDRIA_SCALE, "band_gap": r["band_gap"],
                                   "alexandria_e_above_hull": r["e_above_hull"]}) for r in rows]
    elements = sorted({el for r in rows for el in r["composition"]})
    return entries + [ComputedEntry(el, 0.0, entry_id=f"{el} (reference)", data={"energy_scale": ALEXANDRIA_SCALE})
                      for el in elements]


@cache
def alexandria_band_gaps() -> dict[str, float]:
    """PBE band gap (eV) of the lowest-energy Alexandria polymorph of each shipped compound."""
    gaps = {}
    for system in _alexandria():
        for f, e in ground_states(alexandria_entries(system)).items():
            if e.data.get("band_gap") is not None and not e.composition.is_element:
                gaps[f] = float(e.data["band_gap"])
    return gaps


# --- the Materials Project snapshot (formation energies, E_hull, gaps, G_VRH by formula) -------------------

#: MP formation energies per formula (matbench mp_e_form, MP 2019-04-02), elements at 0: a scale of its own
MP_SNAPSHOT_SCALE = "MP-snapshot"
SNAPSHOT_FILE = "mp_snapshot.json.gz"
SNAPSHOT_NAME = "MP snapshot (crabnet 2.0.8)"


@cache
def mp_snapshot() -> dict:
    """The shipped snapshot: {"source", "columns", "formulas": {reduced formula: {column: value}}}."""
    with gzip.open(data_path(SNAPSHOT_FILE).open("rb"), "rt") as f:
        return json.load(f)


@cache
def snapshot_version() -> str:
    """Short hash of the shipped snapshot: part of the key of every verdict computed from it."""
    import hashlib

    return hashlib.sha1(data_path(SNAPSHOT_FILE).read_bytes()).hexdigest()[:12]


def snapshot_row(formula) -> dict | None:
    """The snapshot's values of ``formula`` (any notation), or None when the snapshot lacks it."""
    return mp_snapshot()["formulas"].get(Composition(formula).reduced_formula)


def is_li_m_o_ternary(formula) -> bool:
    """Li, O and exactly one other element."""
    els = {el.symbol for el in Composition(formula).elements}
    return len(els) == 3 and {"Li", "O"} <= els


def snapshot_ternaries() -> list[str]:
    """Every Li-M-O ternary formula of the snapshot, sorted."""
    return sorted(f for f in mp_snapshot()["formulas"] if is_li_m_o_ternary(f))


def snapshot_id(formula) -> str:
    """The entry id of a formula on the snapshot scale (one entry per formula: its lowest-energy polymorph)."""
    return f"mp-snapshot:{Composition(formula).reduced_formula}"


@cache
def _snapshot_elements() -> dict[str, frozenset[str]]:
    return {f: frozenset(el.symbol for el in Composition(f).elements)
            for f, r in mp_snapshot()["formulas"].items() if "e_form" in r}


def snapshot_entries(elements) -> list[ComputedEntry]:
    """Entries of every snapshot formula within ``elements``: formation energy per atom x atoms (the ground
    state's), every element at 0 eV. ``data["material_id"]`` is ``snapshot_id(formula)``."""
    els = {Element(x).symbol for x in elements}
    rows = mp_snapshot()["formulas"]
    entries = [ComputedEntry(f, rows[f]["e_form"] * Composition(f).num_atoms, entry_id=snapshot_id(f),
                             data={"energy_scale": MP_SNAPSHOT_SCALE, "material_id": snapshot_id(f)})
               for f, fe in _snapshot_elements().items() if fe <= els and len(fe) > 1]
    return entries + [ComputedEntry(el, 0.0, entry_id=snapshot_id(el),
                                    data={"energy_scale": MP_SNAPSHOT_SCALE, "material_id": snapshot_id(el)})
                      for el in sorted(els)]


def polymorph_gap(gaps: list[float] | None, threshold: float) -> tuple[float | None, str | None]:
    """(band gap, None) when every polymorph's PBE gap lies on the same side of ``threshold`` (the smallest
    when all are at or above it, the largest when all are below), else (None, why).

    The snapshot's gaps are per MP material within 150 meV/atom of the hull and not tied to its formation
    energies, so when the polymorphs straddle the threshold the ground state's side is unknown.
    """
    if not gaps:
        return None, f"no band gap in the {SNAPSHOT_NAME}"
    lo, hi = min(gaps), max(gaps)
    if lo >= threshold:
        return lo, None
    if hi < threshold:
        return hi, None
    return None, (f"{len(gaps)} MP polymorphs with PBE gaps {lo:.2f}-{hi:.2f} eV on both sides of {threshold} eV "
                  f"(the {SNAPSHOT_NAME} does not say which is the ground state)")

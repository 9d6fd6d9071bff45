"""Energies without electrons: E_hull, Li-open stability windows, interfacial reactions, formation
from binary precursors and average cathode voltages.

Every entry carries ``data["energy_scale"]``: ``"MP2020"`` for Materials Project GGA(+U) entries with
MP2020 corrections, ``"CHGNet+MP2020"`` for energies computed here by CHGNet with the same corrections,
``"Alexandria-PBE"`` for the shipped Alexandria formation energies (Li-P-S, Li-Ti-O).
A phase diagram never mixes two scales: that raises CoatflowError.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timezone
from functools import cache
from importlib.resources import files

from monty.json import MontyDecoder
from pymatgen.analysis.interface_reactions import InterfacialReactivity
from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram, PhaseDiagram
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from coatflow.workflows.errors import CoatflowError

MP_SCALE = "MP2020"
ALEXANDRIA_SCALE = "Alexandria-PBE"
MP_API_KEY_ENV = "MP_API_KEY"
LI = Element("Li")

# MP's Hubbard U (eV) for oxides and fluorides, MPRelaxSet: needed to tag CHGNet energies as GGA+U.
_MP_U = {"Co": 3.32, "Cr": 3.7, "Fe": 5.3, "Mn": 3.9, "Mo": 4.38, "Ni": 6.2, "V": 3.25, "W": 6.2}


def _data_path(name: str):
    return files("coatflow.workflows").joinpath(f"data/{name}")


# --- energy scales ------------------------------------------------------------------------------


def scale_of(entry) -> str:
    scale = (entry.data or {}).get("energy_scale")
    if not scale:
        raise CoatflowError(f"entry {entry.entry_id or entry.composition.reduced_formula} has no energy scale tag")
    return scale


def check_one_scale(entries) -> str:
    """The single energy scale of ``entries``; mixing scales raises CoatflowError."""
    scales = {scale_of(e) for e in entries}
    if len(scales) != 1:
        raise CoatflowError(f"refusing to mix energy scales {sorted(scales)} in one phase diagram")
    return scales.pop()


def phase_diagram(entries) -> PhaseDiagram:
    check_one_scale(entries)
    try:
        return PhaseDiagram(list(entries))
    except ValueError as exc:  # e.g. an element without any entry
        raise CoatflowError(f"cannot build phase diagram: {str(exc).splitlines()[0]}") from None


def covers(entries, elements) -> list[str]:
    """Elements of ``elements`` that have no elemental entry in ``entries``."""
    have = {e.composition.elements[0].symbol for e in entries if e.composition.is_element}
    return sorted({Element(x).symbol for x in elements} - have)


def in_chemsys(entries, elements) -> list:
    els = {Element(x) for x in elements}
    return [e for e in entries if set(e.composition.elements) <= els]


def mp2020_entry(composition, energy: float, scale: str, entry_id: str | None = None,
                 structure: Structure | None = None) -> ComputedEntry:
    """An entry with a raw GGA(+U)-like energy, corrected with MP2020 and tagged ``scale``.

    Used for CHGNet energies: CHGNet is trained on raw MP GGA/GGA+U energies, so the MP2020
    anion and U corrections apply to it the same way.
    """
    comp = Composition(composition)
    symbols = {el.symbol for el in comp.elements}
    u = {el: _MP_U[el] for el in symbols & _MP_U.keys()} if symbols & {"O", "F"} else {}
    params = {"run_type": "GGA+U" if u else "GGA", "is_hubbard": bool(u), "hubbards": u,
              "potcar_spec": [], "oxide_type": None}
    cls = ComputedStructureEntry if structure is not None else ComputedEntry
    kw = {"structure": structure} if structure is not None else {"composition": comp}
    entry = cls(**kw, energy=energy, parameters=params, entry_id=entry_id, data={"energy_scale": scale})
    processed = MaterialsProject2020Compatibility(check_potcar=False).process_entry(entry, on_error="raise")
    if processed is None:
        raise CoatflowError(f"MP2020 compatibility rejected {comp.reduced_formula}")
    processed.data["energy_scale"] = scale
    return processed


# --- Materials Project entries, cached ------------------------------------------------------------


def _cache_get(cache, key: str):
    if cache is None:
        return None
    doc = cache.query_one({"key": key})
    return None if doc is None else doc["value"]


def _cache_put(cache, key: str, value) -> None:
    if cache is not None:
        cache.update([{"key": key, "value": value, "stored_at": datetime.now(timezone.utc).isoformat()}], key="key")


def mp_entries(elements, cache=None, api_key: str | None = None) -> list[ComputedEntry]:
    """MP entries of the chemical system (MP2020-corrected by mp-api), from the cache or MP."""
    chemsys = "-".join(sorted({Element(x).symbol for x in elements}))
    key = f"mp-entries:{chemsys}"
    cached = _cache_get(cache, key)
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
        _cache_put(cache, key, cached)
    entries = [MontyDecoder().process_decoded(d) for d in cached]
    for e in entries:
        e.data["energy_scale"] = MP_SCALE
    return entries


def mp_band_gaps(material_ids, cache=None, api_key: str | None = None) -> dict[str, float]:
    """MP band gaps (eV) by material id, from the cache or MP; empty when neither is available."""
    ids = sorted(set(material_ids))
    gaps, missing = {}, []
    for mid in ids:
        v = _cache_get(cache, f"mp-gap:{mid}")
        (missing.append(mid) if v is None else gaps.__setitem__(mid, v))
    api_key = api_key or os.environ.get(MP_API_KEY_ENV)
    if missing and api_key:
        from mp_api.client import MPRester

        with MPRester(api_key) as mpr:
            for doc in mpr.materials.summary.search(material_ids=missing, fields=["material_id", "band_gap"]):
                gaps[str(doc.material_id)] = doc.band_gap
                _cache_put(cache, f"mp-gap:{doc.material_id}", doc.band_gap)
    return gaps


def matterviz_entries() -> list[ComputedEntry]:
    """MP's Li-Co-Ni-O entries as shipped by janosh/matterviz (MIT), with MP's own E_hull in ``data``."""
    with gzip.open(_data_path("mp_Li-Co-Ni-O.json.gz").open("rb"), "rt") as f:
        rows = json.load(f)["entries"]
    return [ComputedEntry(r["composition"], r["energy"], correction=r["correction"],
                          entry_id=r["entry_id"],
                          data={"energy_scale": MP_SCALE, "material_id": r["material_id"],
                                "mp_e_above_hull": r["e_above_hull"], "mp_e_form_per_atom": r["e_form_per_atom"]})
            for r in rows]


@cache
def _alexandria() -> dict:
    with gzip.open(_data_path("alexandria_ternaries.json.gz").open("rb"), "rt") as f:
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


# --- phase stability ------------------------------------------------------------------------------


def e_above_hull(entry, entries) -> tuple[float, dict[str, float]]:
    """(E_hull in eV/atom, decomposition {formula: fraction}) of ``entry`` against ``entries``."""
    others = [e for e in entries if e is not entry]
    pd = phase_diagram([*others, entry])
    decomp, ehull = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
    return float(ehull), {e.composition.reduced_formula: round(x, 4) for e, x in decomp.items()}


def ground_states(entries) -> dict[str, ComputedEntry]:
    """Lowest-energy entry per reduced formula."""
    best: dict[str, ComputedEntry] = {}
    for e in entries:
        f = e.composition.reduced_formula
        if f not in best or e.energy_per_atom < best[f].energy_per_atom:
            best[f] = e
    return best


def formation_from_precursors(target, entries) -> dict:
    """Li2O + M_xO_y (+/- O2) -> target for every M-O binary with an entry, in meV per atom of target.

    Applies to Li-M-O targets with one metal M; O2 balances precursors whose M oxidation state differs.
    """
    comp = Composition(target.composition)
    metals = [el for el in comp.elements if el.symbol not in ("Li", "O")]
    if LI not in comp or Element("O") not in comp or len(metals) != 1:
        return {"status": "not_computed", "reason": "not computed: target is not a Li-M-O ternary oxide"}
    m = metals[0]
    best = ground_states(entries)
    if "Li2O" not in best or "O2" not in best:
        return {"status": "not_computed", "reason": "not computed: no Li2O or O2 entry"}
    li2o, o2 = best["Li2O"], best["O2"]
    mu_o = o2.energy_per_atom
    per_fu = comp.num_atoms
    binaries = [e for e in best.values() if set(e.composition.elements) == {m, Element("O")}]
    mo_pd = phase_diagram(in_chemsys(entries, [m, "O"])) if binaries and not covers(entries, [m, "O"]) else None
    out = {}
    for e in binaries:  # only binaries on the M-O hull are real precursors
        c, f = e.composition, e.composition.reduced_formula
        if mo_pd is None or mo_pd.get_e_above_hull(e) > 1e-8:
            continue
        n_li2o = comp[LI] / 2  # per target formula unit
        n_mo = comp[m] / c[m]
        d_o = comp["O"] - n_li2o - n_mo * c["O"]  # O atoms taken from O2 (>0) or released (<0)
        de = (target.energy - n_li2o * li2o.energy_per_atom * 3 - n_mo * e.energy - d_o * mu_o) / per_fu
        out[f] = {"meV_per_atom": round(1000 * de, 1), "o2_per_target_atom": round(d_o / per_fu, 4)}
    if not out:
        return {"status": "not_computed", "reason": f"not computed: no {m.symbol}-O binary entry"}
    return {"status": "computed", "precursors": out}


def average_voltage(entries, charged: str, discharged: str, ion: str = "Li") -> float:
    """Average voltage (V vs ion metal) between two lithiation states, from ground-state entries."""
    check_one_scale(entries)
    best = ground_states(entries)
    ion_el = Element(ion)
    names = {"charged": charged, "discharged": discharged, ion: ion}
    missing = [v for v in names.values() if Composition(v).reduced_formula not in best]
    if missing:
        raise CoatflowError(f"no entry for {', '.join(missing)} to compute a voltage")
    ec, ed = (best[Composition(x).reduced_formula] for x in (charged, discharged))
    cc, cd = ec.composition, ed.composition
    host_c = Composition({el: a for el, a in cc.items() if el != ion_el})
    host_d = Composition({el: a for el, a in cd.items() if el != ion_el})
    if host_c.reduced_formula != host_d.reduced_formula:
        raise CoatflowError(f"{charged} and {discharged} do not share a host framework")
    # scale both to the same amount of host
    fc = 1 / host_c.get_reduced_composition_and_factor()[1]
    fd = 1 / host_d.get_reduced_composition_and_factor()[1]
    n_c, n_d = cc[ion_el] * fc, cd[ion_el] * fd
    if abs(n_d - n_c) < 1e-8:
        raise CoatflowError(f"{charged} and {discharged} have the same {ion} content")
    mu = best[ion_el.symbol].energy_per_atom
    return -((ed.energy * fd - ec.energy * fc) - (n_d - n_c) * mu) / (n_d - n_c)


# --- electrochemical stability window ------------------------------------------------------------


def _on_hull(entry, entries) -> tuple[ComputedEntry, float]:
    """The candidate shifted down to the hull when metastable, so its window is defined."""
    ehull, _ = e_above_hull(entry, entries)
    if ehull <= 0:
        return entry, ehull
    shifted = ComputedEntry(entry.composition, entry.energy - ehull * entry.composition.num_atoms - 1e-6,
                            entry_id=entry.entry_id, data=dict(entry.data))
    return shifted, ehull


def stability_window(entry, entries, ion: str = "Li") -> dict:
    """Reduction and oxidation limits (V vs Li/Li+) from grand-potential diagrams with Li open,
    and the decomposition products just beyond each limit."""
    ion_el = Element(ion)
    entries = in_chemsys([e for e in entries if e is not entry], {*entry.composition.elements, ion_el})
    check_one_scale([*entries, entry])
    target, ehull = _on_hull(entry, entries)
    pool = [*entries, target]
    pd = phase_diagram(pool)
    mu0 = min(e.energy_per_atom for e in pool if e.composition.is_element and ion_el in e.composition)
    comp = target.composition
    if comp.is_element:
        raise CoatflowError(f"{comp.reduced_formula} is an element; no stability window")
    crit = sorted({mu for mu in pd.get_transition_chempots(ion_el)} | {mu0}, reverse=True)
    # interval midpoints in mu_Li, from Li metal (0 V) downwards; below the last one a 1 V margin
    host = Composition({el: x for el, x in comp.items() if el != ion_el})
    grid = [mu0 + 0.01] + [(a + b) / 2 for a, b in zip(crit, crit[1:])] + [crit[-1] - 1.0]
    bounds = [(mu0, mu0)] + list(zip(crit, crit[1:])) + [(crit[-1], crit[-1] - 1.0)]
    states = []
    for mu in grid:
        gppd = GrandPotentialPhaseDiagram(pool, {ion_el: mu})
        decomp = gppd.get_decomposition(host)
        states.append(sorted(e.original_entry.composition.reduced_formula for e in decomp))
    stable = [i for i, p in enumerate(states) if p == [comp.reduced_formula]]
    if not stable:
        return {"status": "not_computed", "reason": "not computed: no Li chemical potential where the phase is stable",
                "e_above_hull": float(ehull)}
    lo, hi = stable[0], stable[-1]
    v = lambda mu: round(float(mu0 - mu), 4)  # noqa: E731
    red_v = v(bounds[lo][0]) if lo > 0 else 0.0
    ox_v = v(bounds[hi][1])
    return {
        "status": "computed",
        "reduction_limit": red_v,
        "oxidation_limit": ox_v,
        "reduction_products": states[lo - 1] if lo > 0 else ["stable against Li metal"],
        "oxidation_products": states[hi + 1] if hi + 1 < len(states) else [],
        "e_above_hull": float(ehull),
        "shifted_to_hull": bool(ehull > 0),
    }


# --- interfacial reactions ------------------------------------------------------------------------


def classify_gap(formula: str, gap: float | None, threshold: float) -> str:
    """'insulating', 'conducting' or 'unknown' for one reaction product."""
    comp = Composition(formula)
    if comp.is_element and comp.elements[0].is_metal:
        return "conducting"  # an elemental metal has no gap
    if gap is None:
        return "unknown"
    return "insulating" if gap >= threshold else "conducting"


def interfacial_reaction(a: str, b: str, entries, gaps: dict[str, float] | None = None,
                         gap_min: float = 0.5) -> dict:
    """Most negative reaction energy (eV/atom) of mixing ``a`` and ``b``, its mixing ratio, and products.

    ``gaps`` maps reduced formulas to band gaps (eV); products without one are 'unknown'.
    """
    gaps = gaps or {}
    ca, cb = Composition(a), Composition(b)
    check_one_scale(entries)
    missing = covers(entries, set(ca.elements) | set(cb.elements))
    if missing:
        return {"status": "not_computed", "reason": f"not computed: no elemental reference for {', '.join(missing)}"}
    pd = phase_diagram(entries)
    ir = InterfacialReactivity(ca, cb, pd, norm=True, use_hull_energy=True)
    kinks = list(ir.get_kinks())
    _, x, energy, rxn, _ = min(kinks, key=lambda k: k[2])
    reacts = energy < -1e-6  # numerical zero: no reaction
    products = sorted({c.reduced_formula for c in rxn.products}) if reacts else []
    classes = {p: classify_gap(p, gaps.get(p), gap_min) for p in products}
    return {"status": "computed", "pair": f"{ca.reduced_formula} | {cb.reduced_formula}",
            "reaction_energy": round(float(energy), 4) + 0.0, "mixing_ratio": round(float(x), 4),
            "reaction": str(rxn) if reacts else None, "products": products, "product_class": classes,
            "product_gaps": {p: gaps.get(p) for p in products}}

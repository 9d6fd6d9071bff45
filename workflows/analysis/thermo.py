"""Energies without electrons: E_hull, Li-open stability windows, interfacial reactions, formation
from binary precursors and average voltages, on plain pymatgen entries.

Every entry carries ``data["energy_scale"]``: ``"MP2020"`` for Materials Project GGA(+U) entries with
MP2020 corrections, ``"CHGNet+MP2020"`` for energies computed here by CHGNet with the same corrections,
``"Alexandria-PBE"`` for the shipped Alexandria formation energies (Li-P-S, Li-Ti-O).
A phase diagram never mixes two scales: that raises AnalysisError.

Where pymatgen has the piece, it does the work: the window is
``PhaseDiagram.get_chempot_range_stability_phase`` with Li open, its products the decomposition in
``GrandPotentialPhaseDiagram`` just beyond each limit; voltages are ``InsertionElectrode``'s; the
Hubbard U of an MP-like entry is ``MaterialsProject2020Compatibility``'s; reactions are
``InterfacialReactivity``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymatgen.analysis.interface_reactions import InterfacialReactivity
from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram, PhaseDiagram
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from coatflow.workflows.analysis import AnalysisError

MP_SCALE = "MP2020"
ALEXANDRIA_SCALE = "Alexandria-PBE"
LI = Element("Li")

#: 4f elements with partly filled shells in their usual oxidation states: a PBE gap (no U, f in valence)
#: is not a classification (Tb2O3 comes out metallic), so their compounds get no computed band gap.
OPEN_4F = frozenset({"Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb"})
OPEN_4F_NOTE = "open 4f shell, a PBE gap is unreliable"


def has_open_4f(formula: str | Composition) -> bool:
    """Whether ``formula`` contains an element with a partly filled 4f shell (see ``OPEN_4F``)."""
    return bool({el.symbol for el in Composition(formula).elements} & OPEN_4F)


# --- energy scales ------------------------------------------------------------------------------


def scale_of(entry) -> str:
    """The energy scale tag of ``entry`` (``data["energy_scale"]``)."""
    scale = (entry.data or {}).get("energy_scale")
    if not scale:
        raise AnalysisError(f"entry {entry.entry_id or entry.composition.reduced_formula} has no energy scale tag")
    return scale


def check_one_scale(entries) -> str:
    """The single energy scale of ``entries``; mixing scales raises AnalysisError."""
    scales = {scale_of(e) for e in entries}
    if len(scales) != 1:
        raise AnalysisError(f"refusing to mix energy scales {sorted(scales)} in one phase diagram")
    return scales.pop()


def phase_diagram(entries) -> PhaseDiagram:
    """The phase diagram of ``entries``, all on one energy scale."""
    check_one_scale(entries)
    try:
        return PhaseDiagram(list(entries))
    except ValueError as exc:  # e.g. an element without any entry
        raise AnalysisError(f"cannot build phase diagram: {str(exc).splitlines()[0]}") from None


def covers(entries, elements) -> list[str]:
    """Elements of ``elements`` that have no elemental entry in ``entries``."""
    have = {e.composition.elements[0].symbol for e in entries if e.composition.is_element}
    return sorted({Element(x).symbol for x in elements} - have)


def in_chemsys(entries, elements) -> list:
    """The entries whose elements all lie in ``elements``."""
    els = {Element(x) for x in elements}
    return [e for e in entries if set(e.composition.elements) <= els]


def mp_hubbard_u(composition) -> dict[str, float]:
    """Materials Project's Hubbard U (eV) for the elements of ``composition``, MP2020 settings.

    MP applies U to the transition metals of oxides and fluorides, keyed by the most electronegative
    element; other compounds are plain GGA.
    """
    comp = Composition(composition)
    anion = max(comp.elements, key=lambda el: el.X).symbol
    table = MaterialsProject2020Compatibility(check_potcar=False).u_settings.get(anion, {})
    return {el.symbol: table[el.symbol] for el in comp.elements if el.symbol in table}


def mp2020_entry(composition, energy: float, scale: str, entry_id: str | None = None,
                 structure: Structure | None = None) -> ComputedEntry:
    """An entry with a raw GGA(+U)-like energy, corrected with MP2020 and tagged ``scale``.

    Used for CHGNet energies: CHGNet is trained on raw MP GGA/GGA+U energies, so the MP2020
    anion and U corrections apply to it the same way.
    """
    comp = Composition(composition)
    u = mp_hubbard_u(comp)
    params = {"run_type": "GGA+U" if u else "GGA", "is_hubbard": bool(u), "hubbards": u,
              "potcar_spec": [], "oxide_type": None}
    cls = ComputedStructureEntry if structure is not None else ComputedEntry
    kw = {"structure": structure} if structure is not None else {"composition": comp}
    entry = cls(**kw, energy=energy, parameters=params, entry_id=entry_id, data={"energy_scale": scale})
    processed = MaterialsProject2020Compatibility(check_potcar=False).process_entry(entry, on_error="raise")
    if processed is None:
        raise AnalysisError(f"MP2020 compatibility rejected {comp.reduced_formula}")
    processed.data["energy_scale"] = scale
    return processed


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


def formation_from_precursors(target, entries) -> dict[str, dict[str, float]]:
    """Li2O + M_xO_y (+/- O2) -> target for every M-O binary on the M-O hull, in meV per atom of target.

    Returns {binary formula: {"meV_per_atom": ..., "o2_per_target_atom": ...}}. Applies to Li-M-O targets
    with one metal M; O2 balances precursors whose M oxidation state differs. AnalysisError when the target
    is not such an oxide or a precursor is missing.
    """
    comp = Composition(target.composition)
    metals = [el for el in comp.elements if el.symbol not in ("Li", "O")]
    if LI not in comp or Element("O") not in comp or len(metals) != 1:
        raise AnalysisError("target is not a Li-M-O ternary oxide")
    m = metals[0]
    best = ground_states(entries)
    if "Li2O" not in best or "O2" not in best:
        raise AnalysisError("no Li2O or O2 entry")
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
        raise AnalysisError(f"no {m.symbol}-O binary entry")
    return out


# --- voltages ---------------------------------------------------------------------------------------


def insertion_electrode(entries, ion_entry) -> InsertionElectrode:
    """pymatgen's InsertionElectrode of ``entries`` (states of one host framework) against ``ion_entry``."""
    try:
        return InsertionElectrode.from_entries(list(entries), ion_entry)
    except (ValueError, IndexError) as exc:  # one state only, different frameworks, same ion content
        raise AnalysisError(f"no voltage from {sorted({e.composition.reduced_formula for e in entries})}: "
                            f"{str(exc).removeprefix('VoltagePair: ') or 'fewer than two stable states'}") from None


def average_voltage(entries, charged: str, discharged: str, ion: str = "Li") -> float:
    """Average voltage (V vs ion metal) between two lithiation states, from ground-state entries."""
    check_one_scale(entries)
    best = ground_states(entries)
    missing = [v for v in (charged, discharged, ion) if Composition(v).reduced_formula not in best]
    if missing:
        raise AnalysisError(f"no entry for {', '.join(missing)} to compute a voltage")
    ec, ed = (best[Composition(x).reduced_formula] for x in (charged, discharged))
    return float(insertion_electrode([ec, ed], best[Element(ion).symbol]).get_average_voltage())


# --- electrochemical stability window ------------------------------------------------------------


@dataclass(frozen=True)
class StabilityWindow:
    """Li-open stability window of one phase, V vs Li/Li+."""

    reduction_limit: float  #: below this voltage (towards Li metal) the phase takes up Li
    oxidation_limit: float  #: above it the phase gives up Li
    reduction_products: list[str] = field(default_factory=list)  #: just below the reduction limit
    oxidation_products: list[str] = field(default_factory=list)  #: just above the oxidation limit
    e_above_hull: float = 0.0  #: eV/atom of the phase itself
    shifted_to_hull: bool = False  #: a metastable phase is moved onto the hull for its window


def on_hull(entry, entries) -> tuple[ComputedEntry, float]:
    """(``entry``, or a copy moved 1 ueV/atom below the hull of ``entries`` when metastable; its E_hull),
    so that a metastable phase has a window."""
    ehull, _ = e_above_hull(entry, entries)
    if ehull <= 0:
        return entry, ehull
    shifted = ComputedEntry(entry.composition, entry.energy - ehull * entry.composition.num_atoms - 1e-6,
                            entry_id=entry.entry_id, data=dict(entry.data))
    return shifted, ehull


def _products(pool, host: Composition, ion: Element, mu: float) -> list[str]:
    """Phases the Li-free ``host`` decomposes into at ion chemical potential ``mu`` (absolute, eV)."""
    gppd = GrandPotentialPhaseDiagram(pool, {ion: mu})
    return sorted(e.original_entry.composition.reduced_formula for e in gppd.get_decomposition(host))


def stability_window(entry, entries, ion: str = "Li") -> StabilityWindow:
    """Reduction and oxidation limits (V vs Li/Li+) of ``entry`` with Li open, and the phases just
    beyond each limit.

    The limits are the lowest and highest Li chemical potential at which the phase is on the hull
    (``PhaseDiagram.get_chempot_range_stability_phase``), against the lowest-energy Li entry. Products are the
    decomposition of the Li-free host in the grand-potential diagram halfway to the next transition
    chemical potential (1 V beyond the last one); at a reduction limit of 0 V the phase is stable
    against Li metal.
    """
    ion_el = Element(ion)
    comp = entry.composition
    if comp.is_element:
        raise AnalysisError(f"{comp.reduced_formula} is an element; no stability window")
    if ion_el not in comp:
        raise AnalysisError(f"{comp.reduced_formula} has no {ion}; its {ion} window is not defined")
    entries = in_chemsys([e for e in entries if e is not entry], {*comp.elements, ion_el})
    check_one_scale([*entries, entry])
    if missing := covers(entries, comp.elements):
        raise AnalysisError(f"no elemental reference for {', '.join(missing)}")
    target, ehull = on_hull(entry, entries)
    pool = [*entries, target]
    pd = phase_diagram(pool)
    mu0 = pd.el_refs[ion_el].energy_per_atom
    mu_min, mu_max = pd.get_chempot_range_stability_phase(comp, ion_el)[ion_el]
    mu_max = min(mu_max, mu0)  # above Li metal the phase meets Li itself
    crit = sorted(pd.get_transition_chempots(ion_el))
    below = [mu for mu in crit if mu < mu_min - PhaseDiagram.numerical_tol]
    above = [mu for mu in crit if mu_max + PhaseDiagram.numerical_tol < mu < mu0]
    host = Composition({el: x for el, x in comp.items() if el != ion_el})
    if mu_max >= mu0 - PhaseDiagram.numerical_tol:
        red_products = ["stable against Li metal"]
    else:
        red_products = _products(pool, host, ion_el, (mu_max + (above[0] if above else mu0)) / 2)
    ox_products = _products(pool, host, ion_el, (mu_min + below[-1]) / 2 if below else mu_min - 1.0)
    return StabilityWindow(
        reduction_limit=round(float(mu0 - mu_max), 4) + 0.0,
        oxidation_limit=round(float(mu0 - mu_min), 4) + 0.0,
        reduction_products=red_products,
        oxidation_products=ox_products,
        e_above_hull=float(ehull),
        shifted_to_hull=bool(ehull > 0),
    )


# --- interfacial reactions ------------------------------------------------------------------------


def classify_gap(formula: str, gap: float | None, threshold: float) -> str:
    """'insulating', 'conducting' or 'unknown' for one reaction product."""
    comp = Composition(formula)
    if comp.is_element and comp.elements[0].is_metal:
        return "conducting"  # an elemental metal has no gap
    if gap is None:
        return "unknown"
    return "insulating" if gap >= threshold else "conducting"


def conduction_class(formula: str, gap: float | None, gap_min: float | None) -> str:
    """'insulating', 'mixed-conducting', 'metallic' or 'unknown' for one reaction product: the three classes
    of ``classify_gap``'s 'conducting' split as the report draws them (docs/report.md).

    metallic: an elemental metal, or a PBE gap of zero; mixed-conducting: a gap above zero but below
    ``gap_min`` (a small-gap semiconductor: it carries electrons, and in the interphase it sits beside the
    Li-conducting products, so the layer conducts both); insulating: a gap of at least ``gap_min``; unknown:
    no gap. 'metallic' and 'mixed-conducting' together are exactly ``classify_gap``'s 'conducting'.
    """
    comp = Composition(formula)
    if comp.is_element and comp.elements[0].is_metal:
        return "metallic"
    if gap is None or gap_min is None:
        return "unknown"
    return "insulating" if gap >= gap_min else ("metallic" if gap <= 0 else "mixed-conducting")


@dataclass(frozen=True)
class InterfacialReaction:
    """The most exothermic reaction of two phases mixed in any ratio."""

    pair: str  #: "A | B", reduced formulas
    reaction_energy: float  #: eV/atom of the mixture, <= 0
    mixing_ratio: float  #: fraction of A in the mixture
    reaction: str | None  #: None when the pair does not react
    products: list[str]
    product_class: dict[str, str]  #: insulating | conducting | unknown
    product_gaps: dict[str, float | None]  #: eV
    #: insulating | mixed-conducting | metallic | unknown (``conduction_class``)
    product_conduction: dict[str, str] = field(default_factory=dict)


def interfacial_reaction(a: str, b: str, entries, gaps: dict[str, float] | None = None,
                         gap_min: float = 0.5, use_hull_energy: bool = True) -> InterfacialReaction:
    """Most negative reaction energy (eV/atom) of mixing ``a`` and ``b``, its mixing ratio, and products.

    ``gaps`` maps reduced formulas to band gaps (eV); products without one are 'unknown'. Reactants enter at
    the convex-hull energy of their composition, or with ``use_hull_energy=False`` at their own lowest entry
    (a metastable reactant, e.g. a charged cathode; the hull energy where the composition has no entry); then
    only mixtures of both count (the ends, x = 0 or 1, would be a reactant's own decomposition), and a value
    at an interior kink includes the metastable reactants' share of their decomposition energy.
    """
    gaps = gaps or {}
    ca, cb = Composition(a), Composition(b)
    check_one_scale(entries)
    missing = covers(entries, set(ca.elements) | set(cb.elements))
    if missing:
        raise AnalysisError(f"no elemental reference for {', '.join(missing)}")
    pd = phase_diagram(entries)
    ir = InterfacialReactivity(ca, cb, pd, norm=True, use_hull_energy=use_hull_energy)
    kinks = list(ir.get_kinks())
    if not use_hull_energy:  # the ends are a metastable reactant's own decomposition, not a reaction of the two
        kinks = [k for k in kinks if 1e-9 < k[1] < 1 - 1e-9] or [(None, 0.0, 0.0, None, None)]
    _, x, energy, rxn, _ = min(kinks, key=lambda k: k[2])
    reacts = energy < -1e-6  # numerical zero: no reaction
    products = sorted({c.reduced_formula for c in rxn.products}) if reacts else []
    return InterfacialReaction(
        pair=f"{ca.reduced_formula} | {cb.reduced_formula}", reaction_energy=round(float(energy), 4) + 0.0,
        mixing_ratio=round(float(x), 4), reaction=str(rxn) if reacts else None, products=products,
        product_class={p: classify_gap(p, gaps.get(p), gap_min) for p in products},
        product_gaps={p: gaps.get(p) for p in products},
        product_conduction={p: conduction_class(p, gaps.get(p), gap_min) for p in products})

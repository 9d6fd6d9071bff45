"""Defect thermodynamics without a calculator: the defect set, defect supercells, the Freysoldt correction,
chemical potentials, formation energies, carriers, charge neutrality.

Conventions: E_F is measured from the bulk VBM (eV); a formation energy is
``E_f(q, E_F, mu) = e0 + q E_F - sum_i dn_i dmu_i`` with ``e0`` at E_F = 0 and dmu = 0, ``dn_i`` atoms
added. Concentrations are per cm^3. ``mu_li`` is mu_Li - mu_Li(bcc Li); the Li potential vs Li/Li+
is V = -mu_li / e, so dE_F/dV = -dE_F/dmu_Li.

Freysoldt: pymatgen-analysis-defects' ``get_freysoldt_correction`` on planar-averaged potentials, with the
bulk and defect supercells built on one lattice in one frame (checked). PR #226 of pymatgen-analysis-defects
fixed swapped bulk/defect site potentials in the Kumagai (EFNV) correction, which inverted its alignment
sign; ``kumagai_sign_fixed`` checks the installed version.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.defects.core import Defect, Interstitial, Substitution, Vacancy
from pymatgen.analysis.defects.generators import (AntiSiteGenerator, SubstitutionGenerator, VacancyGenerator,
                                                   VoronoiInterstitialGenerator)
from pymatgen.core import Composition, Element, Lattice, Structure
from scipy.optimize import brentq, linprog
from scipy.special import logsumexp

from coatflow.workflows.analysis import AnalysisError
from coatflow.workflows.analysis.supercells import supercell_matrix

LI = "Li"
K_B = 8.617333262e-5  # eV/K
A3_TO_CM3 = 1e-24


@dataclass(frozen=True)
class ChargedDefect:
    """One defect in one charge state, as the solver needs it."""

    name: str
    charge: int
    e0: float  # eV, formation energy at E_F = VBM and dmu = 0
    dn: dict[str, int] = field(default_factory=dict)
    sites_per_cm3: float = 1e22

    def formation_energy(self, fermi_level: float, dmu: dict[str, float]) -> float:
        return self.e0 + self.charge * fermi_level - sum(n * dmu.get(el, 0.0) for el, n in self.dn.items())

    def log_concentration(self, fermi_level: float, dmu: dict[str, float], temperature: float) -> float:
        return np.log(self.sites_per_cm3) - self.formation_energy(fermi_level, dmu) / (K_B * temperature)


@dataclass(frozen=True)
class BandDos:
    """Bulk eigenvalues (eV, VBM = 0) on a k-mesh, split into valence and conduction bands."""

    valence: np.ndarray  # (n_states,)
    conduction: np.ndarray
    weights_v: np.ndarray  # electrons per state per cm^3 when fully occupied
    weights_c: np.ndarray

    @property
    def gap(self) -> float:
        return float(self.conduction.min() - self.valence.max())

    @classmethod
    def from_eigenvalues(cls, eigenvalues, k_weights, n_electrons: float, volume: float, nspins: int = 1,
                         vbm: float | None = None) -> BandDos:
        """From eigenvalues [spin][k][band] of a cell of ``volume`` Å^3 holding ``n_electrons`` (insulator)."""
        e = np.asarray(eigenvalues, dtype=float)
        w = np.asarray(k_weights, dtype=float)
        if e.ndim != 3 or e.shape[1] != len(w):
            raise AnalysisError("eigenvalues must be [spin][k][band] with one weight per k-point")
        n_val = int(round(n_electrons * nspins / 2))  # bands filled per spin channel
        if abs(n_val * 2 / nspins - n_electrons) > 1e-6 or n_val >= e.shape[2]:
            raise AnalysisError("bulk cell is not a closed-shell insulator with empty bands; no carrier DOS")
        occ = (2.0 / nspins) / (w.sum() * volume * A3_TO_CM3)  # per state
        val, con = e[:, :, :n_val], e[:, :, n_val:]
        ref = float(val.max()) if vbm is None else vbm
        wv = np.broadcast_to(w[None, :, None] * occ, val.shape)
        wc = np.broadcast_to(w[None, :, None] * occ, con.shape)
        return cls(val.ravel() - ref, con.ravel() - ref, wv.ravel().copy(), wc.ravel().copy())

    def log_electrons(self, fermi_level: float, temperature: float) -> float:
        x = (self.conduction - fermi_level) / (K_B * temperature)
        return float(logsumexp(np.log(self.weights_c) - np.logaddexp(0.0, x)))

    def log_holes(self, fermi_level: float, temperature: float) -> float:
        x = (fermi_level - self.valence) / (K_B * temperature)
        return float(logsumexp(np.log(self.weights_v) - np.logaddexp(0.0, x)))


def _log_charges(defects, dos, fermi_level, dmu, temperature) -> tuple[float, float]:
    """log of total positive and total negative charge density (|e| cm^-3)."""
    pos, neg = [-np.inf], [-np.inf]
    for d in defects:
        if d.charge:
            lc = d.log_concentration(fermi_level, dmu, temperature) + np.log(abs(d.charge))
            (pos if d.charge > 0 else neg).append(lc)
    if dos is not None:
        pos.append(dos.log_holes(fermi_level, temperature))
        neg.append(dos.log_electrons(fermi_level, temperature))
    return float(logsumexp(pos)), float(logsumexp(neg))


def solve_fermi_level(defects, dmu: dict[str, float], temperature: float, dos: BandDos | None = None,
                      bounds: tuple[float, float] | None = None) -> float:
    """E_F (eV above the VBM) where positive and negative charges balance.

    The balance is found on log(positive) - log(negative), which decreases monotonically with E_F.
    """
    if temperature <= 0:
        raise AnalysisError(f"temperature must be positive (K), got {temperature}")
    defects = list(defects)
    if not any(d.charge > 0 for d in defects) and dos is None or not any(d.charge < 0 for d in defects) and dos is None:
        raise AnalysisError("charge neutrality needs positive and negative species (defects or carriers)")
    if bounds is None:
        gap = dos.gap if dos is not None else 0.0
        bounds = (-3.0, gap + 3.0)

    def f(ef):
        lp, ln = _log_charges(defects, dos, ef, dmu, temperature)
        return lp - ln

    lo, hi = bounds
    for _ in range(8):  # widen until the balance is bracketed
        if f(lo) > 0 > f(hi):
            break
        lo, hi = lo - 5.0, hi + 5.0
    else:
        raise AnalysisError("no Fermi level balances the charges in the search range")
    return float(brentq(f, lo, hi, xtol=1e-9))


def concentrations(defects, dmu: dict[str, float], fermi_level: float, temperature: float,
                   dos: BandDos | None = None) -> dict[str, float]:
    """cm^-3 per 'name q' (q signed), plus 'electrons' and 'holes' when a DOS is given."""
    out = {f"{d.name} {d.charge:+d}": float(np.exp(d.log_concentration(fermi_level, dmu, temperature)))
           for d in defects}
    if dos is not None:
        out["electrons"] = float(np.exp(dos.log_electrons(fermi_level, temperature)))
        out["holes"] = float(np.exp(dos.log_holes(fermi_level, temperature)))
    return out


def fermi_vs_mu(defects, dmu_of_mu_li, mu_li_grid, temperature: float, dos: BandDos | None = None) -> list[dict]:
    """Charge neutrality on a grid of mu_Li; ``dmu_of_mu_li(mu)`` gives every dmu_i at that mu_Li."""
    out = []
    for mu in mu_li_grid:
        dmu = dmu_of_mu_li(mu)
        ef = solve_fermi_level(defects, dmu, temperature, dos)
        conc = concentrations(defects, dmu, ef, temperature, dos)
        out.append({"mu_li": float(mu), "dmu": dmu, "fermi_level": ef, "concentrations": conc})
    return out


def dominant_species(conc: dict[str, float], charges: dict[str, int]) -> list[str]:
    """The largest positive and the largest negative charge carrier (defect or free carrier)."""
    pos = {k: v * charges[k] for k, v in conc.items() if charges.get(k, 0) > 0}
    neg = {k: -v * charges[k] for k, v in conc.items() if charges.get(k, 0) < 0}
    return [max(d, key=d.get) for d in (pos, neg) if d]


def slope_regimes(mu, ef, tol: float = 0.05) -> list[dict[str, float]]:
    """Contiguous ranges of mu_Li where dE_F/dmu_Li is constant within ``tol``."""
    mu, ef = np.asarray(mu, float), np.asarray(ef, float)
    if len(mu) < 2:
        return []
    s = np.diff(ef) / np.diff(mu)
    regimes, start = [], 0
    for i in range(1, len(s) + 1):
        if i == len(s) or abs(s[i] - np.mean(s[start:i])) > tol:
            regimes.append({"mu_li_from": float(mu[start]), "mu_li_to": float(mu[i]),
                            "slope": round(float(np.mean(s[start:i])), 4)})
            start = i
    return regimes


# -- chemical potentials -------------------------------------------------------------------------


def host_dmu_at(pd, host, dmu_li: float, li: str = "Li") -> dict[str, float]:
    """dmu_i (eV, vs the phase diagram's elemental references) keeping ``host`` stable at ``dmu_li``.

    With more than one free element the point farthest from every competing phase's limit is taken
    (largest minimum slack); for a binary host the host's own energy fixes it exactly.
    """
    host = Composition(host)
    els = [el.symbol for el in pd.elements]
    free = [e for e in els if e != li]
    if li not in els:
        raise AnalysisError(f"phase diagram {'-'.join(els)} has no Li")
    nfree = len(free)

    def row(c):
        return np.array([c[e] for e in free], float), c[li]

    e_host = _formation_per_fu(pd, host)
    a_eq, li_eq = row(host)
    a_ub, b_ub = [], []
    for entry in pd.stable_entries:
        c = entry.composition
        if c.reduced_formula == host.reduced_formula or c.is_element and c.elements[0].symbol == li:
            continue
        coeffs, n_li = row(c)
        a_ub.append(np.append(coeffs, 0.0))
        b_ub.append(pd.get_form_energy(entry) - n_li * dmu_li)
    # maximise t: sum_i n_i dmu_i + t * |row| <= dH_j ; host equality; dmu_i <= 0
    a_ub = np.array(a_ub) if a_ub else np.zeros((0, nfree + 1))
    for k in range(len(a_ub)):
        a_ub[k, -1] = np.linalg.norm(a_ub[k, :-1]) or 1.0
    upper = np.hstack([np.eye(nfree), np.ones((nfree, 1))])
    a_ub = np.vstack([a_ub, upper]) if len(a_ub) else upper
    b_ub = np.concatenate([b_ub, np.zeros(nfree)])
    res = linprog(np.append(np.zeros(nfree), -1.0), A_ub=a_ub, b_ub=b_ub,
                  A_eq=[np.append(a_eq, 0.0)], b_eq=[e_host - li_eq * dmu_li],
                  bounds=[(None, None)] * nfree + [(-1e-3, None)], method="highs")  # the limits are rounded
    if not res.success:
        raise AnalysisError(f"{host.reduced_formula} is not stable at dmu_Li = {dmu_li:.3f} eV")
    return {li: float(dmu_li), **{e: float(x) for e, x in zip(free, res.x[:nfree])}}


def _formation_per_fu(pd, comp) -> float:
    """Formation energy (eV) of ``comp`` as written, from the hull (so metastable hosts sit on it)."""
    return float(pd.get_hull_energy(comp) - sum(comp[el] * pd.el_refs[el].energy_per_atom for el in comp.elements))


# -- defect set ----------------------------------------------------------------------------------


def defect_set(structure: Structure, substitutions: dict[str, list[str]] | None = None,
               include: list[str] | None = None, padding: int = 0,
               charges: dict[str, list[int]] | None = None) -> list[tuple[str, Defect, list[int]]]:
    """Li vacancies and interstitials, the other species' vacancies and antisites, and ``substitutions``
    ({host element: [dopants]}) of ``structure`` (pass the primitive cell), each with its charge states.

    Charge states run from 0 to the nominal charge of the defect (oxidation-state guess), widened by
    ``padding``; ``charges`` ({name: [q, ...]}) overrides; ``include`` keeps only the named defects.
    """
    prim = structure
    if LI not in {el.symbol for el in prim.composition.elements}:
        raise AnalysisError(f"{prim.composition.reduced_formula} has no Li; E_F(mu_Li) needs a Li compound")
    defects = list(VacancyGenerator().generate(prim))
    if len(prim.composition.elements) > 1:
        defects += list(AntiSiteGenerator().generate(prim))
    defects += list(VoronoiInterstitialGenerator().generate(prim, {LI}))
    for host, dopants in (substitutions or {}).items():
        if Element(host) not in prim.composition:
            raise AnalysisError(f"substitution on {host}: {prim.composition.reduced_formula} has no {host}")
        defects += list(SubstitutionGenerator().generate(prim, {host: list(dopants)}))
    names = _unique_names(defects)
    if include:
        unknown = set(include) - set(names)
        if unknown:
            raise AnalysisError(f"defects {sorted(unknown)} not in the generated set {names}")
        defects = [d for d, n in zip(defects, names) if n in include]
        names = [n for n in names if n in include]
    out = []
    for d, n in zip(defects, names):
        d.user_charges = []
        qs = sorted((charges or {}).get(n) or d.get_charge_states(padding=padding))
        out.append((n, d, qs))
    return out


def _unique_names(defects) -> list[str]:
    """pymatgen names, numbered when one name covers inequivalent sites (Li_i, Li_i_2)."""
    seen: dict[str, int] = {}
    out = []
    for d in defects:
        seen[d.name] = seen.get(d.name, 0) + 1
        out.append(d.name if seen[d.name] == 1 else f"{d.name}_{seen[d.name]}")
    return out


def dn_of(defect: Defect) -> dict[str, int]:
    """Atoms added (+) and removed (-) by the defect."""
    if isinstance(defect, Vacancy):
        return {defect.site.specie.symbol: -1}
    if isinstance(defect, Interstitial):
        return {defect.site.specie.symbol: 1}
    if isinstance(defect, Substitution):
        old = defect.structure[defect.defect_site_index].specie.symbol
        return {defect.site.specie.symbol: 1, old: -1}
    raise AnalysisError(f"unsupported defect type {type(defect).__name__}")


# -- supercells ------------------------------------------------------------------------------------


def defect_supercell_matrix(prim: Structure, min_length: float, max_atoms: int) -> np.ndarray:
    """Integer matrix for the most cubic supercell whose periodic images are >= ``min_length`` Å apart,
    with at most ``max_atoms`` sites; among those that fit, the fewest atoms."""
    if min_length <= 0:
        raise AnalysisError("defects.min_length must be positive (Å)")
    m = supercell_matrix(prim.lattice, min_length, max_atoms // len(prim), measure="image", targets=("sc", "fcc"))
    if m is None:
        raise AnalysisError(f"no supercell of {prim.composition.reduced_formula} with images >= {min_length} Å "
                            f"within {max_atoms} atoms; raise defects.max_atoms or lower defects.min_length")
    return m


def defect_supercell(bulk_sc: Structure, defect: Defect) -> tuple[Structure, np.ndarray]:
    """The defect in ``bulk_sc`` (same lattice, same frame), and its fractional position there."""
    sc = bulk_sc.copy()
    frac = sc.lattice.get_fractional_coords(defect.site.coords) % 1.0
    if isinstance(defect, Interstitial):
        sc.append(defect.site.specie, frac)
        return sc.get_sorted_structure(), frac  # one POSCAR block per species
    dists = [sc.lattice.get_distance_and_image(frac, s.frac_coords)[0] for s in sc]
    i = int(np.argmin(dists))
    if dists[i] > 0.1:
        raise AnalysisError(f"defect site of {defect.name} not found in the bulk supercell")
    if isinstance(defect, Vacancy):
        sc.remove_sites([i])
    else:
        sc.replace(i, defect.site.specie)
    return sc.get_sorted_structure(), bulk_sc[i].frac_coords


# -- corrections ----------------------------------------------------------------------------------


def freysoldt_correction(charge: int, dielectric, defect_potential: dict[str, list[float]],
                         bulk_potential: dict[str, list[float]], lattice: Lattice, frac_coords,
                         bulk_lattice: Lattice | None = None, energy_cutoff: float = 520.0) -> tuple[float, dict]:
    """Freysoldt correction (eV, added to E_f) and its parts, from planar-averaged potentials (eV) along
    each lattice vector ({"0": [...], "1": [...], "2": [...]}) of a defect and a bulk supercell.

    The two supercells must share ``lattice`` (``bulk_lattice``, when given, is checked against it) and
    their potentials one grid; ``frac_coords`` is the defect's position in that lattice.
    """
    from pymatgen.analysis.defects.corrections.freysoldt import get_freysoldt_correction

    if bulk_lattice is not None and not np.allclose(lattice.matrix, bulk_lattice.matrix, atol=1e-6):
        raise AnalysisError("defect and bulk supercells have different lattices; the correction needs one")
    for ax in "012":
        if len(defect_potential[ax]) != len(bulk_potential[ax]):
            raise AnalysisError("defect and bulk potentials are on different grids")
    if charge == 0:
        return 0.0, {"electrostatic": 0.0, "potential": 0.0}
    res = get_freysoldt_correction(charge, dielectric, defect_potential, bulk_potential,
                                   defect_frac_coords=np.asarray(frac_coords), lattice=lattice,
                                   energy_cutoff=energy_cutoff)
    md = res.metadata
    return float(res.correction_energy), {"electrostatic": float(md["electrostatic"]),
                                          "potential": float(md["potential"]),
                                          "alignments": {str(k): float(v) for k, v in md["alignments"].items()}}


def kumagai_sign_fixed() -> bool:
    """True when the installed get_efnv_correction reads defect potentials from the defect structure
    (pymatgen-analysis-defects PR #226); checked on the source, since pydefect is not installed."""
    from pymatgen.analysis.defects.corrections import kumagai

    src = inspect.getsource(kumagai.get_efnv_correction)
    return 'site.properties["potential"] for site in defect_structure]' in src.split("defect_potentials =")[1][:80]


# -- chemical potentials along the window -----------------------------------------------------------


def chempot_model(window: dict, pd, host: Composition, e_host_fu: float, e_li: float):
    """A function dmu_Li -> absolute mu_i (eV/atom, calculator scale) along the window.

    mu_Li = E(bcc Li) + dmu_Li. The other dmu_i come from the phase diagram (``host_dmu_at``); their
    references are the diagram's elemental energies shifted by one constant per atom so that
    sum_i n_i mu_i = E(host) on the calculator's scale (exact for a binary host).
    """
    n_li = host[LI]
    others = [el.symbol for el in host.elements if el.symbol != LI] + \
        [el.symbol for el in pd.elements if el.symbol != LI and el not in host]
    refs = {el.symbol: pd.el_refs[el].energy_per_atom for el in pd.elements}
    d0 = host_dmu_at(pd, host, window["mu_li_max"])
    n_other = sum(host[e] for e in others)
    delta = (e_host_fu - n_li * (e_li + d0[LI]) - sum(host[e] * (refs[e] + d0[e]) for e in others)) / n_other

    def mu(dmu_li: float) -> dict[str, float]:
        d = host_dmu_at(pd, host, dmu_li)
        return {LI: e_li + dmu_li, **{e: refs[e] + d[e] + delta for e in others}}

    return mu, {"mu_Li": f"E(bcc Li, same calculator) {e_li:.4f} eV/atom + dmu_Li",
                "others": "phase-diagram dmu + elemental refs shifted to the host's calculator energy",
                "shift_per_atom": float(delta), "phase_diagram_scale": window.get("energy_scale")}


# -- formation energies and E_F(mu_Li) ------------------------------------------------------------------


def vbm_of(eigenvalues, n_electrons: float, nspins: int = 1) -> float:
    """eV, the highest filled band of a closed-shell insulator's eigenvalues [spin][k][band]."""
    n_val = int(round(n_electrons * nspins / 2))
    return float(np.max(np.asarray(eigenvalues)[..., :n_val]))


def negative_formation_warnings(defects, rows: list[dict]) -> list[str]:
    """One line per defect whose formation energy is negative at the solved E_F on a ``fermi_vs_mu`` grid."""
    warnings = []
    for d in defects:
        bad = [r["mu_li"] for r in rows if d.formation_energy(r["fermi_level"], r["dmu"]) < 0]
        if bad:
            warnings.append(f"E_f({d.name} {d.charge:+d}) < 0 at the solved E_F for mu_Li in [{min(bad):.2f}, "
                            f"{max(bad):.2f}] eV: dilute limit broken (unconverged settings or unstable host)")
    return warnings


# -- dielectric constant ---------------------------------------------------------------------------------


def config_dielectric(value, formula: str):
    """A defects.dielectric entry checked: a positive scalar, 3 diagonal values or a 3x3 tensor."""
    eps = np.asarray(value, float)
    if eps.shape not in ((), (3,), (3, 3)):
        raise AnalysisError(f"defects.dielectric.{formula}: give a number, 3 diagonal values or a 3x3 tensor")
    diag = np.diag(eps) if eps.shape == (3, 3) else eps
    if np.any(diag <= 0) or not np.all(np.isfinite(eps)):
        raise AnalysisError(f"defects.dielectric.{formula}: the dielectric constant must be positive")
    return value


def dielectric_tensor(value) -> np.ndarray:
    """3x3 tensor from a number, 3 diagonal values or a 3x3 tensor."""
    eps = np.asarray(value, float)
    return np.diag(np.broadcast_to(eps, (3,))) if eps.shape in ((), (3,)) else eps
